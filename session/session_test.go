package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/wire"
)

// modes are the SPQR modes every conversation test runs under.
var modes = []PQRatchetMode{PQRequired, PQOffered, PQOff}

func modeName(m PQRatchetMode) string {
	return [...]string{"spqr-required", "spqr-offered", "spqr-off"}[m]
}

// snapshot serializes everything the store holds for addr, to check that a
// failed call changed nothing.
func snapshot(t *testing.T, p *benchParty, peer Address) []byte {
	t.Helper()
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	var b bytes.Buffer
	b.Write(p.st.sessions[peer])
	if k, ok := p.st.identities[peer]; ok {
		b.Write(k.Bytes())
	}
	fmt.Fprintf(&b, "|%d|%d", len(p.st.preKeys), len(p.st.kyber))
	return b.Bytes()
}

func mustEncrypt(t *testing.T, from, to *benchParty, pt string) *Ciphertext {
	ctx := t.Context()
	t.Helper()
	ct, err := from.c.Encrypt(ctx, to.addr, []byte(pt))
	if err != nil {
		t.Fatalf("%s encrypts: %v", from.addr, err)
	}
	return ct
}

func mustDecrypt(t *testing.T, to, from *benchParty, ct *Ciphertext, want string) {
	ctx := t.Context()
	t.Helper()
	got, err := to.c.Decrypt(ctx, from.addr, ct.Type, ct.Body)
	if err != nil {
		t.Fatalf("%s decrypts: %v", to.addr, err)
	}
	if string(got) != want {
		t.Fatalf("%s decrypted %q, want %q", to.addr, got, want)
	}
}

// refuse checks that decryption fails with ErrDecrypt and changes nothing.
func refuse(t *testing.T, to, from *benchParty, ct *Ciphertext) error {
	ctx := t.Context()
	t.Helper()
	before := snapshot(t, to, from.addr)
	_, err := to.c.Decrypt(ctx, from.addr, ct.Type, ct.Body)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("%s: decrypt returned %v, want ErrDecrypt", to.addr, err)
	}
	if err.Error() != ErrDecrypt.Error() {
		t.Fatalf("decryption error says more than it should: %q", err)
	}
	if !bytes.Equal(before, snapshot(t, to, from.addr)) {
		t.Fatalf("%s: a failed decryption changed the store", to.addr)
	}
	return err
}

func TestConversation(t *testing.T) {
	ctx := t.Context()
	for _, m := range modes {
		t.Run(modeName(m), func(t *testing.T) {
			alice, bob := newBenchParty(t, "alice", m), newBenchParty(t, "bob", m)
			if err := alice.c.ProcessBundle(ctx, bob.addr, bob.publish(t, true)); err != nil {
				t.Fatal(err)
			}
			// Until Bob answers, Alice sends PreKey messages.
			var first []*Ciphertext
			for i := range 3 {
				ct := mustEncrypt(t, alice, bob, fmt.Sprint("hello ", i))
				if ct.Type != TypePreKey {
					t.Fatalf("message %d has type %d", i, ct.Type)
				}
				first = append(first, ct)
			}
			// Delivered out of order; the first to arrive sets up the session.
			mustDecrypt(t, bob, alice, first[2], "hello 2")
			mustDecrypt(t, bob, alice, first[0], "hello 0")
			mustDecrypt(t, bob, alice, first[1], "hello 1")
			refuse(t, bob, alice, first[1])
			reply := mustEncrypt(t, bob, alice, "hi alice")
			if reply.Type != TypeSignal {
				t.Fatalf("reply has type %d", reply.Type)
			}
			mustDecrypt(t, alice, bob, reply, "hi alice")
			if ct := mustEncrypt(t, alice, bob, "answered"); ct.Type != TypeSignal {
				t.Fatalf("after the answer Alice sends type %d", ct.Type)
			} else {
				mustDecrypt(t, bob, alice, ct, "answered")
			}
			for i := range 50 {
				a, b := alice, bob
				if i%3 == 0 {
					a, b = bob, alice
				}
				mustDecrypt(t, b, a, mustEncrypt(t, a, b, fmt.Sprint("turn ", i)), fmt.Sprint("turn ", i))
			}
		})
	}
}

