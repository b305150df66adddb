package session

import (
	"encoding/json"
	"fmt"

	"github.com/hushmsg/hush/key"
)

// Bundle is a device's published prekey bundle: what an initiator needs to
// start a session with it (libsignal PreKeyBundle).
type Bundle struct {
	RegistrationID        key.RegistrationID
	DeviceID              key.DeviceID
	IdentityKey           key.IdentityKey
	SignedPreKeyID        key.SignedPreKeyID
	SignedPreKey          key.ECPublic
	SignedPreKeySignature []byte
	PreKeyID              *key.PreKeyID // nil: no one-time prekey was left
	PreKey                *key.ECPublic
	KyberPreKeyID         *key.KyberPreKeyID // nil: an X3DH-only bundle
	KyberPreKey           *key.KEMPublic
	KyberPreKeySignature  []byte
}

// bundleJSON is the bundle in the interop contract's JSON form (and hush's
// API): binary values in standard base64, absent optional keys as null.
type bundleJSON struct {
	RegistrationID        uint32  `json:"registrationId"`
	DeviceID              uint32  `json:"deviceId"`
	IdentityKey           []byte  `json:"identityKey"`
	SignedPreKeyID        uint32  `json:"signedPreKeyId"`
	SignedPreKey          []byte  `json:"signedPreKey"`
	SignedPreKeySignature []byte  `json:"signedPreKeySignature"`
	PreKeyID              *uint32 `json:"preKeyId"`
	PreKey                []byte  `json:"preKey"`
	KyberPreKeyID         *uint32 `json:"kyberPreKeyId"`
	KyberPreKey           []byte  `json:"kyberPreKey"`
	KyberPreKeySignature  []byte  `json:"kyberPreKeySignature"`
}

// MarshalJSON encodes the bundle in the interop contract's form.
func (b *Bundle) MarshalJSON() ([]byte, error) {
	j := bundleJSON{
		RegistrationID:        uint32(b.RegistrationID),
		DeviceID:              uint32(b.DeviceID),
		IdentityKey:           b.IdentityKey.Bytes(),
		SignedPreKeyID:        uint32(b.SignedPreKeyID),
		SignedPreKey:          b.SignedPreKey.Bytes(),
		SignedPreKeySignature: b.SignedPreKeySignature,
		PreKeyID:              (*uint32)(b.PreKeyID),
		KyberPreKeyID:         (*uint32)(b.KyberPreKeyID),
		KyberPreKeySignature:  b.KyberPreKeySignature,
	}
	if b.PreKey != nil {
		j.PreKey = b.PreKey.Bytes()
	}
	if b.KyberPreKey != nil {
		j.KyberPreKey = b.KyberPreKey.Bytes()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes and checks the shape of a bundle (key types and
// lengths, optional parts complete). Signatures are checked by
// [Cipher.ProcessBundle].
func (b *Bundle) UnmarshalJSON(data []byte) error {
	var j bundleJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("session: bundle: %w", err)
	}
	var nb Bundle
	var err error
	nb.RegistrationID = key.RegistrationID(j.RegistrationID)
	nb.DeviceID = key.DeviceID(j.DeviceID)
	if nb.IdentityKey, err = key.ParseIdentityKey(j.IdentityKey); err != nil {
		return fmt.Errorf("session: bundle identity key: %w", err)
	}
	nb.SignedPreKeyID = key.SignedPreKeyID(j.SignedPreKeyID)
	if nb.SignedPreKey, err = key.ParseECPublic(j.SignedPreKey); err != nil {
		return fmt.Errorf("session: bundle signed prekey: %w", err)
	}
	if len(j.SignedPreKeySignature) != key.SignatureSize {
		return fmt.Errorf("session: bundle signed prekey signature has %d bytes", len(j.SignedPreKeySignature))
	}
	nb.SignedPreKeySignature = j.SignedPreKeySignature
	switch {
	case j.PreKeyID != nil && j.PreKey != nil:
		k, err := key.ParseECPublic(j.PreKey)
		if err != nil {
			return fmt.Errorf("session: bundle one-time prekey: %w", err)
		}
		nb.PreKeyID, nb.PreKey = (*key.PreKeyID)(j.PreKeyID), &k
	case j.PreKeyID != nil || j.PreKey != nil:
		return fmt.Errorf("session: bundle has half a one-time prekey")
	}
	switch {
	case j.KyberPreKeyID != nil && j.KyberPreKey != nil && j.KyberPreKeySignature != nil:
		if nb.KyberPreKey, err = key.ParseKEMPublic(j.KyberPreKey); err != nil {
			return fmt.Errorf("session: bundle Kyber prekey: %w", err)
		}
		if len(j.KyberPreKeySignature) != key.SignatureSize {
			return fmt.Errorf("session: bundle Kyber prekey signature has %d bytes", len(j.KyberPreKeySignature))
		}
		nb.KyberPreKeyID, nb.KyberPreKeySignature = (*key.KyberPreKeyID)(j.KyberPreKeyID), j.KyberPreKeySignature
	case j.KyberPreKeyID != nil || j.KyberPreKey != nil || j.KyberPreKeySignature != nil:
		return fmt.Errorf("session: bundle has an incomplete Kyber prekey")
	}
	*b = nb
	return nil
}

// Verify checks the bundle's signatures: the identity key's XEdDSA
// signatures over the serialized signed prekey and Kyber prekey.
func (b *Bundle) Verify() error {
	if !b.IdentityKey.Verify(b.SignedPreKeySignature, b.SignedPreKey.Bytes()) {
		return fmt.Errorf("%w (signed prekey)", ErrBadSignature)
	}
	if b.KyberPreKey != nil && !b.IdentityKey.Verify(b.KyberPreKeySignature, b.KyberPreKey.Bytes()) {
		return fmt.Errorf("%w (Kyber prekey)", ErrBadSignature)
	}
	return nil
}
