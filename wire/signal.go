package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
)

// SignalMessage is one Double Ratchet message (signalpb.SignalMessage).
type SignalMessage struct {
	Version         uint8 // session version: 3 or 4
	RatchetKey      key.ECPublic
	Counter         uint32
	PreviousCounter uint32
	Ciphertext      []byte // AES-256-CBC, PKCS#7 padded
	PQRatchet       []byte // SPQR message; empty when there is none
	Addresses       []byte // sender and recipient addresses; nil when absent

	serialized []byte // version byte || protobuf || MAC
}

// MACInput is what the MAC of a SignalMessage covers besides the two
// identity keys: the version byte and the protobuf.
func (m *SignalMessage) macInput() []byte { return m.serialized[:len(m.serialized)-MACSize] }

// Bytes returns the serialized message, MAC included. Do not modify it.
func (m *SignalMessage) Bytes() []byte { return m.serialized }

// NewSignalMessage encodes a message and appends its MAC:
// HMAC-SHA256(macKey, senderIdentity || receiverIdentity || version || protobuf),
// truncated to 8 bytes (libsignal SignalMessage::new and compute_mac).
func NewSignalMessage(m SignalMessage, macKey []byte, sender, receiver key.IdentityKey) (*SignalMessage, error) {
	if len(macKey) != 32 {
		return nil, errors.New("wire: MAC key must be 32 bytes")
	}
	b := make([]byte, 0, 1+m.encodedLen()+MACSize)
	b = append(b, versionByte(m.Version))
	b = m.appendProto(b)
	mac := computeMAC(macKey, sender, receiver, b)
	m.serialized = append(b, mac[:MACSize]...)
	return &m, nil
}

func (m *SignalMessage) encodedLen() int {
	n := 1 + protowire.SizeBytes(key.ECPublicSize) +
		1 + protowire.SizeVarint(uint64(m.Counter)) +
		1 + protowire.SizeVarint(uint64(m.PreviousCounter)) +
		1 + protowire.SizeBytes(len(m.Ciphertext))
	if len(m.PQRatchet) > 0 {
		n += 1 + protowire.SizeBytes(len(m.PQRatchet))
	}
	if m.Addresses != nil {
		n += 1 + protowire.SizeBytes(len(m.Addresses))
	}
	return n
}

// appendProto appends the protobuf in ascending field order, as prost
// writes it: counters are always present, pq_ratchet only when non-empty.
func (m *SignalMessage) appendProto(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, key.ECPublicSize)
	b = m.RatchetKey.AppendBytes(b)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Counter))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.PreviousCounter))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, m.Ciphertext)
	if len(m.PQRatchet) > 0 {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, m.PQRatchet)
	}
	if m.Addresses != nil {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Addresses)
	}
	return b
}

func computeMAC(macKey []byte, sender, receiver key.IdentityKey, msg []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, macKey)
	var buf [2 * key.ECPublicSize]byte
	h.Write(receiver.AppendBytes(sender.AppendBytes(buf[:0])))
	h.Write(msg)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// VerifyMAC checks the message's MAC in constant time. sender is the
// identity of the party that wrote the message.
func (m *SignalMessage) VerifyMAC(macKey []byte, sender, receiver key.IdentityKey) bool {
	if len(macKey) != 32 {
		return false
	}
	mac := computeMAC(macKey, sender, receiver, m.macInput())
	return subtle.ConstantTimeCompare(mac[:MACSize], m.serialized[len(m.serialized)-MACSize:]) == 1
}

// ParseSignalMessage parses a serialized SignalMessage. It checks the
// structure only; the MAC is checked by the session, which has the key. The
// returned message aliases b.
func ParseSignalMessage(b []byte) (*SignalMessage, error) {
	if len(b) < 1+MACSize {
		return nil, ErrTooShort
	}
	v, err := checkVersion(b[0])
	if err != nil {
		return nil, err
	}
	m := &SignalMessage{Version: v, serialized: b}
	var ratchetKey []byte
	var haveCounter bool
	var ciphertext []byte
	ok := pbwire.Walk(b[1:len(b)-MACSize], func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			ratchetKey = bs
			return bytesField(typ)
		case 2:
			m.Counter, haveCounter = uint32(v), true
			return varint(typ)
		case 3:
			m.PreviousCounter = uint32(v)
			return varint(typ)
		case 4:
			ciphertext = bs
			return bytesField(typ)
		case 5:
			m.PQRatchet = bs
			return bytesField(typ)
		case 6:
			m.Addresses = bs
			return bytesField(typ)
		}
		return true
	})
	if !ok {
		return nil, ErrInvalidProtobuf
	}
	if ratchetKey == nil || !haveCounter || ciphertext == nil {
		return nil, fmt.Errorf("%w: missing field", ErrInvalidProtobuf)
	}
	if m.RatchetKey, err = key.ParseECPublic(ratchetKey); err != nil {
		return nil, err
	}
	m.Ciphertext = ciphertext
	if len(m.PQRatchet) == 0 {
		m.PQRatchet = nil
	}
	return m, nil
}
