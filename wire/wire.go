// Package wire encodes and parses the two end-to-end messages of the Signal
// Protocol exactly as libsignal does (rust/protocol/src/protocol.rs): the
// [SignalMessage], which carries one Double Ratchet message, and the
// [PreKeySignalMessage], which wraps the first messages of a session with what
// the recipient needs to run PQXDH or X3DH. Both are a version byte followed
// by a protobuf (field numbers as in internal/signalpb/wire.proto); a
// SignalMessage ends with an 8-byte truncated HMAC-SHA256.
//
// Encoding is canonical (fields in ascending order, each at most once), so
// [SignalMessage.Bytes] of a parsed canonical message gives back its input.
// Parsing follows libsignal: unknown fields are skipped, a repeated field
// keeps its last value, and a field of the wrong wire type is an error.
package wire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Message versions (the high nibble of the first byte).
const (
	CurrentVersion  = 4 // PQXDH sessions
	PreKyberVersion = 3 // X3DH sessions
)

// Message types, as libsignal's CiphertextMessageType numbers them.
const (
	TypeSignal = 2 // SignalMessage ("Whisper")
	TypePreKey = 3 // PreKeySignalMessage
)

// MACSize is the length of the truncated MAC that ends a SignalMessage.
const MACSize = 8

// Errors returned by the parsers. Callers can tell a message from a version
// they do not speak from a malformed one.
var (
	ErrTooShort        = errors.New("wire: message too short")
	ErrLegacyVersion   = errors.New("wire: legacy message version")
	ErrUnknownVersion  = errors.New("wire: unrecognized message version")
	ErrInvalidProtobuf = errors.New("wire: invalid protobuf encoding")
	ErrMissingKyber    = errors.New("wire: Kyber prekey must be present for this message version")
	ErrPartialKyber    = errors.New("wire: both or neither Kyber prekey id and ciphertext must be present")
)

// versionByte is the first byte of every message: the session version in
// the high nibble, the current version (4) in the low one.
func versionByte(v uint8) byte { return (v&0xf)<<4 | CurrentVersion }

// checkVersion reads the version nibble of b[0].
func checkVersion(b byte) (uint8, error) {
	v := b >> 4
	if v < PreKyberVersion {
		return 0, fmt.Errorf("%w %d", ErrLegacyVersion, v)
	}
	if v > CurrentVersion {
		return 0, fmt.Errorf("%w %d", ErrUnknownVersion, v)
	}
	return v, nil
}

// varint and bytes check a field's wire type; a mismatch makes the message
// invalid, as in libsignal's prost. uint32 fields are truncated as prost does.
func varint(typ protowire.Type) bool     { return typ == protowire.VarintType }
func bytesField(typ protowire.Type) bool { return typ == protowire.BytesType }
