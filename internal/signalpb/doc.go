// Package signalpb holds the protobuf messages of the Signal Protocol that
// hush shares with libsignal: the wire messages, the stored records and the
// scannable fingerprint. The field numbers are libsignal's; the generated code
// is checked in, so building hush needs no protoc.
package signalpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto storage.proto fingerprint.proto
