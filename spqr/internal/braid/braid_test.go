package braid

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/cloudflare/circl/pke/kyber/kyber768"
)

func randSeed(t testing.TB) []byte {
	s := make([]byte, SeedSize)
	rand.Read(s)
	return s
}

// TestAgainstFIPS203 checks Encaps1/Encaps2 against the standard library's
// derandomized ML-KEM.Encaps and Decaps for random keys and m.
func TestAgainstFIPS203(t *testing.T) {
	for i := 0; i < 200; i++ {
		seed := randSeed(t)
		hdr, ek, err := KeyGen(seed)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidateEK(&hdr, &ek) {
			t.Fatal("own ek does not validate")
		}
		dk, _ := mlkem.NewDecapsulationKey768(seed)
		full := dk.EncapsulationKey().Bytes()
		if !bytes.Equal(full[:EKSize], ek[:]) || !bytes.Equal(full[EKSize:], hdr[:32]) {
			t.Fatal("ek/header split wrong")
		}
		var m [MSize]byte
		rand.Read(m[:])
		ct1, k1 := Encaps1(&hdr, &m)
		ct2, err := Encaps2(&hdr, &ek, &m)
		if err != nil {
			t.Fatal(err)
		}
		wantK, wantCt, err := mlkemtest.Encapsulate768(dk.EncapsulationKey(), m[:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wantCt, append(ct1[:], ct2[:]...)) {
			t.Fatal("ct1||ct2 differs from FIPS 203 Encaps")
		}
		if !bytes.Equal(wantK, k1[:]) {
			t.Fatal("shared secret differs from FIPS 203 Encaps")
		}
		got, err := Decaps(seed, &ct1, &ct2)
		if err != nil || !bytes.Equal(got[:], wantK) {
			t.Fatal("Decaps disagrees")
		}
	}
}

func TestValidateEKRejects(t *testing.T) {
	hdr, ek, _ := KeyGen(randSeed(t))
	bad := ek
	bad[5] ^= 1
	if ValidateEK(&hdr, &bad) {
		t.Error("modified ek accepted")
	}
	h2 := hdr
	h2[40] ^= 1
	if ValidateEK(&h2, &ek) {
		t.Error("modified hash accepted")
	}
	h3 := hdr
	h3[0] ^= 1
	if ValidateEK(&h3, &ek) {
		t.Error("modified rho accepted")
	}
	// Coefficient 0xfff >= q fails the modulus check even with a matching hash.
	nm := ek
	nm[0], nm[1] = 0xff, 0x0f
	if ValidateEK(&hdr, &nm) {
		t.Error("non-reduced ek accepted")
	}
	var m [MSize]byte
	if _, err := Encaps2(&hdr, &nm, &m); err == nil {
		t.Error("Encaps2 accepted a non-reduced ek")
	}
}

func TestLibcruxVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/libcrux_incremental_mlkem768.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Seed, Pk1, Pk2, Dk, Message, Ct1, Ct2 string
			SharedSecret                          string `json:"shared_secret"`
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) != 24 {
		t.Fatalf("%d cases, want 24", len(f.Cases))
	}
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	for i, c := range f.Cases {
		hdr, ek, err := KeyGen(h(c.Seed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr[:], h(c.Pk1)) || !bytes.Equal(ek[:], h(c.Pk2)) {
			t.Errorf("case %d: header/ek differ", i)
		}
		var m [MSize]byte
		copy(m[:], h(c.Message))
		ct1, k := Encaps1(&hdr, &m)
		ct2, err := Encaps2(&hdr, &ek, &m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ct1[:], h(c.Ct1)) || !bytes.Equal(ct2[:], h(c.Ct2)) {
			t.Errorf("case %d: ciphertext differs", i)
		}
		if !bytes.Equal(k[:], h(c.SharedSecret)) {
			t.Errorf("case %d: shared secret differs", i)
		}
		got, err := Decaps(h(c.Seed), &ct1, &ct2)
		if err != nil || !bytes.Equal(got[:], h(c.SharedSecret)) {
			t.Errorf("case %d: decaps differs", i)
		}
		// libcrux's 2400-byte dk is the FIPS 203 expanded key
		// dk_PKE || ek || H(ek) || z, so storing only the seed loses nothing.
		dkb := h(c.Dk)
		_, sk := kyber768.NewKeyFromSeedMLKEM(h(c.Seed)[:32])
		var dkPKE [kyber768.PrivateKeySize]byte
		sk.Pack(dkPKE[:])
		full := append(append([]byte{}, ek[:]...), hdr[:32]...)
		want := append(append(append(dkPKE[:], full...), hdr[32:]...), h(c.Seed)[32:]...)
		if !bytes.Equal(dkb, want) {
			t.Errorf("case %d: dk is not the expanded FIPS 203 key of the seed", i)
		}
	}
}

func BenchmarkKeyGen(b *testing.B) {
	seed := randSeed(b)
	for b.Loop() {
		KeyGen(seed)
	}
}

func BenchmarkEncaps1(b *testing.B) {
	hdr, _, _ := KeyGen(randSeed(b))
	var m [MSize]byte
	for b.Loop() {
		Encaps1(&hdr, &m)
	}
}

func BenchmarkEncaps2(b *testing.B) {
	hdr, ek, _ := KeyGen(randSeed(b))
	var m [MSize]byte
	for b.Loop() {
		Encaps2(&hdr, &ek, &m)
	}
}

func BenchmarkDecaps(b *testing.B) {
	seed := randSeed(b)
	hdr, ek, _ := KeyGen(seed)
	var m [MSize]byte
	ct1, _ := Encaps1(&hdr, &m)
	ct2, _ := Encaps2(&hdr, &ek, &m)
	for b.Loop() {
		Decaps(seed, &ct1, &ct2)
	}
}

func BenchmarkValidateEK(b *testing.B) {
	hdr, ek, _ := KeyGen(randSeed(b))
	for b.Loop() {
		ValidateEK(&hdr, &ek)
	}
}
