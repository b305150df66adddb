package wire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
)

// PreKeySignalMessage starts a session: it names the recipient's prekeys
// that were used, carries the initiator's identity and base key (and, for
// version 4, the Kyber ciphertext), and wraps the first SignalMessage.
type PreKeySignalMessage struct {
	Version         uint8
	RegistrationID  key.RegistrationID
	PreKeyID        *key.PreKeyID // one-time prekey used, if any
	SignedPreKeyID  key.SignedPreKeyID
	KyberPreKeyID   *key.KyberPreKeyID // nil for X3DH (version 3)
	KyberCiphertext []byte             // 0x08 || 1568 bytes
	BaseKey         key.ECPublic
	IdentityKey     key.IdentityKey
	Message         *SignalMessage

	serialized []byte
}

// Bytes returns the serialized message. Do not modify it.
func (m *PreKeySignalMessage) Bytes() []byte { return m.serialized }

// NewPreKeySignalMessage encodes m (libsignal PreKeySignalMessage::new).
func NewPreKeySignalMessage(m PreKeySignalMessage) *PreKeySignalMessage {
	inner := m.Message.Bytes()
	b := make([]byte, 0, preKeyOverhead+len(inner)+len(m.KyberCiphertext))
	b = m.appendHead(b)
	b = protowire.AppendBytes(b, inner)
	m.serialized = m.appendTail(b)
	return &m
}

// NewPreKeySignalMessageAround is NewSignalMessage(sm, macKey, sender,
// receiver) wrapped by NewPreKeySignalMessage (m.Message is set to it),
// byte for byte, with the inner message encoded in place: one buffer for
// both instead of two and a copy. The inner message's Bytes alias the
// outer's.
func NewPreKeySignalMessageAround(m PreKeySignalMessage, sm SignalMessage, macKey []byte, sender, receiver key.IdentityKey) (*PreKeySignalMessage, error) {
	if len(macKey) != 32 {
		return nil, errors.New("wire: MAC key must be 32 bytes")
	}
	n := 1 + sm.encodedLen() + MACSize
	b := make([]byte, 0, preKeyOverhead+n+len(m.KyberCiphertext))
	b = m.appendHead(b)
	b = protowire.AppendVarint(b, uint64(n))
	start := len(b)
	b = append(b, versionByte(sm.Version))
	b = sm.appendProto(b)
	mac := computeMAC(macKey, sender, receiver, b[start:])
	b = append(b, mac[:MACSize]...)
	sm.serialized = b[start:len(b):len(b)]
	m.Message = &sm
	m.serialized = m.appendTail(b)
	return &m, nil
}

// preKeyOverhead is the most a PreKeySignalMessage takes besides the
// inner message and the Kyber ciphertext: the version, two 35-byte keys,
// four uint32 varint fields (6 each) and two tags with lengths (4 each),
// at most 103 bytes. (With 64, as before, the last append reallocated,
// doubling every 2.6 KB PreKey message.)
const preKeyOverhead = 128

// appendHead appends the version and fields 1 to 3, and the tag of the
// inner message (field 4), whose length and bytes follow.
func (m *PreKeySignalMessage) appendHead(b []byte) []byte {
	b = append(b, versionByte(m.Version))
	if m.PreKeyID != nil {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(*m.PreKeyID))
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, key.ECPublicSize)
	b = m.BaseKey.AppendBytes(b)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendVarint(b, key.ECPublicSize)
	b = m.IdentityKey.AppendBytes(b)
	return protowire.AppendTag(b, 4, protowire.BytesType)
}

// appendTail appends fields 5 to 8.
func (m *PreKeySignalMessage) appendTail(b []byte) []byte {
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.RegistrationID))
	b = protowire.AppendTag(b, 6, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.SignedPreKeyID))
	if m.KyberPreKeyID != nil {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(*m.KyberPreKeyID))
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, m.KyberCiphertext)
	}
	return b
}

// ParsePreKeySignalMessage parses a serialized PreKeySignalMessage and the
// SignalMessage inside it (libsignal PreKeySignalMessage::try_from). The
// result aliases b.
func ParsePreKeySignalMessage(b []byte) (*PreKeySignalMessage, error) {
	if len(b) == 0 {
		return nil, ErrTooShort
	}
	v, err := checkVersion(b[0])
	if err != nil {
		return nil, err
	}
	m := &PreKeySignalMessage{Version: v, serialized: b}
	var (
		regID, preKeyID, spkID, kyberID      uint32
		havePreKey, haveSPK, haveKyberID     bool
		baseKey, identityKey, inner, kyberCT []byte
	)
	ok := pbwire.Walk(b[1:], func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			preKeyID, havePreKey = uint32(v), true
		case 2:
			baseKey = bs
			return bytesField(typ)
		case 3:
			identityKey = bs
			return bytesField(typ)
		case 4:
			inner = bs
			return bytesField(typ)
		case 5:
			regID = uint32(v)
		case 6:
			spkID, haveSPK = uint32(v), true
		case 7:
			kyberID, haveKyberID = uint32(v), true
		case 8:
			kyberCT = bs
			return bytesField(typ)
		default:
			return true
		}
		return varint(typ)
	})
	if !ok {
		return nil, ErrInvalidProtobuf
	}
	if baseKey == nil || identityKey == nil || inner == nil || !haveSPK {
		return nil, fmt.Errorf("%w: missing field", ErrInvalidProtobuf)
	}
	if m.BaseKey, err = key.ParseECPublic(baseKey); err != nil {
		return nil, err
	}
	switch {
	case haveKyberID && kyberCT != nil:
		id := key.KyberPreKeyID(kyberID)
		m.KyberPreKeyID, m.KyberCiphertext = &id, kyberCT
	case !haveKyberID && kyberCT == nil:
		if v > PreKyberVersion {
			return nil, ErrMissingKyber
		}
	default:
		return nil, ErrPartialKyber
	}
	if m.IdentityKey, err = key.ParseIdentityKey(identityKey); err != nil {
		return nil, err
	}
	if m.Message, err = ParseSignalMessage(inner); err != nil {
		return nil, err
	}
	m.RegistrationID = key.RegistrationID(regID)
	m.SignedPreKeyID = key.SignedPreKeyID(spkID)
	if havePreKey {
		id := key.PreKeyID(preKeyID)
		m.PreKeyID = &id
	}
	return m, nil
}
