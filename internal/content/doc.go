// Package content is the versioned message that hush clients exchange
// inside Signal ciphertexts: a [Message] with an id, a sent time, a body
// and a disappearing timer, encoded as the protobuf in content.proto.
//
// The encoding is designed to grow: fields unknown to this version are
// ignored, and the numbers of planned fields (attachments, franking,
// receipts) are reserved. [Parse] accepts any version from 1 up and checks
// what a version-1 reader relies on; [Message.Marshal] pads the encoding so
// that its length says little about the body's.
package content

//go:generate protoc --go_out=. --go_opt=paths=source_relative content.proto
