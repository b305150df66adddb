package key

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
)

// Identifiers. Each kind of id is its own type so that one cannot be passed
// where another is meant.
type (
	PreKeyID       uint32 // a one-time Curve25519 prekey
	SignedPreKeyID uint32 // a signed Curve25519 prekey
	KyberPreKeyID  uint32 // a signed Kyber1024 prekey (one-time or last resort)
	RegistrationID uint32 // a device's registration id (14 bits in Signal)
	DeviceID       uint32 // a device of an account (1..127 in Signal)
)

// MaxRegistrationID is the largest registration id libsignal generates.
const MaxRegistrationID = 0x3fff

// GenerateRegistrationID draws a registration id in 1..MaxRegistrationID.
func GenerateRegistrationID(rand io.Reader) (RegistrationID, error) {
	var b [2]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("key: reading randomness: %w", err)
		}
		if id := RegistrationID(uint16(b[0])<<8|uint16(b[1])) & MaxRegistrationID; id != 0 {
			return id, nil
		}
	}
}

var errRecord = errors.New("key: malformed key record")

// IdentityKey is the public identity key of a device, the key that safety
// numbers are made of and that signs its prekeys.
type IdentityKey struct {
	ECPublic
}

// ParseIdentityKey reads a serialized identity key (0x05 || 32 bytes).
func ParseIdentityKey(b []byte) (IdentityKey, error) {
	k, err := ParseECPublic(b)
	return IdentityKey{k}, err
}

// IdentityKeyPair is a device's long-term identity.
type IdentityKeyPair struct {
	Public  IdentityKey
	Private ECPrivate
}

// GenerateIdentityKeyPair draws a new identity.
func GenerateIdentityKeyPair(rand io.Reader) (*IdentityKeyPair, error) {
	kp, err := GenerateECKeyPair(rand)
	if err != nil {
		return nil, err
	}
	return &IdentityKeyPair{Public: IdentityKey{kp.Public}, Private: kp.Private}, nil
}

// MarshalBinary encodes the pair as libsignal's IdentityKeyPairStructure.
// The result holds the private key.
func (kp *IdentityKeyPair) MarshalBinary() ([]byte, error) {
	b := pbwire.AppendBytes(nil, 1, kp.Public.Bytes())
	return pbwire.AppendBytes(b, 2, kp.Private.k[:]), nil
}

// ParseIdentityKeyPair decodes an IdentityKeyPairStructure and checks that
// the public key belongs to the private key.
func ParseIdentityKeyPair(b []byte) (*IdentityKeyPair, error) {
	m, err := parseRecord(b)
	if err != nil {
		return nil, err
	}
	// IdentityKeyPairStructure: public_key = 1, private_key = 2.
	pub, err := ParseIdentityKey(m.f1)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	kp, err := NewECKeyPair(m.f2)
	if err != nil {
		return nil, errRecord
	}
	if kp.Public != pub.ECPublic {
		return nil, fmt.Errorf("%w: public key does not match private key", errRecord)
	}
	return &IdentityKeyPair{Public: pub, Private: kp.Private}, nil
}

// Sign signs msg with the identity key (XEdDSA).
func (kp *IdentityKeyPair) Sign(rand io.Reader, msg []byte) ([]byte, error) {
	sig, err := kp.Private.Sign(rand, msg)
	return sig[:], err
}

// PreKey is a one-time Curve25519 prekey.
type PreKey struct {
	ID      PreKeyID
	KeyPair ECKeyPair
}

// GeneratePreKey draws a new one-time prekey.
func GeneratePreKey(rand io.Reader, id PreKeyID) (*PreKey, error) {
	kp, err := GenerateECKeyPair(rand)
	if err != nil {
		return nil, err
	}
	return &PreKey{ID: id, KeyPair: kp}, nil
}

// MarshalBinary encodes the prekey as libsignal's PreKeyRecordStructure.
func (p *PreKey) MarshalBinary() ([]byte, error) {
	b := pbwire.AppendVarint(nil, 1, uint64(p.ID))
	b = pbwire.AppendBytes(b, 2, p.KeyPair.Public.Bytes())
	return pbwire.AppendBytes(b, 3, p.KeyPair.Private.k[:]), nil
}

// ParsePreKey decodes a PreKeyRecordStructure.
func ParsePreKey(b []byte) (*PreKey, error) {
	m, err := parseRecord(b)
	if err != nil {
		return nil, err
	}
	kp, err := parseECPair(m.f2, m.f3)
	if err != nil {
		return nil, err
	}
	return &PreKey{ID: PreKeyID(m.id), KeyPair: kp}, nil
}

// SignedPreKey is a medium-term Curve25519 prekey signed by the identity key.
type SignedPreKey struct {
	ID        SignedPreKeyID
	KeyPair   ECKeyPair
	Signature []byte    // XEdDSA by the identity key over KeyPair.Public.Bytes()
	Timestamp time.Time // when it was made, to millisecond precision
}

// GenerateSignedPreKey draws a new signed prekey and signs it with identity.
func GenerateSignedPreKey(rand io.Reader, id SignedPreKeyID, identity *IdentityKeyPair, now time.Time) (*SignedPreKey, error) {
	kp, err := GenerateECKeyPair(rand)
	if err != nil {
		return nil, err
	}
	sig, err := identity.Sign(rand, kp.Public.Bytes())
	if err != nil {
		return nil, err
	}
	return &SignedPreKey{ID: id, KeyPair: kp, Signature: sig, Timestamp: now.Truncate(time.Millisecond)}, nil
}

