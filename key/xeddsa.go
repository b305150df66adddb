package key

import (
	"crypto/sha512"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// XEdDSA signatures with Curve25519 keys, as libsignal makes and checks them
// (rust/core/src/curve/curve25519.rs; spec: signal.org/docs/specifications/xeddsa).
//
// libsignal departs from the XEdDSA paper in one way that is part of the wire
// format: it does not negate the private scalar to force the Edwards public
// key's sign bit to 0. Instead it carries that sign bit in the top bit of the
// signature's last byte (which is always 0 in s < 2^253), for compatibility
// with libsignal-protocol-java. Verification reads the sign back from there.

// hash1Prefix is the XEdDSA hash_1 domain separator: 0xFE followed by 31 0xFF
// bytes (2^256 - 2 - i for i = 1, little-endian).
var hash1Prefix = [32]byte{
	0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// Sign makes an XEdDSA signature over the concatenation of msg, with 64
// random bytes Z from rand.
func (k *ECPrivate) Sign(rand io.Reader, msg ...[]byte) ([SignatureSize]byte, error) {
	var sig [SignatureSize]byte
	var z [64]byte
	if _, err := io.ReadFull(rand, z[:]); err != nil {
		return sig, fmt.Errorf("key: reading randomness: %w", err)
	}
	// a = k mod ℓ (k is stored clamped); A = aB.
	a, err := edwards25519.NewScalar().SetBytesWithClamping(k.k[:])
	if err != nil {
		panic("key: internal error: " + err.Error())
	}
	A := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
	signBit := A[31] & 0x80

	// r = hash_1(k || M || Z) mod ℓ.
	h := sha512.New()
	h.Write(hash1Prefix[:])
	h.Write(k.k[:])
	for _, m := range msg {
		h.Write(m)
	}
	h.Write(z[:])
	var digest [64]byte
	r, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		panic("key: internal error: " + err.Error())
	}
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()

	// h = SHA-512(R || A || M) mod ℓ; s = ha + r.
	h.Reset()
	h.Write(R)
	h.Write(A)
	for _, m := range msg {
		h.Write(m)
	}
	hs, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		panic("key: internal error: " + err.Error())
	}
	s := edwards25519.NewScalar().MultiplyAdd(hs, a, r)

	copy(sig[:32], R)
	copy(sig[32:], s.Bytes())
	sig[63] = sig[63]&0x7f | signBit
	return sig, nil
}

// Verify checks an XEdDSA signature by k over the concatenation of msg,
// accepting exactly what libsignal accepts.
func (k ECPublic) Verify(sig []byte, msg ...[]byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	A, ok := montgomeryToEdwards(&k.u, sig[63]>>7)
	if !ok {
		return false
	}
	var sb [64]byte
	copy(sb[:32], sig[32:])
	sb[31] &= 0x7f
	if sb[31]&0xe0 != 0 {
		return false
	}
	// libsignal reduces s mod ℓ (Scalar::from_bytes_mod_order) instead of
	// requiring s < ℓ; SetUniformBytes over s || 0^32 does the same.
	s, err := edwards25519.NewScalar().SetUniformBytes(sb[:])
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(A.Bytes())
	for _, m := range msg {
		h.Write(m)
	}
	var digest [64]byte
	hs, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false
	}
	minusA := new(edwards25519.Point).Negate(A)
	check := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(hs, minusA, s).Bytes()
	// R is public; the comparison need not be constant time, but costs nothing.
	var diff byte
	for i := range 32 {
		diff |= check[i] ^ sig[i]
	}
	return diff == 0
}

// montgomeryToEdwards maps the Montgomery u-coordinate to the Edwards point
// with y = (u-1)/(u+1) and the given sign of x (curve25519-dalek's
// MontgomeryPoint::to_edwards). The top bit of u is ignored, as in RFC 7748.
func montgomeryToEdwards(u *[32]byte, sign byte) (*edwards25519.Point, bool) {
	var U, one, num, den, y field.Element
	if _, err := U.SetBytes(u[:]); err != nil {
		return nil, false
	}
	one.One()
	den.Add(&U, &one)
	if den.Equal(new(field.Element)) == 1 { // u = -1 has no Edwards image
		return nil, false
	}
	num.Subtract(&U, &one)
	y.Multiply(&num, den.Invert(&den))
	b := y.Bytes()
	b[31] |= (sign & 1) << 7
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, false
	}
	return p, true
}
