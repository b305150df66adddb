package senderkey

import (
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
)

/* Specification constants (libsignal rust/protocol/src/protocol.rs) */

const (
	// MessageVersion is SENDERKEY_MESSAGE_CURRENT_VERSION: the high nibble
	// of the first byte of both messages, whose low nibble is also 3.
	MessageVersion = 3
	// TypeSenderKey is CiphertextMessageType::SenderKey, the type of a
	// [Message] beside the one-to-one types 2 and 3.
	TypeSenderKey = 7
	// SignatureSize is SenderKeyMessage::SIGNATURE_LEN: the XEdDSA signature
	// that ends a SenderKeyMessage.
	SignatureSize = key.SignatureSize
	// minDistributionSize is the length check of SenderKeyDistributionMessage
	// try_from: a version byte, at least a key and a chain key.
	minDistributionSize = 1 + 32 + 32
)

// Field numbers of SenderKeyMessage and SenderKeyDistributionMessage
// (libsignal rust/protocol/src/proto/wire.proto, proto2, all optional).
const (
	fDistributionID = 1
	fChainID        = 2
	fIteration      = 3
	fCiphertext     = 4 // SenderKeyMessage
	fChainKey       = 4 // SenderKeyDistributionMessage
	fSigningKey     = 5 // SenderKeyDistributionMessage
)

// Errors of the parsers, as libsignal tells them apart. Decrypt folds them
// all into [ErrDecrypt].
var (
	ErrTooShort        = errors.New("senderkey: message too short")
	ErrLegacyVersion   = errors.New("senderkey: legacy message version")
	ErrUnknownVersion  = errors.New("senderkey: unrecognized message version")
	ErrInvalidProtobuf = errors.New("senderkey: invalid protobuf encoding")
)

// DistributionID names one sending chain of one sender in one group: a
// UUID, libsignal's distribution_id. It is not secret.
type DistributionID [16]byte

// ParseDistributionID reads a UUID in its usual text form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, either case).
func ParseDistributionID(s string) (DistributionID, error) {
	var id DistributionID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("senderkey: malformed distribution id %q (want a UUID)", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("senderkey: malformed distribution id %q (want a UUID)", s)
	}
	return id, nil
}

// String returns the UUID in lower case, as libsignal's uuid crate writes it.
func (d DistributionID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], d[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], d[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], d[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], d[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], d[10:16])
	return string(b[:])
}

// versionByte is ((message_version & 0xF) << 4) | SENDERKEY_MESSAGE_CURRENT_VERSION.
func versionByte(v uint8) byte { return (v&0xf)<<4 | MessageVersion }

// checkVersion reads the high nibble of the first byte, as both try_from do.
func checkVersion(b byte) (uint8, error) {
	switch v := b >> 4; {
	case v < MessageVersion:
		return 0, fmt.Errorf("%w %d", ErrLegacyVersion, v)
	case v > MessageVersion:
		return 0, fmt.Errorf("%w %d", ErrUnknownVersion, v)
	default:
		return v, nil
	}
}

// header is what both messages start with.
type header struct {
	version        uint8
	distributionID DistributionID
	chainID        uint32
	iteration      uint32
}

// appendHeader writes fields 1-3 as prost writes proto2 optionals that are
// set: in field order, zero values included.
func (h *header) appendHeader(b []byte) []byte {
	b = protowire.AppendTag(b, fDistributionID, protowire.BytesType)
	b = protowire.AppendBytes(b, h.distributionID[:])
	b = protowire.AppendTag(b, fChainID, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(h.chainID))
	b = protowire.AppendTag(b, fIteration, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(h.iteration))
}

// parseFields decodes a protobuf with libsignal's prost: unknown fields are
// skipped, a repeated field keeps its last value, a field of the wrong wire
// type is an error, uint32 fields are truncated. It fills h and the two
// length-delimited field 4 and, when the message has one (withF5), field 5.
// It fails unless fields 1-4 are present and the distribution id is a
// 16-byte UUID.
func parseFields(b []byte, h *header, withF5 bool) (f4, f5 []byte, err error) {
	var id []byte
	var haveChain, haveIter bool
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fDistributionID:
			id = bs
			return typ == protowire.BytesType
		case fChainID:
			h.chainID, haveChain = uint32(v), true
			return typ == protowire.VarintType
		case fIteration:
			h.iteration, haveIter = uint32(v), true
			return typ == protowire.VarintType
		case 4:
			f4 = bs
			return typ == protowire.BytesType
		case 5:
			if !withF5 {
				return true // unknown in a SenderKeyMessage
			}
			f5 = bs
			return typ == protowire.BytesType
		}
		return true
	})
	if !ok {
		return nil, nil, ErrInvalidProtobuf
	}
	// Uuid::from_slice wants exactly 16 bytes.
	if len(id) != len(h.distributionID) || !haveChain || !haveIter || f4 == nil {
		return nil, nil, fmt.Errorf("%w: missing or malformed field", ErrInvalidProtobuf)
	}
	copy(h.distributionID[:], id)
	return f4, f5, nil
}

// DistributionMessage is a SenderKeyDistributionMessage: a sender's chain as
// it stands, given to each member (inside a one-to-one session) so that they
// can decrypt what the sender sends next. It holds the chain key, a secret;
// it never prints it.
type DistributionMessage struct {
	header
	chainKey   [32]byte
	signingKey key.ECPublic
	serialized []byte // version byte || protobuf
}

