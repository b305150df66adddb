// Package pqxdh implements the key agreements that start a Signal session,
// as libsignal runs them (rust/protocol/src/pqxdh.rs; specs:
// signal.org/docs/specifications/pqxdh and .../x3dh):
//
//   - PQXDH (message version 4): four Diffie-Hellman computations over
//     Curve25519 plus a Kyber1024 encapsulation to the responder's signed
//     KEM prekey;
//   - X3DH (message version 3), the same without the KEM, kept for sessions
//     with peers that predate PQXDH (libsignal before 0.75).
//
// [Initiate] is Alice's side (she has Bob's prekey bundle), [Accept] is
// Bob's (he has Alice's PreKey message). Both return the same [Keys]. Bundle
// signatures are checked by the caller (package session) before Initiate.
package pqxdh

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/hushmsg/hush/key"
)

// KDF info strings (libsignal HandshakeKeys::derive and the legacy X3DH).
const (
	infoPQXDH = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"
	infoX3DH  = "WhisperText"
)

// Session versions produced by the two agreements.
const (
	VersionX3DH  = 3
	VersionPQXDH = 4
)

// ErrInvalidBaseKey is returned by Accept for a base key that is not a
// canonical point of the prime-order subgroup (libsignal >= 0.80.1).
var ErrInvalidBaseKey = errors.New("pqxdh: incoming base key is invalid")

// Keys are the agreement's output: the first root and chain keys of the
// Double Ratchet and, for PQXDH, the SPQR authentication key.
type Keys struct {
	RootKey  [32]byte
	ChainKey [32]byte
	PQRKey   [32]byte // the initial SPQR key ([64..96] of the KDF output)
}

// InitiatorParams are Alice's inputs.
type InitiatorParams struct {
	OurIdentity        *key.IdentityKeyPair
	OurBaseKey         key.ECKeyPair // EK_A, fresh for this session
	TheirIdentity      key.IdentityKey
	TheirSignedPreKey  key.ECPublic
	TheirOneTimePreKey *key.ECPublic  // nil when the bundle had none
	TheirKyberPreKey   *key.KEMPublic // nil selects X3DH
}

// Version is the session version these parameters produce.
func (p *InitiatorParams) Version() int {
	if p.TheirKyberPreKey == nil {
		return VersionX3DH
	}
	return VersionPQXDH
}

// Initiate runs Alice's side. For PQXDH it also returns the Kyber ciphertext
// to send to Bob (0x08 || 1568 bytes).
func Initiate(p *InitiatorParams, rand io.Reader) (Keys, []byte, error) {
	secret := make([]byte, 0, 32*6)
	secret = append(secret, discontinuity[:]...)
	var err error
	// DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
	// DH4 = DH(EK_A, OPK_B) (PQXDH spec section 3.3).
	if secret, err = agree(secret, &p.OurIdentity.Private, p.TheirSignedPreKey); err != nil {
		return Keys{}, nil, err
	}
	if secret, err = agree(secret, &p.OurBaseKey.Private, p.TheirIdentity.ECPublic); err != nil {
		return Keys{}, nil, err
	}
	if secret, err = agree(secret, &p.OurBaseKey.Private, p.TheirSignedPreKey); err != nil {
		return Keys{}, nil, err
	}
	if p.TheirOneTimePreKey != nil {
		if secret, err = agree(secret, &p.OurBaseKey.Private, *p.TheirOneTimePreKey); err != nil {
			return Keys{}, nil, err
		}
	}
	if p.TheirKyberPreKey == nil {
		k, err := derive(secret, infoX3DH)
		return k, nil, err
	}
	// (CT, SS) = PQKEM-ENC(PQPK_B); SS goes last in the KDF input.
	ct, ss, err := p.TheirKyberPreKey.Encapsulate(rand)
	if err != nil {
		return Keys{}, nil, err
	}
	secret = append(secret, ss[:]...)
	k, err := derive(secret, infoPQXDH)
	return k, ct, err
}

// ResponderParams are Bob's inputs.
type ResponderParams struct {
	OurIdentity          *key.IdentityKeyPair
	OurSignedPreKey      key.ECKeyPair
	OurOneTimePreKey     *key.ECKeyPair  // the one Alice used, if any
	OurKyberPreKey       *key.KEMKeyPair // nil for X3DH
	TheirIdentity        key.IdentityKey
	TheirBaseKey         key.ECPublic
	TheirKyberCiphertext []byte // for PQXDH
}

// Accept runs Bob's side and checks Alice's base key first.
func Accept(p *ResponderParams) (Keys, error) {
	if !p.TheirBaseKey.IsCanonical() {
		return Keys{}, ErrInvalidBaseKey
	}
	secret := make([]byte, 0, 32*6)
	secret = append(secret, discontinuity[:]...)
	var err error
	if secret, err = agree(secret, &p.OurSignedPreKey.Private, p.TheirIdentity.ECPublic); err != nil {
		return Keys{}, err
	}
	if secret, err = agree(secret, &p.OurIdentity.Private, p.TheirBaseKey); err != nil {
		return Keys{}, err
	}
	if secret, err = agree(secret, &p.OurSignedPreKey.Private, p.TheirBaseKey); err != nil {
		return Keys{}, err
	}
	if p.OurOneTimePreKey != nil {
		if secret, err = agree(secret, &p.OurOneTimePreKey.Private, p.TheirBaseKey); err != nil {
			return Keys{}, err
		}
	}
	if p.OurKyberPreKey == nil {
		return derive(secret, infoX3DH)
	}
	ss, err := p.OurKyberPreKey.Secret.Decapsulate(p.TheirKyberCiphertext)
	if err != nil {
		return Keys{}, err
	}
	secret = append(secret, ss[:]...)
	return derive(secret, infoPQXDH)
}

// discontinuity is F, 32 0xFF bytes prepended to the DH outputs so that the
// KDF input never collides with an XEdDSA key (X3DH spec section 2.2).
var discontinuity = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

func agree(dst []byte, our *key.ECPrivate, their key.ECPublic) ([]byte, error) {
	s, err := our.Agree(their)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: %w", err)
	}
	return append(dst, s[:]...), nil
}

// derive is HKDF-SHA256 with a zero salt over the secret input, split into
// root key, chain key and SPQR key. X3DH used only the first 64 bytes; HKDF
// output does not depend on its length, so deriving 96 changes nothing.
func derive(secret []byte, info string) (Keys, error) {
	out, err := hkdf.Key(sha256.New, secret, nil, info, 96)
	clear(secret)
	if err != nil {
		return Keys{}, err
	}
	var k Keys
	copy(k.RootKey[:], out[:32])
	copy(k.ChainKey[:], out[32:64])
	copy(k.PQRKey[:], out[64:])
	clear(out)
	return k, nil
}
