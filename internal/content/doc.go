// Package content is the versioned message that hush clients exchange
// inside Signal ciphertexts: a [Message] with an id, a sent time, a body
// and a disappearing timer, encoded as the protobuf in content.proto. Since
// issue 9 (docs/multidevice.md) a message may instead, or as well, carry a
// [Receipt], [Typing] or a [Control] part for the sender's own devices (a
// [HistoryEpoch]), and be a sync copy ([Message.SyncTo]) of a message the
// sender sent to someone else. Since issue 11 it may carry files
// ([Attachment]: a blob id, its key and digest); a peer's file name goes
// through [FileName] before any use. A message must carry at least one of
// body, attachment, receipt, typing and control. Since issue 10
// (docs/groups.md) a message may name its group ([GroupContext]), or carry
// a sender key for a group ([SenderKeyDistribution]) or signed changes of
// a group's membership ([GroupControl]), each alone. Since issue 11
// (docs/franking.md) a message may carry its franking key
// ([Message.FrankingKey], field 8): the sender commits to the whole
// encoding with it (internal/franking).
//
// The encoding is designed to grow: fields unknown to this version are
// ignored, and the numbers of planned fields (edits) are
// reserved. Version-1 readers older than issue 9 ignore the
// receipt, typing and control fields: to them such a message has an empty
// body. [Parse] accepts any version from 1 up and checks
// what a version-1 reader relies on; [Message.Marshal] pads the encoding so
// that its length says little about the body's.
package content

//go:generate protoc --go_out=. --go_opt=paths=source_relative content.proto
