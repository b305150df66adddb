package main

import (
	"crypto/rand"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/key"
)

func newIdentity(t *testing.T) *key.IdentityKeyPair {
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ik
}

func keys(t *testing.T, ik *key.IdentityKeyPair, n int) api.KeyUpload {
	sign := func(b []byte) []byte {
		s, err := ik.Sign(rand.Reader, b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	spk, _ := key.GenerateECKeyPair(rand.Reader)
	lr, _ := key.GenerateKEMKeyPair(rand.Reader)
	u := api.KeyUpload{
		SignedPreKey:    &api.SignedKey{KeyID: 1, PublicKey: spk.Public.Bytes(), Signature: sign(spk.Public.Bytes())},
		KyberLastResort: &api.SignedKey{KeyID: 2, PublicKey: lr.Public.Bytes(), Signature: sign(lr.Public.Bytes())},
	}
	for i := range uint32(n) {
		ec, _ := key.GenerateECKeyPair(rand.Reader)
		kem, _ := key.GenerateKEMKeyPair(rand.Reader)
		u.PreKeys = append(u.PreKeys, api.PreKey{KeyID: 10 + i, PublicKey: ec.Public.Bytes()})
		u.KyberPreKeys = append(u.KyberPreKeys, api.SignedKey{KeyID: 100 + i, PublicKey: kem.Public.Bytes(), Signature: sign(kem.Public.Bytes())})
	}
	return u
}