// MarshalBinary encodes the prekey as libsignal's SignedPreKeyRecordStructure.
func (p *SignedPreKey) MarshalBinary() ([]byte, error) {
	return appendSignedRecord(nil, uint32(p.ID), p.KeyPair.Public.Bytes(), p.KeyPair.Private.k[:], p.Signature, p.Timestamp), nil
}

// ParseSignedPreKey decodes a SignedPreKeyRecordStructure.
func ParseSignedPreKey(b []byte) (*SignedPreKey, error) {
	m, err := parseRecord(b)
	if err != nil {
		return nil, err
	}
	kp, err := parseECPair(m.f2, m.f3)
	if err != nil {
		return nil, err
	}
	if len(m.f4) != SignatureSize {
		return nil, fmt.Errorf("%w: bad signature length", errRecord)
	}
	return &SignedPreKey{
		ID:        SignedPreKeyID(m.id),
		KeyPair:   kp,
		Signature: append([]byte(nil), m.f4...),
		Timestamp: time.UnixMilli(int64(m.timestamp)),
	}, nil
}

// KyberPreKey is a Kyber1024 prekey signed by the identity key. It is either
// a one-time key or the last-resort key used when no one-time key is left.
type KyberPreKey struct {
	ID        KyberPreKeyID
	KeyPair   KEMKeyPair
	Signature []byte // XEdDSA by the identity key over KeyPair.Public.Bytes()
	Timestamp time.Time
}

// GenerateKyberPreKey draws a new Kyber1024 prekey and signs it with identity.
func GenerateKyberPreKey(rand io.Reader, id KyberPreKeyID, identity *IdentityKeyPair, now time.Time) (*KyberPreKey, error) {
	kp, err := GenerateKEMKeyPair(rand)
	if err != nil {
		return nil, err
	}
	sig, err := identity.Sign(rand, kp.Public.Bytes())
	if err != nil {
		return nil, err
	}
	return &KyberPreKey{ID: id, KeyPair: kp, Signature: sig, Timestamp: now.Truncate(time.Millisecond)}, nil
}

// MarshalBinary encodes the prekey as libsignal's KyberPreKeyRecord, which
// reuses SignedPreKeyRecordStructure with serialized KEM keys.
func (p *KyberPreKey) MarshalBinary() ([]byte, error) {
	return appendSignedRecord(nil, uint32(p.ID), p.KeyPair.Public.Bytes(), p.KeyPair.Secret.Bytes(), p.Signature, p.Timestamp), nil
}

// ParseKyberPreKey decodes a Kyber prekey record.
func ParseKyberPreKey(b []byte) (*KyberPreKey, error) {
	m, err := parseRecord(b)
	if err != nil {
		return nil, err
	}
	pub, err := ParseKEMPublic(m.f2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	sec, err := ParseKEMSecret(m.f3)
	if err != nil {
		return nil, errRecord
	}
	if !sec.Public().Equal(pub) {
		return nil, fmt.Errorf("%w: public key does not match secret key", errRecord)
	}
	if len(m.f4) != SignatureSize {
		return nil, fmt.Errorf("%w: bad signature length", errRecord)
	}
	return &KyberPreKey{
		ID:        KyberPreKeyID(m.id),
		KeyPair:   KEMKeyPair{Public: pub, Secret: sec},
		Signature: append([]byte(nil), m.f4...),
		Timestamp: time.UnixMilli(int64(m.timestamp)),
	}, nil
}

// parseECPair reads a stored key pair and checks that its halves match.
func parseECPair(pub, priv []byte) (ECKeyPair, error) {
	p, err := ParseECPublic(pub)
	if err != nil {
		return ECKeyPair{}, fmt.Errorf("%w: %v", errRecord, err)
	}
	kp, err := NewECKeyPair(priv)
	if err != nil {
		return ECKeyPair{}, errRecord
	}
	if kp.Public != p {
		return ECKeyPair{}, fmt.Errorf("%w: public key does not match private key", errRecord)
	}
	return kp, nil
}

// The stored key records are libsignal's (storage.proto):
//
//	IdentityKeyPairStructure    { bytes public_key = 1; bytes private_key = 2; }
//	PreKeyRecordStructure       { uint32 id = 1; bytes public_key = 2; bytes private_key = 3; }
//	SignedPreKeyRecordStructure { uint32 id = 1; bytes public_key = 2; bytes private_key = 3;
//	                              bytes signature = 4; fixed64 timestamp = 5; }
//
// (Kyber prekeys reuse the last with serialized KEM keys.) One reader takes
// all three; internal/signalpb's generated code checks this one in tests.
type rawRecord struct {
	id             uint64
	timestamp      uint64
	f1, f2, f3, f4 []byte
}

func parseRecord(b []byte) (*rawRecord, error) {
	var r rawRecord
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			// id in the prekey records, public_key in the identity pair.
			r.id, r.f1 = v, bs
			return typ == protowire.VarintType || typ == protowire.BytesType
		case 2:
			r.f2 = bs
			return typ == protowire.BytesType
		case 3:
			r.f3 = bs
			return typ == protowire.BytesType
		case 4:
			r.f4 = bs
			return typ == protowire.BytesType
		case 5:
			r.timestamp = v
			return typ == protowire.Fixed64Type
		}
		return true
	})
	if !ok {
		return nil, errRecord
	}
	return &r, nil
}

func appendSignedRecord(b []byte, id uint32, pub, priv, sig []byte, ts time.Time) []byte {
	b = pbwire.AppendVarint(b, 1, uint64(id))
	b = pbwire.AppendBytes(b, 2, pub)
	b = pbwire.AppendBytes(b, 3, priv)
	b = pbwire.AppendBytes(b, 4, sig)
	if ms := uint64(ts.UnixMilli()); ms != 0 {
		b = protowire.AppendTag(b, 5, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, ms)
	}
	return b
}