func TestFailedDecryptChangesNothing(t *testing.T) {
	ctx := t.Context()
	for _, m := range modes {
		t.Run(modeName(m), func(t *testing.T) {
			alice, bob := newBenchParty(t, "alice", m), newBenchParty(t, "bob", m)
			if err := alice.c.ProcessBundle(ctx, bob.addr, bob.publish(t, true)); err != nil {
				t.Fatal(err)
			}
			pre := mustEncrypt(t, alice, bob, "first")
			// Every single-bit change of the PreKey message is refused and
			// leaves Bob's store alone (prekeys included).
			for i := 0; i < len(pre.Body); i += 7 {
				bad := bytes.Clone(pre.Body)
				bad[i] ^= 0x20
				refuse(t, bob, alice, &Ciphertext{TypePreKey, bad})
			}
			refuse(t, bob, alice, &Ciphertext{TypeSignal, pre.Body})
			mustDecrypt(t, bob, alice, pre, "first")
			sig := mustEncrypt(t, bob, alice, "reply")
			for i := range sig.Body {
				bad := bytes.Clone(sig.Body)
				bad[i] ^= 0x01
				refuse(t, alice, bob, &Ciphertext{TypeSignal, bad})
			}
			refuse(t, alice, bob, &Ciphertext{TypeSignal, sig.Body[:len(sig.Body)-1]})
			mustDecrypt(t, alice, bob, sig, "reply")
			err := refuse(t, alice, bob, sig)
			if !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replay: %v", err)
			}
			// A message from a stranger with no session.
			eve := newBenchParty(t, "eve", m)
			if _, err := eve.c.Decrypt(ctx, alice.addr, TypeSignal, sig.Body); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("no session: %v", err)
			}
		})
	}
}

func TestIdentityChange(t *testing.T) {
	ctx := t.Context()
	alice, bob := establishedPair(t, PQOff, true)
	// Bob moves to a new device: a new identity with new prekeys.
	bob2 := newBenchParty(t, "bob", PQOff)
	bundle := bob2.publish(t, true)
	err := alice.c.ProcessBundle(ctx, bob.addr, bundle)
	var ue *UntrustedIdentityError
	if !errors.As(err, &ue) {
		t.Fatalf("new identity accepted: %v", err)
	}
	if ue.Known == nil || *ue.Known != bob.c.mustIdentity(t) || ue.Received != bundle.IdentityKey {
		t.Fatal("error does not name the known and received keys")
	}
	// A PreKey message from the new identity is refused the same way.
	if err := bob2.c.ProcessBundle(ctx, alice.addr, alice.publish(t, true)); err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, bob2, alice, "it's me, new device")
	if _, err := alice.c.Decrypt(ctx, bob.addr, ct.Type, ct.Body); !errors.As(err, &ue) {
		t.Fatalf("PreKey message from a changed identity: %v", err)
	}
	// The application accepts the new key; then everything works.
	if _, err := alice.st.SaveIdentity(ctx, bob.addr, bundle.IdentityKey); err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, alice, bob2, ct, "it's me, new device")
	mustDecrypt(t, bob2, alice, mustEncrypt(t, alice, bob2, "welcome back"), "welcome back")
}

func (c *Cipher) mustIdentity(t *testing.T) key.IdentityKey {
	ctx := t.Context()
	id, err := c.Store.IdentityKeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id.Public
}

// TestSimultaneousInitiation: both start a session at once and their first
// messages cross. Each side ends up with two sessions; messages of both
// decrypt, thanks to the archived state, and the conversation settles.
func TestSimultaneousInitiation(t *testing.T) {
	ctx := t.Context()
	for _, m := range modes {
		t.Run(modeName(m), func(t *testing.T) {
			alice, bob := newBenchParty(t, "alice", m), newBenchParty(t, "bob", m)
			ab, ba := bob.publish(t, true), alice.publish(t, true)
			if err := alice.c.ProcessBundle(ctx, bob.addr, ab); err != nil {
				t.Fatal(err)
			}
			if err := bob.c.ProcessBundle(ctx, alice.addr, ba); err != nil {
				t.Fatal(err)
			}
			fromA := mustEncrypt(t, alice, bob, "from alice")
			fromB := mustEncrypt(t, bob, alice, "from bob")
			mustDecrypt(t, bob, alice, fromA, "from alice")
			mustDecrypt(t, alice, bob, fromB, "from bob")
			for i := range 6 {
				mustDecrypt(t, bob, alice, mustEncrypt(t, alice, bob, fmt.Sprint("a", i)), fmt.Sprint("a", i))
				mustDecrypt(t, alice, bob, mustEncrypt(t, bob, alice, fmt.Sprint("b", i)), fmt.Sprint("b", i))
			}
			rec, _ := alice.st.LoadSession(ctx, bob.addr)
			if rec.ArchivedCount() == 0 {
				t.Fatal("no archived session after simultaneous initiation")
			}
		})
	}
}

// TestForwardSecrecy: a copy of a party's state taken now cannot read
// messages sent after a round trip (post-compromise security through the
// DH ratchet), and the current state cannot read messages already read.
func TestForwardSecrecy(t *testing.T) {
	ctx := t.Context()
	for _, m := range modes {
		t.Run(modeName(m), func(t *testing.T) {
			alice, bob := establishedPair(t, m, true)
			stolen, _ := bob.st.LoadSession(ctx, alice.addr)
			stolenBytes, _ := stolen.MarshalBinary()

			old := mustEncrypt(t, alice, bob, "already read")
			mustDecrypt(t, bob, alice, old, "already read")
			refuse(t, bob, alice, old) // consumed keys are gone

			// A round trip: Bob answers, Alice sends on a new chain.
			mustDecrypt(t, alice, bob, mustEncrypt(t, bob, alice, "ratchet"), "ratchet")
			later := mustEncrypt(t, alice, bob, "after the ratchet")

			// The attacker restores Bob's old state into a copy of Bob.
			thief := newBenchParty(t, "bob", m)
			thief.st.identity = bob.st.identity
			r, err := ParseRecord(stolenBytes)
			if err != nil {
				t.Fatal(err)
			}
			thief.st.StoreSession(ctx, alice.addr, r)
			thief.st.identities[alice.addr] = alice.c.mustIdentity(t)
			if _, err := thief.c.Decrypt(ctx, alice.addr, later.Type, later.Body); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("old state read a message after the ratchet: %v", err)
			}
			mustDecrypt(t, bob, alice, later, "after the ratchet")
		})
	}
}

