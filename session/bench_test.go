package session

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/hushmsg/hush/key"
)

// A benchmark party keeps its state in a MemoryStore, which serializes the
// session record on every store and parses it on every load, as a
// persistent store does.
type benchParty struct {
	c    *Cipher
	st   *MemoryStore
	addr Address
}

func newBenchParty(tb testing.TB, name string, mode PQRatchetMode) *benchParty {
	tb.Helper()
	id, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	st := NewMemoryStore(id, 1)
	addr := Address{Name: name, Device: 1}
	return &benchParty{c: &Cipher{Store: st, Local: addr, PQRatchet: mode}, st: st, addr: addr}
}

// publish makes and stores a fresh set of prekeys and returns the bundle.
func (p *benchParty) publish(tb testing.TB, withKyber bool) *Bundle {
	tb.Helper()
	id, _ := p.st.IdentityKeyPair(tb.Context())
	now := time.Now()
	spk, err := key.GenerateSignedPreKey(rand.Reader, 1, id, now)
	if err != nil {
		tb.Fatal(err)
	}
	opk, err := key.GeneratePreKey(rand.Reader, 1)
	if err != nil {
		tb.Fatal(err)
	}
	p.st.StoreSignedPreKey(spk)
	p.st.StorePreKey(opk)
	b := &Bundle{
		RegistrationID: 1, DeviceID: 1, IdentityKey: id.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		PreKeyID: &opk.ID, PreKey: &opk.KeyPair.Public,
	}
	if withKyber {
		kpk, err := key.GenerateKyberPreKey(rand.Reader, 1, id, now)
		if err != nil {
			tb.Fatal(err)
		}
		p.st.StoreKyberPreKey(kpk, true)
		b.KyberPreKeyID, b.KyberPreKey, b.KyberPreKeySignature = &kpk.ID, kpk.KeyPair.Public, kpk.Signature
	}
	return b
}

// send encrypts and has the peer decrypt, checking the plaintext.
func send(tb testing.TB, from, to *benchParty, pt []byte) {
	ctx := tb.Context()
	ct, err := from.c.Encrypt(ctx, to.addr, pt)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := to.c.Decrypt(ctx, from.addr, ct.Type, ct.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if len(got) != len(pt) {
		tb.Fatal("wrong plaintext")
	}
}

// establishedPair returns Alice and Bob after Alice's first message and
// Bob's answer.
func establishedPair(tb testing.TB, mode PQRatchetMode, withKyber bool) (alice, bob *benchParty) {
	tb.Helper()
	alice, bob = newBenchParty(tb, "alice", mode), newBenchParty(tb, "bob", mode)
	alice.c.AllowX3DH, bob.c.AllowX3DH = !withKyber, !withKyber
	if err := alice.c.ProcessBundle(tb.Context(), bob.addr, bob.publish(tb, withKyber)); err != nil {
		tb.Fatal(err)
	}
	send(tb, alice, bob, []byte("hello"))
	send(tb, bob, alice, []byte("hi"))
	return alice, bob
}

var msg100 = make([]byte, 100)

// BenchmarkSteadyState: one 100-byte message, encrypted and decrypted, in
// the same direction every time (no DH ratchet step).
func BenchmarkSteadyState(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			alice, bob := establishedPair(b, m.mode, true)
			b.ReportAllocs()
			for b.Loop() {
				send(b, alice, bob, msg100)
			}
		})
	}
}

// BenchmarkAlternating: one 100-byte message per iteration, alternating
// direction, so that every message brings a DH ratchet step.
func BenchmarkAlternating(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			alice, bob := establishedPair(b, m.mode, true)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					send(b, alice, bob, msg100)
				} else {
					send(b, bob, alice, msg100)
				}
				i++
			}
		})
	}
}

// BenchmarkSetup: a fresh session per iteration, from Bob's bundle to the
// first message decrypted. Making Bob's keys is not timed.
func BenchmarkSetup(b *testing.B) {
	for _, c := range []struct {
		name      string
		withKyber bool
		mode      PQRatchetMode
	}{
		{"X3DH", false, PQOff},
		{"PQXDH", true, PQOff},
		{"PQXDH+SPQR", true, PQRequired},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := b.Context()
			for b.Loop() {
				b.StopTimer()
				alice, bob := newBenchParty(b, "alice", c.mode), newBenchParty(b, "bob", c.mode)
				alice.c.AllowX3DH, bob.c.AllowX3DH = true, true
				bundle := bob.publish(b, c.withKyber)
				b.StartTimer()
				if err := alice.c.ProcessBundle(ctx, bob.addr, bundle); err != nil {
					b.Fatal(err)
				}
				send(b, alice, bob, msg100)
			}
		})
	}
}

var benchModes = []struct {
	name string
	mode PQRatchetMode
}{
	{"DoubleRatchet", PQOff},
	{"TripleRatchet", PQRequired},
}
