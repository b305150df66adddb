package key

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"time"

	"github.com/hushmsg/hush/internal/testvec"
)

// TestAgreement is libsignal's test_agreement (rust/core/src/curve/curve25519.rs).
func TestAgreement(t *testing.T) {
	alicePub := testvec.Hex(t, "1bb75966f2e93a3691dfff942bb2a466a1c08b8d78ca3f4d6df8b8bfa2e4ee28")
	alicePriv := testvec.Hex(t, "c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59")
	bobPub := testvec.Hex(t, "653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f")
	bobPriv := testvec.Hex(t, "b03b34c33a1c44f225b662d2bf4859b8135411fa7b0386d45fb75dc5b91b4466")
	shared := testvec.Hex(t, "325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629")

	a, err := NewECKeyPair(alicePriv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewECKeyPair(bobPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Public.Raw(); !bytes.Equal(got[:], alicePub) {
		t.Errorf("alice public = %x", got)
	}
	if got := b.Public.Raw(); !bytes.Equal(got[:], bobPub) {
		t.Errorf("bob public = %x", got)
	}
	s1, err := a.Private.Agree(b.Public)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Private.Agree(a.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1[:], shared) || !bytes.Equal(s2[:], shared) {
		t.Errorf("shared = %x / %x", s1, s2)
	}
}

// TestPublicMatchesECDH checks the Edwards-form public key derivation against
// crypto/ecdh's X25519 for random keys.
func TestPublicMatchesECDH(t *testing.T) {
	for range 200 {
		kp, err := GenerateECKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ecdh.X25519().NewPrivateKey(kp.Private.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if got := kp.Public.Raw(); !bytes.Equal(got[:], k.PublicKey().Bytes()) {
			t.Fatalf("public key %x, crypto/ecdh says %x", got, k.PublicKey().Bytes())
		}
	}
}

func TestAgreementRejectsSmallOrder(t *testing.T) {
	kp, _ := GenerateECKeyPair(rand.Reader)
	for _, u := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	} {
		pub, err := ECPublicFromRaw(testvec.Hex(t, u))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kp.Private.Agree(pub); err == nil {
			t.Errorf("agreement with small-order point %s succeeded", u)
		}
	}
}

// TestXEdDSAVector is libsignal's test_signature: a signature made by
// libsignal, whose last byte carries the Edwards sign bit.
func TestXEdDSAVector(t *testing.T) {
	pub, err := ECPublicFromRaw(testvec.Hex(t, "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := NewECPrivate(testvec.Hex(t, "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865"))
	if err != nil {
		t.Fatal(err)
	}
	if priv.Public() != pub {
		t.Fatal("vector private key does not give its public key")
	}
	msg := testvec.Hex(t, "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
	sig := testvec.Hex(t, "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb"+
		"ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88")
	if sig[63]&0x80 == 0 {
		t.Fatal("vector does not exercise the sign bit")
	}
	if !pub.Verify(sig, msg) {
		t.Fatal("libsignal signature does not verify")
	}
	// As in libsignal's test: any single flipped bit must fail.
	for i := range sig {
		bad := bytes.Clone(sig)
		bad[i] ^= 0x01
		if pub.Verify(bad, msg) {
			t.Errorf("signature with byte %d flipped verifies", i)
		}
	}
	for i := range msg {
		bad := bytes.Clone(msg)
		bad[i] ^= 0x01
		if pub.Verify(sig, bad) {
			t.Errorf("message with byte %d flipped verifies", i)
		}
	}
	// Our own signatures with the same key verify and carry the same sign bit.
	for range 20 {
		s, err := priv.Sign(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Verify(s[:], msg) {
			t.Fatal("own signature does not verify")
		}
		if s[63]&0x80 != sig[63]&0x80 {
			t.Fatal("sign bit differs from libsignal's")
		}
	}
}

func TestXEdDSARandom(t *testing.T) {
	for i := range 100 {
		kp, _ := GenerateECKeyPair(rand.Reader)
		msg := []byte("message " + strconv.Itoa(i))
		sig, err := kp.Private.Sign(rand.Reader, msg[:3], msg[3:])
		if err != nil {
			t.Fatal(err)
		}
		if !kp.Public.Verify(sig[:], msg) {
			t.Fatal("signature does not verify")
		}
		other, _ := GenerateECKeyPair(rand.Reader)
		if other.Public.Verify(sig[:], msg) {
			t.Fatal("signature verifies under another key")
		}
		if kp.Public.Verify(sig[:63], msg) {
			t.Fatal("truncated signature verifies")
		}
		bad := sig
		bad[63] |= 0x40 // s >= 2^254: refused before any arithmetic
		if kp.Public.Verify(bad[:], msg) {
			t.Fatal("signature with high s bits verifies")
		}
	}
}

// TestVectorBundles checks the signatures in every bundle libsignal
// published in the recordings, and that the recorded private keys give the
// published public keys.
func TestVectorBundles(t *testing.T) {
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079, testvec.SPQR0103} {
		for _, who := range []string{"alice", "bob"} {
			var b testvec.Bundle
			testvec.JSON(t, dir, who+".bundle.json", &b)
			var keys testvec.Keys
			testvec.JSON(t, dir, who+".keys.json", &keys)
			ik, err := ParseIdentityKey(b.IdentityKey)
			if err != nil {
				t.Fatal(err)
			}
			if !ik.Verify(b.SignedPreKeySignature, b.SignedPreKey) {
				t.Errorf("%s/%s: signed prekey signature does not verify", dir, who)
			}
			bad := bytes.Clone(b.SignedPreKey)
			bad[5] ^= 1
			if ik.Verify(b.SignedPreKeySignature, bad) {
				t.Errorf("%s/%s: signature verifies over another key", dir, who)
			}
			if b.KyberPreKey != nil {
				kyber, err := ParseKEMPublic(b.KyberPreKey)
				if err != nil {
					t.Fatal(err)
				}
				if !ik.Verify(b.KyberPreKeySignature, kyber.Bytes()) {
					t.Errorf("%s/%s: Kyber prekey signature does not verify", dir, who)
				}
			} else if dir != testvec.X3DH072 {
				t.Errorf("%s/%s: bundle without a Kyber prekey", dir, who)
			}
			idPair, err := NewECKeyPair(keys.Identity.Private)
			if err != nil {
				t.Fatal(err)
			}
			if idPair.Public != ik.ECPublic {
				t.Errorf("%s/%s: identity private key does not match", dir, who)
			}
			for id, kp := range keys.KyberPreKeys {
				sec, err := ParseKEMSecret(kp.Secret)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sec.Public().Bytes(), kp.Public) {
					t.Errorf("%s/%s: Kyber secret key %s does not hold its public key", dir, who, id)
				}
			}
		}
	}
}

func TestKEMRoundTrip(t *testing.T) {
	kp, err := GenerateKEMKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseKEMPublic(kp.Public.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ct, ss, err := pub.Encapsulate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != KEMCiphertextSize || ct[0] != TypeKyber1024 {
		t.Fatalf("ciphertext of %d bytes, type %x", len(ct), ct[0])
	}
	got, err := kp.Secret.Decapsulate(ct)
	if err != nil || got != ss {
		t.Fatalf("decapsulated %x, want %x (%v)", got, ss, err)
	}
	ct[100] ^= 1
	if got, _ := kp.Secret.Decapsulate(ct); got == ss {
		t.Fatal("tampered ciphertext gives the same secret")
	}
	ct[0] = 0x0a
	if _, err := kp.Secret.Decapsulate(ct); err == nil {
		t.Fatal("ciphertext of another KEM type accepted")
	}
}

func TestParseErrors(t *testing.T) {
	kp, _ := GenerateECKeyPair(rand.Reader)
	good := kp.Public.Bytes()
	for _, b := range [][]byte{nil, {}, good[:32], append(bytes.Clone(good), 0), append([]byte{0x06}, good[1:]...)} {
		if _, err := ParseECPublic(b); err == nil {
			t.Errorf("ParseECPublic(%x) succeeded", b)
		}
	}
	if _, err := ParseKEMPublic(good); err == nil {
		t.Error("EC key parsed as a KEM key")
	}
}

func TestCanonical(t *testing.T) {
	for range 50 {
		kp, _ := GenerateECKeyPair(rand.Reader)
		if !kp.Public.IsCanonical() {
			t.Fatalf("fresh public key %v is not canonical", kp.Public)
		}
	}
	cases := map[string]string{
		"high bit":          "0900000000000000000000000000000000000000000000000000000000000080",
		"2^255-19":          "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"2^255-1":           "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 8 point":     "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"zero (order 4)":    "0000000000000000000000000000000000000000000000000000000000000000",
		"u = -1 (no image)": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}
	for name, u := range cases {
		k, _ := ECPublicFromRaw(testvec.Hex(t, u))
		if k.IsCanonical() {
			t.Errorf("%s: %s is canonical", name, u)
		}
	}
	// A point of the prime-order subgroup plus a point of order 2 (u = 0 is
	// that point, but adding it needs Edwards arithmetic): take a fresh key's
	// Edwards point, add the order-2 point (0, -1), and map back.
	kp, _ := GenerateECKeyPair(rand.Reader)
	p, ok := montgomeryToEdwards(&kp.Public.u, 0)
	if !ok {
		t.Fatal("no Edwards image for a fresh key")
	}
	var minusOne [32]byte
	minusOne[0] = 0xec
	for i := 1; i < 31; i++ {
		minusOne[i] = 0xff
	}
	minusOne[31] = 0x7f
	t2, err := new(edwards25519.Point).SetBytes(minusOne[:])
	if err != nil {
		t.Fatal(err)
	}
	mixed, _ := ECPublicFromRaw(new(edwards25519.Point).Add(p, t2).BytesMontgomery())
	if mixed.IsCanonical() {
		t.Error("point with an order-2 component is canonical")
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	id, err := GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := id.MarshalBinary()
	id2, err := ParseIdentityKeyPair(b)
	if err != nil || id2.Public != id.Public || !bytes.Equal(id2.Private.Bytes(), id.Private.Bytes()) {
		t.Fatalf("identity round trip: %v", err)
	}
	now := time.Now()
	spk, err := GenerateSignedPreKey(rand.Reader, 7, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Public.Verify(spk.Signature, spk.KeyPair.Public.Bytes()) {
		t.Fatal("signed prekey signature does not verify")
	}
	b, _ = spk.MarshalBinary()
	spk2, err := ParseSignedPreKey(b)
	if err != nil || spk2.ID != 7 || spk2.KeyPair.Public != spk.KeyPair.Public || !spk2.Timestamp.Equal(spk.Timestamp) {
		t.Fatalf("signed prekey round trip: %v", err)
	}
	kpk, err := GenerateKyberPreKey(rand.Reader, 9, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Public.Verify(kpk.Signature, kpk.KeyPair.Public.Bytes()) {
		t.Fatal("Kyber prekey signature does not verify")
	}
	b, _ = kpk.MarshalBinary()
	kpk2, err := ParseKyberPreKey(b)
	if err != nil || kpk2.ID != 9 || !kpk2.KeyPair.Public.Equal(kpk.KeyPair.Public) {
		t.Fatalf("Kyber prekey round trip: %v", err)
	}
	pk, _ := GeneratePreKey(rand.Reader, 3)
	b, _ = pk.MarshalBinary()
	pk2, err := ParsePreKey(b)
	if err != nil || pk2.ID != 3 || pk2.KeyPair.Public != pk.KeyPair.Public {
		t.Fatalf("prekey round trip: %v", err)
	}
	// A record whose public key is not its private key's is refused.
	other, _ := GenerateECKeyPair(rand.Reader)
	pk.KeyPair.Public = other.Public
	b, _ = pk.MarshalBinary()
	if _, err := ParsePreKey(b); err == nil {
		t.Fatal("mismatched prekey record accepted")
	}
}

func TestNoSecretInString(t *testing.T) {
	id, _ := GenerateIdentityKeyPair(rand.Reader)
	kem, _ := GenerateKEMKeyPair(rand.Reader)
	for _, s := range []string{id.Private.String(), id.Private.GoString(), kem.Secret.String()} {
		if !strings.Contains(s, "redacted") {
			t.Errorf("String() = %q", s)
		}
	}
}
