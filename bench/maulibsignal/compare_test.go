package maulibsignal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// One run of these benchmarks gives go.mau.fi/libsignal and hush side by
// side, as sub-benchmarks named impl=..., so that
//
//	go test -run XXX -bench . -count 10 > out.txt
//	benchstat -col /impl out.txt
//
// prints the ratios. hush is measured through its public API the same way
// go.mau.fi is: 100-byte messages, serialized and parsed, each session
// record serialized and parsed back between messages (session.MemoryStore
// keeps records as bytes). impl=floor is the cryptography a steady-state
// message cannot avoid, done directly with the standard library.
//
// This module imports hush; hush never imports this module (go.mau.fi is
// GPL-3.0).

func BenchmarkSteadyState(b *testing.B) {
	b.Run("impl=mau", benchMauSteadyState)
	b.Run("impl=hush", func(b *testing.B) { hushSteady(b, session.PQOff) })
	b.Run("impl=hush-spqr", func(b *testing.B) { hushSteady(b, session.PQRequired) })
	b.Run("impl=floor", benchFloor)
}

func BenchmarkAlternating(b *testing.B) {
	b.Run("impl=mau", benchMauAlternating)
	b.Run("impl=hush", func(b *testing.B) { hushAlternating(b, session.PQOff) })
	b.Run("impl=hush-spqr", func(b *testing.B) { hushAlternating(b, session.PQRequired) })
}

func BenchmarkSetup(b *testing.B) {
	b.Run("proto=X3DH/impl=mau", benchMauSetupX3DH)
	b.Run("proto=X3DH/impl=hush", func(b *testing.B) { hushSetup(b, false, session.PQOff) })
	b.Run("proto=PQXDH/impl=hush", func(b *testing.B) { hushSetup(b, true, session.PQOff) })
	b.Run("proto=PQXDH+SPQR/impl=hush", func(b *testing.B) { hushSetup(b, true, session.PQRequired) })
}

type hushParty struct {
	c    *session.Cipher
	st   *session.MemoryStore
	id   *key.IdentityKeyPair
	addr session.Address
}

func newHushParty(tb testing.TB, name string, mode session.PQRatchetMode) *hushParty {
	id, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	st := session.NewMemoryStore(id, 1)
	addr := session.Address{Name: name, Device: 1}
	return &hushParty{c: &session.Cipher{Store: st, Local: addr, PQRatchet: mode, AllowX3DH: true}, st: st, id: id, addr: addr}
}

func (p *hushParty) bundle(tb testing.TB, withKyber bool) *session.Bundle {
	now := time.Now()
	spk, err := key.GenerateSignedPreKey(rand.Reader, 1, p.id, now)
	if err != nil {
		tb.Fatal(err)
	}
	opk, err := key.GeneratePreKey(rand.Reader, 1)
	if err != nil {
		tb.Fatal(err)
	}
	p.st.StoreSignedPreKey(spk)
	p.st.StorePreKey(opk)
	b := &session.Bundle{RegistrationID: 1, DeviceID: 1, IdentityKey: p.id.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		PreKeyID: &opk.ID, PreKey: &opk.KeyPair.Public}
	if withKyber {
		kpk, err := key.GenerateKyberPreKey(rand.Reader, 1, p.id, now)
		if err != nil {
			tb.Fatal(err)
		}
		p.st.StoreKyberPreKey(kpk, true)
		b.KyberPreKeyID, b.KyberPreKey, b.KyberPreKeySignature = &kpk.ID, kpk.KeyPair.Public, kpk.Signature
	}
	return b
}

func hushSend(tb testing.TB, from, to *hushParty, msg []byte) {
	ctx := tb.Context()
	ct, err := from.c.Encrypt(ctx, to.addr, msg)
	if err != nil {
		tb.Fatal(err)
	}
	pt, err := to.c.Decrypt(ctx, from.addr, ct.Type, ct.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if len(pt) != len(msg) {
		tb.Fatal("wrong plaintext")
	}
}

func hushPair(tb testing.TB, mode session.PQRatchetMode) (*hushParty, *hushParty) {
	a, b := newHushParty(tb, "alice", mode), newHushParty(tb, "bob", mode)
	if err := a.c.ProcessBundle(tb.Context(), b.addr, b.bundle(tb, true)); err != nil {
		tb.Fatal(err)
	}
	hushSend(tb, a, b, []byte("hello"))
	hushSend(tb, b, a, []byte("hi"))
	return a, b
}

func hushSteady(b *testing.B, mode session.PQRatchetMode) {
	a, bob := hushPair(b, mode)
	msg := message()
	b.ReportAllocs()
	for b.Loop() {
		hushSend(b, a, bob, msg)
	}
}

func hushAlternating(b *testing.B, mode session.PQRatchetMode) {
	a, bob := hushPair(b, mode)
	msg := message()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			hushSend(b, a, bob, msg)
		} else {
			hushSend(b, bob, a, msg)
		}
		i++
	}
}

func hushSetup(b *testing.B, withKyber bool, mode session.PQRatchetMode) {
	msg := message()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		a, bob := newHushParty(b, "alice", mode), newHushParty(b, "bob", mode)
		bundle := bob.bundle(b, withKyber)
		b.StartTimer()
		if err := a.c.ProcessBundle(b.Context(), bob.addr, bundle); err != nil {
			b.Fatal(err)
		}
		hushSend(b, a, bob, msg)
	}
}

// benchFloor: on each side the two chain-key HMACs, the message-key HKDF,
// one AES-256-CBC operation and one HMAC-SHA256 over the message.
func benchFloor(b *testing.B) {
	var ck [32]byte
	rand.Read(ck[:])
	msg, ident := message(), make([]byte, 66)
	b.ReportAllocs()
	for b.Loop() {
		for side := range 2 {
			seed := hmacOnce(ck[:], []byte{1})
			next := hmacOnce(ck[:], []byte{2})
			okm, _ := hkdf.Key(sha256.New, seed, nil, "WhisperMessageKeys", 80)
			block, _ := aes.NewCipher(okm[:32])
			buf := make([]byte, 112)
			copy(buf, msg)
			if side == 0 {
				cipher.NewCBCEncrypter(block, okm[64:80]).CryptBlocks(buf, buf)
			} else {
				cipher.NewCBCDecrypter(block, okm[64:80]).CryptBlocks(buf, buf)
			}
			m := hmac.New(sha256.New, okm[32:64])
			m.Write(ident)
			m.Write(buf)
			m.Sum(nil)
			copy(ck[:], next)
		}
	}
}

func hmacOnce(k, msg []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write(msg)
	return m.Sum(nil)
}

// TestHushRoundTrip proves the hush side really encrypts and decrypts.
func TestHushRoundTrip(t *testing.T) {
	a, b := hushPair(t, session.PQRequired)
	for range 5 {
		hushSend(t, a, b, message())
		hushSend(t, b, a, message())
	}
}
