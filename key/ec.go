package key

import (
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/edwards25519"
)

// Key type bytes, the first byte of every serialized public key
// (libsignal rust/core/src/curve.rs and rust/protocol/src/kem.rs).
const (
	TypeDjb       byte = 0x05 // Curve25519
	TypeKyber1024 byte = 0x08 // round-3 CRYSTALS-Kyber1024
)

// Sizes of Curve25519 keys and signatures.
const (
	ECPublicSize   = 33 // serialized: type byte || u-coordinate
	ECPrivateSize  = 32
	SignatureSize  = 64
	AgreementSize  = 32
	ecRawPublicLen = 32
)

var (
	errBadKeyType   = errors.New("key: unknown key type")
	errBadKeyLength = errors.New("key: bad key length")
)

// ECPublic is a Curve25519 public key: the X25519 u-coordinate. Public keys
// are not secret, so == compares them.
type ECPublic struct {
	u [32]byte
}

// ParseECPublic reads a serialized public key: 0x05 followed by the 32-byte
// u-coordinate. Unlike libsignal, which only logs them, trailing bytes are
// refused, so that every key has exactly one encoding.
func ParseECPublic(b []byte) (ECPublic, error) {
	if len(b) == 0 {
		return ECPublic{}, errBadKeyLength
	}
	if b[0] != TypeDjb {
		return ECPublic{}, fmt.Errorf("%w 0x%02x", errBadKeyType, b[0])
	}
	if len(b) != ECPublicSize {
		return ECPublic{}, fmt.Errorf("%w: %d bytes for a Curve25519 public key", errBadKeyLength, len(b))
	}
	var k ECPublic
	copy(k.u[:], b[1:])
	return k, nil
}

// ECPublicFromRaw takes a bare 32-byte u-coordinate.
func ECPublicFromRaw(u []byte) (ECPublic, error) {
	if len(u) != ecRawPublicLen {
		return ECPublic{}, errBadKeyLength
	}
	var k ECPublic
	copy(k.u[:], u)
	return k, nil
}

// Bytes returns the 33-byte serialized form, 0x05 || u.
func (k ECPublic) Bytes() []byte {
	return k.AppendBytes(make([]byte, 0, ECPublicSize))
}

// AppendBytes appends the serialized form to b.
func (k ECPublic) AppendBytes(b []byte) []byte {
	return append(append(b, TypeDjb), k.u[:]...)
}

// Raw returns the 32-byte u-coordinate.
func (k ECPublic) Raw() [32]byte { return k.u }

// IsZero reports whether k is the zero value (no key).
func (k ECPublic) IsZero() bool { return k == ECPublic{} }

// String returns a short hexadecimal form for logs.
func (k ECPublic) String() string { return fmt.Sprintf("ec:%x", k.u[:8]) }

// IsCanonical reports whether k is a canonical encoding of a point in the
// prime-order subgroup, as libsignal (>= 0.80.1) requires of the base key in
// an incoming PreKey message (rust/core/src/curve.rs, is_canonical): the
// u-coordinate is below 2^255-19 and the point, mapped to Edwards form with
// sign 0, has no small-order component.
func (k ECPublic) IsCanonical() bool {
	// scalar_is_in_range: the high bit is clear and u < 2^255-19.
	if k.u[31]&0x80 != 0 {
		return false
	}
	if k.u[31] == 0x7f && k.u[0] >= 0xed {
		high := true
		for _, c := range k.u[1:31] {
			if c != 0xff {
				high = false
				break
			}
		}
		if high {
			return false
		}
	}
	p, ok := montgomeryToEdwards(&k.u, 0)
	if !ok {
		return false
	}
	return isTorsionFree(p)
}

// invEight is 8⁻¹ mod ℓ, computed on first use (only a responder checking a
// base key needs it, so no program pays for it at start-up).
var invEight = sync.OnceValue(func() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 8
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("key: internal error: " + err.Error())
	}
	return s.Invert(s)
})

// isTorsionFree reports whether [ℓ]P is the identity. With s = 8⁻¹ mod ℓ,
// [8][s]P removes any component of order dividing 8 (8s is a multiple of 8)
// and keeps the prime-order component (8s ≡ 1 mod ℓ), so P is torsion-free
// exactly when [8][s]P = P.
func isTorsionFree(p *edwards25519.Point) bool {
	q := new(edwards25519.Point).ScalarMult(invEight(), p)
	q.MultByCofactor(q)
	return q.Equal(p) == 1
}

