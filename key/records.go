package key

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hushmsg/hush/internal/signalpb"
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
	return proto.Marshal(&signalpb.IdentityKeyPairStructure{
		PublicKey:  kp.Public.Bytes(),
		PrivateKey: kp.Private.k[:],
	})
}

// ParseIdentityKeyPair decodes an IdentityKeyPairStructure and checks that
// the public key belongs to the private key.
func ParseIdentityKeyPair(b []byte) (*IdentityKeyPair, error) {
	var m signalpb.IdentityKeyPairStructure
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, errRecord
	}
	pub, err := ParseIdentityKey(m.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	kp, err := NewECKeyPair(m.PrivateKey)
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
	return proto.Marshal(&signalpb.PreKeyRecordStructure{
		Id:         uint32(p.ID),
		PublicKey:  p.KeyPair.Public.Bytes(),
		PrivateKey: p.KeyPair.Private.k[:],
	})
}

// ParsePreKey decodes a PreKeyRecordStructure.
func ParsePreKey(b []byte) (*PreKey, error) {
	var m signalpb.PreKeyRecordStructure
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, errRecord
	}
	kp, err := parseECPair(m.PublicKey, m.PrivateKey)
	if err != nil {
		return nil, err
	}
	return &PreKey{ID: PreKeyID(m.Id), KeyPair: kp}, nil
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
	return proto.Marshal(&signalpb.SignedPreKeyRecordStructure{
		Id:         uint32(p.ID),
		PublicKey:  p.KeyPair.Public.Bytes(),
		PrivateKey: p.KeyPair.Private.k[:],
		Signature:  p.Signature,
		Timestamp:  uint64(p.Timestamp.UnixMilli()),
	})
}

// ParseSignedPreKey decodes a SignedPreKeyRecordStructure.
func ParseSignedPreKey(b []byte) (*SignedPreKey, error) {
	var m signalpb.SignedPreKeyRecordStructure
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, errRecord
	}
	kp, err := parseECPair(m.PublicKey, m.PrivateKey)
	if err != nil {
		return nil, err
	}
	if len(m.Signature) != SignatureSize {
		return nil, fmt.Errorf("%w: bad signature length", errRecord)
	}
	return &SignedPreKey{
		ID:        SignedPreKeyID(m.Id),
		KeyPair:   kp,
		Signature: m.Signature,
		Timestamp: time.UnixMilli(int64(m.Timestamp)),
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
	return proto.Marshal(&signalpb.SignedPreKeyRecordStructure{
		Id:         uint32(p.ID),
		PublicKey:  p.KeyPair.Public.Bytes(),
		PrivateKey: p.KeyPair.Secret.Bytes(),
		Signature:  p.Signature,
		Timestamp:  uint64(p.Timestamp.UnixMilli()),
	})
}

// ParseKyberPreKey decodes a Kyber prekey record.
func ParseKyberPreKey(b []byte) (*KyberPreKey, error) {
	var m signalpb.SignedPreKeyRecordStructure
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, errRecord
	}
	pub, err := ParseKEMPublic(m.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	sec, err := ParseKEMSecret(m.PrivateKey)
	if err != nil {
		return nil, errRecord
	}
	if !sec.Public().Equal(pub) {
		return nil, fmt.Errorf("%w: public key does not match secret key", errRecord)
	}
	if len(m.Signature) != SignatureSize {
		return nil, fmt.Errorf("%w: bad signature length", errRecord)
	}
	return &KyberPreKey{
		ID:        KyberPreKeyID(m.Id),
		KeyPair:   KEMKeyPair{Public: pub, Secret: sec},
		Signature: m.Signature,
		Timestamp: time.UnixMilli(int64(m.Timestamp)),
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
