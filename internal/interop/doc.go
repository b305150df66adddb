// Package interop holds the interoperability tests between hush's Signal
// Protocol peer (cmd/hushpeer) and command-line peers built on published
// libsignal releases (@signalapp/libsignal-client from npm, driven by the
// scripts in testdata/). Both follow the contract in testdata/CONTRACT.md.
//
// The tests need Node.js and npm; without them they skip. The first run
// installs each libsignal release into a cache folder (HUSH_INTEROP_CACHE,
// default the user cache folder). CI sets HUSH_INTEROP_REQUIRED=1 so that a
// missing Node.js fails instead of skipping.
package interop