func TestBundleChecks(t *testing.T) {
	ctx := t.Context()
	alice, bob := newBenchParty(t, "alice", PQOff), newBenchParty(t, "bob", PQOff)
	b := bob.publish(t, true)
	bad := *b
	bad.SignedPreKeySignature = bytes.Clone(b.SignedPreKeySignature)
	bad.SignedPreKeySignature[3] ^= 1
	if err := alice.c.ProcessBundle(ctx, bob.addr, &bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad signed prekey signature: %v", err)
	}
	bad = *b
	bad.KyberPreKeySignature = bytes.Clone(b.KyberPreKeySignature)
	bad.KyberPreKeySignature[3] ^= 1
	if err := alice.c.ProcessBundle(ctx, bob.addr, &bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad Kyber prekey signature: %v", err)
	}
	bad = *b
	bad.KyberPreKey, bad.KyberPreKeyID, bad.KyberPreKeySignature = nil, nil, nil
	if err := alice.c.ProcessBundle(ctx, bob.addr, &bad); !errors.Is(err, ErrNoKyber) {
		t.Fatalf("X3DH bundle without AllowX3DH: %v", err)
	}
	if rec, _ := alice.st.LoadSession(ctx, bob.addr); rec != nil {
		t.Fatal("a refused bundle left a session")
	}
	// Bundle JSON round trip, and refusal of malformed JSON.
	j, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var b2 Bundle
	if err := b2.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	if j2, _ := b2.MarshalJSON(); !bytes.Equal(j, j2) {
		t.Fatalf("bundle JSON does not round-trip:\n%s\n%s", j, j2)
	}
	for _, s := range []string{`{}`, `{"identityKey":"AAAA"}`, `[1]`, string(bytes.Replace(j, []byte(`"preKey":"`), []byte(`"preKey":"A`), 1))} {
		if err := b2.UnmarshalJSON([]byte(s)); err == nil {
			t.Errorf("bundle %s accepted", s)
		}
	}
}

// TestX3DHPolicy: a version-3 PreKey message is refused unless AllowX3DH.
func TestX3DHPolicy(t *testing.T) {
	ctx := t.Context()
	alice, bob := newBenchParty(t, "alice", PQOff), newBenchParty(t, "bob", PQOff)
	alice.c.AllowX3DH = true
	if err := alice.c.ProcessBundle(ctx, bob.addr, bob.publish(t, false)); err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, alice, bob, "old style")
	if ct.Body[0] != 0x34 {
		t.Fatalf("X3DH message version byte %#x", ct.Body[0])
	}
	refuse(t, bob, alice, ct)
	bob.c.AllowX3DH = true
	mustDecrypt(t, bob, alice, ct, "old style")
}

func TestUnknownType(t *testing.T) {
	ctx := t.Context()
	alice := newBenchParty(t, "alice", PQOff)
	if _, err := alice.c.Decrypt(ctx, Address{"x", 1}, 7, []byte{1}); err == nil || errors.Is(err, ErrDecrypt) {
		t.Fatalf("type 7: %v", err)
	}
}

// TestHushSessionsRunSPQR: by default (PQRequired) every message between
// two hush devices carries SPQR version 1 bytes, from the first on.
func TestHushSessionsRunSPQR(t *testing.T) {
	ctx := t.Context()
	alice, bob := newBenchParty(t, "alice", PQRequired), newBenchParty(t, "bob", PQRequired)
	if err := alice.c.ProcessBundle(ctx, bob.addr, bob.publish(t, true)); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		ct := mustEncrypt(t, from, to, "x")
		body := ct.Body
		if ct.Type == TypePreKey {
			pm, err := wire.ParsePreKeySignalMessage(body)
			if err != nil {
				t.Fatal(err)
			}
			body = pm.Message.Bytes()
		}
		m, err := wire.ParseSignalMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.PQRatchet) == 0 || m.PQRatchet[0] != 1 {
			t.Fatalf("message %d carries no SPQR v1 bytes: %x", i, m.PQRatchet)
		}
		mustDecrypt(t, to, from, ct, "x")
	}
	rec, _ := bob.st.LoadSession(ctx, alice.addr)
	if rec.Current().PQ == nil {
		t.Fatal("Bob's session has no SPQR state")
	}
}
