// Package interop holds the interoperability tests between hush's Signal
// Protocol peer (cmd/hushpeer) and command-line peers built on published
// libsignal releases (@signalapp/libsignal-client from npm, driven by the
// scripts in testdata/). Both follow the contract in testdata/CONTRACT.md.
//
// The tests need Node.js and npm; without them, or where a release's
// native addon does not load, they skip. The first run installs each
// libsignal release into a cache folder (HUSH_INTEROP_CACHE, default the
// user cache folder), in a folder named by the release and a hash of its
// testdata files; test processes running at once share it safely (a lock
// between processes, an install renamed into place when complete). CI sets
// HUSH_INTEROP_REQUIRED=1 so that a skip fails instead.
package interop
