// Package maulibsignal holds reference benchmarks of go.mau.fi/libsignal
// (GPL-3.0), to be read beside hush's own benchmarks. It is a module of its
// own so that nothing in hush imports or requires the library; see
// ../README.md. The package has no code of its own outside its tests.
package maulibsignal