// ECPrivate is a Curve25519 private key, stored clamped as libsignal stores
// it. Its value never appears in String or in an error.
type ECPrivate struct {
	_ [0]func() // not comparable: == would not be constant time
	k [32]byte
	// dh, when set, is the same key in crypto/ecdh form. crypto/ecdh
	// computes the public key whenever it makes a private key, which costs
	// as much as the agreement itself; keeping the form made at generation
	// saves that for the first agreements of a new ratchet key.
	dh *ecdh.PrivateKey
}

// clamp applies the X25519 clamping of RFC 7748 section 5.
func clamp(k *[32]byte) {
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
}

// NewECPrivate takes a 32-byte private key and clamps it.
func NewECPrivate(b []byte) (ECPrivate, error) {
	if len(b) != ECPrivateSize {
		return ECPrivate{}, errBadKeyLength
	}
	var k ECPrivate
	copy(k.k[:], b)
	clamp(&k.k)
	return k, nil
}

// Bytes returns the 32 private key bytes. They are secret.
func (k *ECPrivate) Bytes() []byte { return append([]byte(nil), k.k[:]...) }

// AppendBytes appends the 32 private key bytes to b.
func (k *ECPrivate) AppendBytes(b []byte) []byte { return append(b, k.k[:]...) }

// IsZero reports whether k is the zero value (no key).
func (k *ECPrivate) IsZero() bool {
	var zero [32]byte
	return subtle.ConstantTimeCompare(k.k[:], zero[:]) == 1
}

// String never prints the key.
func (k ECPrivate) String() string { return "ec-private(redacted)" }

// GoString never prints the key.
func (k ECPrivate) GoString() string { return k.String() }

// Public computes the public key, X25519(k, 9). It goes through the Edwards
// form with a fixed-base table, which is faster than the Montgomery ladder
// and gives the same u-coordinate (tested against crypto/ecdh).
func (k *ECPrivate) Public() ECPublic {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(k.k[:])
	if err != nil {
		panic("key: internal error: " + err.Error())
	}
	var pub ECPublic
	copy(pub.u[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
	return pub
}

var errAgreement = errors.New("key: invalid key agreement")

// Agree computes X25519(k, their). An all-zero result (their key is of small
// order) is an error, as in libsignal.
func (k *ECPrivate) Agree(their ECPublic) ([AgreementSize]byte, error) {
	var out [AgreementSize]byte
	priv := k.dh
	if priv == nil {
		var err error
		if priv, err = ecdh.X25519().NewPrivateKey(k.k[:]); err != nil {
			return out, errAgreement
		}
	}
	pub, err := ecdh.X25519().NewPublicKey(their.u[:])
	if err != nil {
		return out, errAgreement
	}
	s, err := priv.ECDH(pub)
	if err != nil {
		return out, errAgreement
	}
	copy(out[:], s)
	return out, nil
}

// ECKeyPair is a Curve25519 key pair.
type ECKeyPair struct {
	Private ECPrivate
	Public  ECPublic
}

// GenerateECKeyPair draws a new key pair from rand: 32 bytes, clamped, as
// libsignal's PrivateKey::new.
func GenerateECKeyPair(rand io.Reader) (ECKeyPair, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return ECKeyPair{}, fmt.Errorf("key: reading randomness: %w", err)
	}
	return NewECKeyPair(b[:])
}

// NewECKeyPair rebuilds a key pair from its private key. The pair keeps the
// key in crypto/ecdh form, so its agreements cost one scalar multiplication.
func NewECKeyPair(priv []byte) (ECKeyPair, error) {
	k, err := NewECPrivate(priv)
	if err != nil {
		return ECKeyPair{}, err
	}
	if k.dh, err = ecdh.X25519().NewPrivateKey(k.k[:]); err != nil {
		return ECKeyPair{}, err
	}
	var pub ECPublic
	copy(pub.u[:], k.dh.PublicKey().Bytes())
	return ECKeyPair{Private: k, Public: pub}, nil
}
