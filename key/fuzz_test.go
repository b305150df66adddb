package key

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/testvec"
)

// FuzzParsePublic checks that accepted public keys re-encode to the same
// bytes (one encoding per key) and that nothing panics.
func FuzzParsePublic(f *testing.F) {
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079, testvec.SPQR0103} {
		var b testvec.Bundle
		testvec.JSON(f, dir, "bob.bundle.json", &b)
		f.Add(b.IdentityKey)
		f.Add(b.SignedPreKey)
		f.Add(b.KyberPreKey)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParseECPublic(b); err == nil && !bytes.Equal(k.Bytes(), b) {
			t.Fatalf("EC key %x re-encodes as %x", b, k.Bytes())
		}
		if k, err := ParseKEMPublic(b); err == nil && !bytes.Equal(k.Bytes(), b) {
			t.Fatal("KEM key re-encodes differently")
		}
	})
}

// FuzzParseRecords feeds stored-record parsers; accepted records must
// round-trip through MarshalBinary.
func FuzzParseRecords(f *testing.F) {
	id, _ := GenerateIdentityKeyPair(rand.Reader)
	for _, m := range []interface{ MarshalBinary() ([]byte, error) }{
		id,
		must(GeneratePreKey(rand.Reader, 1)),
		must(GenerateSignedPreKey(rand.Reader, 2, id, time.Now())),
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParseIdentityKeyPair(b); err == nil {
			if _, err := k.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if k, err := ParsePreKey(b); err == nil {
			b2, _ := k.MarshalBinary()
			if k2, err := ParsePreKey(b2); err != nil || k2.ID != k.ID || k2.KeyPair.Public != k.KeyPair.Public {
				t.Fatal("prekey does not round-trip")
			}
		}
		if k, err := ParseSignedPreKey(b); err == nil {
			b2, _ := k.MarshalBinary()
			if _, err := ParseSignedPreKey(b2); err != nil {
				t.Fatal("signed prekey does not round-trip")
			}
		}
		_, _ = ParseKyberPreKey(b)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
