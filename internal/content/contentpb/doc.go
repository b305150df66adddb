// Package contentpb is the generated code for content.proto, the schema of
// hush's end-to-end content message. Package content encodes and parses the
// message by hand (so that the hush binary does not carry the protobuf
// runtime); its tests check it against this generated code.
package contentpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative content.proto
