package session

import (
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hushmsg/hush/key"
)

// TestAccumulated drives two parties through 10,000 deterministic steps
// (100 under -short) of sending, delivering in order, delivering late,
// dropping and replaying, all randomness drawn from a SHAKE-128 stream, and
// compares one SHA-256 over every ciphertext and plaintext with a recorded
// digest. Any change in behaviour, wire bytes or randomness use changes the
// digest. The digests were recorded from this implementation (a regression
// check, like Go's TestAccumulated in crypto/mlkem); byte-compatibility with
// libsignal is checked by the vector and interop tests.
func TestAccumulated(t *testing.T) {
	for _, m := range modes {
		t.Run(modeName(m), func(t *testing.T) {
			n := 10000
			if testing.Short() {
				n = 100
			}
			got := accumulate(t, m, n)
			want := accumulatedDigests[fmt.Sprint(modeName(m), "/", n)]
			if got != want {
				t.Fatalf("digest %s, want %s", got, want)
			}
		})
	}
}

var accumulatedDigests = map[string]string{
	"spqr-required/10000": "618882c29c065a2a10f5a5b68bf5e279377e019d792edb33d1d84ab6e1b6e799",
	"spqr-offered/10000":  "ef00747aff1e8a7f8ab9bd0fda5c43cddcc955d333e98db35723d3dd9772d659",
	"spqr-required/100":   "daed86b83a3d57b46dda14ed66679fc92ff2ca6611e508b45bb5370230c16deb",
	"spqr-offered/100":    "e21d98425b35f6b2ee2faba649e2602b37060cce8e6759446b751e579127787b",
	"spqr-off/100":        "594d28534a8da2db6e44c7063a9312ac80a6d16c4733deb4f4294e7528a67b1d",
	"spqr-off/10000":      "00776b5af7f2a05efa082a282856abff8e331dfa778d57601336b043b07109d5",
}

func accumulate(t *testing.T, mode PQRatchetMode, steps int) string {
	ctx := t.Context()
	shake := sha3.NewSHAKE128()
	shake.Write([]byte("hush accumulated session test"))
	rnd := io.Reader(shake)
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { return clock }
	mk := func(name string) *benchParty {
		id, err := key.GenerateIdentityKeyPair(rnd)
		if err != nil {
			t.Fatal(err)
		}
		st := NewMemoryStore(id, 1)
		addr := Address{Name: name, Device: 1}
		return &benchParty{c: &Cipher{Store: st, Local: addr, PQRatchet: mode, Rand: rnd, Now: now}, st: st, addr: addr}
	}
	alice, bob := mk("alice"), mk("bob")
	// Bob's prekeys, from the same stream.
	idB, _ := bob.st.IdentityKeyPair(ctx)
	spk, _ := key.GenerateSignedPreKey(rnd, 1, idB, clock)
	opk, _ := key.GeneratePreKey(rnd, 1)
	kpk, _ := key.GenerateKyberPreKey(rnd, 1, idB, clock)
	bob.st.StoreSignedPreKey(spk)
	bob.st.StorePreKey(opk)
	bob.st.StoreKyberPreKey(kpk, true)
	bundle := &Bundle{RegistrationID: 1, DeviceID: 1, IdentityKey: idB.Public,
		SignedPreKeyID: 1, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		PreKeyID: &opk.ID, PreKey: &opk.KeyPair.Public,
		KyberPreKeyID: &kpk.ID, KyberPreKey: kpk.KeyPair.Public, KyberPreKeySignature: kpk.Signature}
	if err := alice.c.ProcessBundle(ctx, bob.addr, bundle); err != nil {
		t.Fatal(err)
	}

	type inflight struct {
		ct   *Ciphertext
		text string
	}
	pending := map[*benchParty][]inflight{alice: nil, bob: nil} // messages waiting for that party
	peer := map[*benchParty]*benchParty{alice: bob, bob: alice}
	var delivered []inflight // for replays
	h := sha256.New()
	var buf [8]byte
	draw := func() uint64 {
		shake.Read(buf[:])
		return binary.LittleEndian.Uint64(buf[:])
	}
	answered := false
	for step := range steps {
		clock = clock.Add(time.Second)
		r := draw()
		who := alice
		if r&1 == 1 && answered {
			who = bob
		}
		switch op := (r >> 1) % 10; {
		case op < 5: // send
			text := fmt.Sprintf("step %d from %s", step, who.addr.Name)
			ct, err := who.c.Encrypt(ctx, peer[who].addr, []byte(text))
			if err != nil {
				t.Fatalf("step %d: encrypt: %v", step, err)
			}
			h.Write(ct.Body)
			pending[peer[who]] = append(pending[peer[who]], inflight{ct, text})
		case op < 9: // deliver one waiting message, usually the oldest
			q := pending[who]
			if len(q) == 0 {
				continue
			}
			i := 0
			if op == 8 {
				i = int(draw() % uint64(len(q)))
			}
			msg := q[i]
			pending[who] = append(q[:i:i], q[i+1:]...)
			if draw()%50 == 0 { // dropped in transit
				continue
			}
			pt, err := who.c.Decrypt(ctx, peer[who].addr, msg.ct.Type, msg.ct.Body)
			if err != nil {
				t.Fatalf("step %d: %s decrypts %q: %v", step, who.addr.Name, msg.text, err)
			}
			if string(pt) != msg.text {
				t.Fatalf("step %d: got %q, want %q", step, pt, msg.text)
			}
			h.Write(pt)
			if who == bob {
				answered = true
			}
			delivered = append(delivered, msg)
		default: // replay something already delivered: must be refused
			if len(delivered) == 0 {
				continue
			}
			msg := delivered[draw()%uint64(len(delivered))]
			to := bob
			if msg.text[len(msg.text)-3:] == "bob" {
				to = alice
			}
			if _, err := to.c.Decrypt(ctx, peer[to].addr, msg.ct.Type, msg.ct.Body); err == nil {
				t.Fatalf("step %d: replay of %q accepted", step, msg.text)
			}
			h.Write([]byte{0xff})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