// DistributionID is the distribution (group sending chain) the message
// describes.
func (m *DistributionMessage) DistributionID() DistributionID { return m.distributionID }

// ChainID is the 31-bit id of the chain, which changes when the sender
// starts a new chain under the same distribution id.
func (m *DistributionMessage) ChainID() uint32 { return m.chainID }

// Iteration is the chain's iteration: the first message it can decrypt.
func (m *DistributionMessage) Iteration() uint32 { return m.iteration }

// SigningKey is the public key that signs the chain's messages.
func (m *DistributionMessage) SigningKey() key.ECPublic { return m.signingKey }

// Bytes returns the serialized message. It holds the chain key: send it
// only inside an encrypted session. Do not modify it.
func (m *DistributionMessage) Bytes() []byte { return m.serialized }

// String describes the message without its chain key.
func (m *DistributionMessage) String() string {
	return fmt.Sprintf("SenderKeyDistributionMessage{%s chain %d iteration %d}", m.distributionID, m.chainID, m.iteration)
}

// GoString never prints the chain key either.
func (m *DistributionMessage) GoString() string { return m.String() }

// newDistributionMessage encodes a message as SenderKeyDistributionMessage::new.
func newDistributionMessage(h header, chainKey *[32]byte, signingKey key.ECPublic) *DistributionMessage {
	m := &DistributionMessage{header: h, chainKey: *chainKey, signingKey: signingKey}
	b := make([]byte, 0, 1+2+16+2*6+2+32+2+key.ECPublicSize)
	b = append(b, versionByte(h.version))
	b = h.appendHeader(b)
	b = protowire.AppendTag(b, fChainKey, protowire.BytesType)
	b = protowire.AppendBytes(b, chainKey[:])
	b = protowire.AppendTag(b, fSigningKey, protowire.BytesType)
	b = protowire.AppendVarint(b, key.ECPublicSize)
	m.serialized = signingKey.AppendBytes(b)
	return m
}

// ParseDistributionMessage parses a SenderKeyDistributionMessage as
// libsignal's try_from does: length, then version, then the protobuf, whose
// five fields must all be present, with a 32-byte chain key and a 33-byte
// Curve25519 signing key. The result does not alias b.
func ParseDistributionMessage(b []byte) (*DistributionMessage, error) {
	if len(b) < minDistributionSize {
		return nil, ErrTooShort
	}
	v, err := checkVersion(b[0])
	if err != nil {
		return nil, err
	}
	m := &DistributionMessage{header: header{version: v}}
	ck, sk, err := parseFields(b[1:], &m.header, true)
	if err != nil {
		return nil, err
	}
	if len(ck) != 32 || len(sk) != key.ECPublicSize {
		return nil, fmt.Errorf("%w: chain key or signing key", ErrInvalidProtobuf)
	}
	if m.signingKey, err = key.ParseECPublic(sk); err != nil {
		return nil, fmt.Errorf("senderkey: signing key: %w", err)
	}
	copy(m.chainKey[:], ck)
	m.serialized = append([]byte(nil), b...)
	return m, nil
}

// Message is a SenderKeyMessage: one group message, encrypted once for
// every member with the sender's chain, and signed by the chain's signing
// key: version byte || protobuf || 64-byte XEdDSA signature over the rest.
type Message struct {
	header
	ciphertext []byte
	serialized []byte
}

// DistributionID is the distribution the message belongs to.
func (m *Message) DistributionID() DistributionID { return m.distributionID }

// ChainID is the id of the sender's chain within the distribution.
func (m *Message) ChainID() uint32 { return m.chainID }

// Iteration is the message's position in the chain.
func (m *Message) Iteration() uint32 { return m.iteration }

// Bytes returns the serialized message, signature included. Do not modify it.
func (m *Message) Bytes() []byte { return m.serialized }

// signedPart is what the signature covers.
func (m *Message) signedPart() []byte { return m.serialized[:len(m.serialized)-SignatureSize] }

// VerifySignature checks the message's signature with the chain's signing key.
func (m *Message) VerifySignature(k key.ECPublic) bool {
	return k.Verify(m.serialized[len(m.serialized)-SignatureSize:], m.signedPart())
}

// appendMessageBody writes version byte and protobuf, the signed part of a
// SenderKeyMessage (SenderKeyMessage::new).
func appendMessageBody(b []byte, h *header, ciphertext []byte) []byte {
	b = append(b, versionByte(h.version))
	b = h.appendHeader(b)
	b = protowire.AppendTag(b, fCiphertext, protowire.BytesType)
	return protowire.AppendBytes(b, ciphertext)
}

// messageSize is the length of a SenderKeyMessage with this header and
// ciphertext length.
func messageSize(h *header, n int) int {
	return 1 + 2 + 16 + 1 + protowire.SizeVarint(uint64(h.chainID)) + 1 + protowire.SizeVarint(uint64(h.iteration)) +
		1 + protowire.SizeBytes(n) + SignatureSize
}

// ParseMessage parses a SenderKeyMessage as libsignal's try_from does:
// length, version, then the protobuf between the version byte and the
// signature, whose four fields must be present. The signature is checked by
// Decrypt, which knows the key. The result aliases b.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < 1+SignatureSize {
		return nil, ErrTooShort
	}
	v, err := checkVersion(b[0])
	if err != nil {
		return nil, err
	}
	m := &Message{header: header{version: v}, serialized: b}
	if m.ciphertext, _, err = parseFields(b[1:len(b)-SignatureSize], &m.header, false); err != nil {
		return nil, err
	}
	return m, nil
}
