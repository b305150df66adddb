package senderkey

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// member is one device in a test group, with its own store.
type member struct {
	c  *Cipher
	st *MemoryStore
}

func newMember(name string) *member {
	st := NewMemoryStore()
	return &member{c: &Cipher{Store: st, Local: session.Address{Name: name, Device: 1}}, st: st}
}

var testGroup = mustID("0b8e5c1e-6f7a-4d2b-9c3e-1a2b3c4d5e6f")

// join gives r the sender's chain as it stands now.
func join(t *testing.T, sender, r *member, id DistributionID) {
	t.Helper()
	d, err := sender.c.Distribution(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	// It travels serialized, inside a one-to-one session.
	dm, err := ParseDistributionMessage(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.c.Process(t.Context(), sender.c.Local, dm); err != nil {
		t.Fatal(err)
	}
}

func send(t *testing.T, m *member, id DistributionID, text string) []byte {
	t.Helper()
	msg, err := m.c.Encrypt(t.Context(), id, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Bytes()
}

func mustRead(t *testing.T, r, sender *member, body []byte, want string) {
	t.Helper()
	pt, err := r.c.Decrypt(t.Context(), sender.c.Local, body)
	if err != nil {
		t.Fatalf("%s reading %s: %v", r.c.Local, want, err)
	}
	if string(pt) != want {
		t.Fatalf("decrypted %q, want %q", pt, want)
	}
}

// refused checks that decrypting body fails with ErrDecrypt (and each of
// also), with the uniform message, and leaves r's record byte-identical.
func refused(t *testing.T, r, sender *member, id DistributionID, body []byte, also ...error) error {
	t.Helper()
	before := r.st.Raw(sender.c.Local, id)
	_, err := r.c.Decrypt(t.Context(), sender.c.Local, body)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("got %v, want ErrDecrypt", err)
	}
	if err.Error() != ErrDecrypt.Error() {
		t.Fatalf("error message %q says more than %q", err, ErrDecrypt)
	}
	for _, e := range also {
		if !errors.Is(err, e) {
			t.Fatalf("got %v, want also %v", errors.Unwrap(err), e)
		}
	}
	if after := r.st.Raw(sender.c.Local, id); !bytes.Equal(before, after) {
		t.Fatal("a failed decryption changed the stored record")
	}
	return err
}

func TestInOrderAndShuffled(t *testing.T) {
	alice, bob, carol := newMember("alice"), newMember("bob"), newMember("carol")
	join(t, alice, bob, testGroup)
	join(t, alice, carol, testGroup)
	var msgs [][]byte
	for i := range 200 {
		msgs = append(msgs, send(t, alice, testGroup, fmt.Sprint("message ", i)))
	}
	for i, m := range msgs {
		mustRead(t, bob, alice, m, fmt.Sprint("message ", i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range rng.Perm(len(msgs)) {
		mustRead(t, carol, alice, msgs[i], fmt.Sprint("message ", i))
	}
	for _, m := range []*member{bob, carol} {
		r, _ := m.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
		if n := len(r.states[0].skipped); n != 0 {
			t.Fatalf("%s keeps %d skipped keys after reading everything", m.c.Local, n)
		}
	}
}

func TestForwardJumpLimit(t *testing.T) {
	alice, bob := newMember("alice"), newMember("bob")
	join(t, alice, bob, testGroup)
	first := send(t, alice, testGroup, "first")
	// Bob expects iteration 1 next.
	snap := alice.st.Raw(alice.c.Local, testGroup)
	setIteration(t, alice, testGroup, 1+MaxForwardJumps+1)
	tooFar := send(t, alice, testGroup, "too far") // 25,001 past the expected 1
	refused(t, bob, alice, testGroup, tooFar)
	alice.st.records[memKey{alice.c.Local, testGroup}] = snap
	setIteration(t, alice, testGroup, 1+MaxForwardJumps)
	far := send(t, alice, testGroup, "far") // exactly 25,000 ahead
	mustRead(t, bob, alice, first, "first")
	mustRead(t, bob, alice, far, "far")
	// The keys of the newest MaxMessageKeys iterations passed are kept.
	r, _ := bob.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
	s := r.states[0]
	if len(s.skipped) != MaxMessageKeys || s.skipped[0].iteration != 1+MaxForwardJumps-MaxMessageKeys || s.chain.Index != 1+MaxForwardJumps+1 {
		t.Fatalf("after the jump: %d keys from %d, chain at %d", len(s.skipped), s.skipped[0].iteration, s.chain.Index)
	}
	// And the one past the limit of the new position still is too far.
	setIteration(t, alice, testGroup, 1+MaxForwardJumps+1+MaxForwardJumps+1)
	refused(t, bob, alice, testGroup, send(t, alice, testGroup, "too far again"))
}

// setIteration moves the sender's chain to iteration n (stepping it, as a
// sender that sent n messages would have).
func setIteration(t *testing.T, m *member, id DistributionID, n uint32) {
	t.Helper()
	r, err := m.st.LoadSenderKey(t.Context(), m.c.Local, id)
	if err != nil {
		t.Fatal(err)
	}
	s := r.states[0]
	if n < s.chain.Index {
		t.Fatalf("cannot rewind from %d to %d", s.chain.Index, n)
	}
	for s.chain.Index < n {
		s.chain = s.chain.Next()
	}
	m.st.StoreSenderKey(t.Context(), m.c.Local, id, r)
}

func TestSkippedKeysKept(t *testing.T) {
	alice, bob := newMember("alice"), newMember("bob")
	join(t, alice, bob, testGroup)
	msgs := map[int][]byte{}
	for _, i := range []int{0, 1, 598, 599, 2000, 2001, 2002, 2600} {
		setIteration(t, alice, testGroup, uint32(i))
		msgs[i] = send(t, alice, testGroup, fmt.Sprint(i))
	}
	skipped := func() []skippedKey {
		r, _ := bob.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
		return r.states[0].skipped
	}
	// Reading 2001 skips iterations 0-2000: the oldest key is dropped.
	mustRead(t, bob, alice, msgs[2001], "2001")
	if k := skipped(); len(k) != MaxMessageKeys || k[0].iteration != 1 {
		t.Fatalf("%d keys kept, oldest %d", len(k), k[0].iteration)
	}
	refused(t, bob, alice, testGroup, msgs[0], ErrDuplicate)
	mustRead(t, bob, alice, msgs[1], "1")
	// 1,999 keys kept (2-2000); reading 2600 adds 598 (2002-2599), and the
	// 597 oldest go: iteration 599 is the oldest kept.
	mustRead(t, bob, alice, msgs[2600], "2600")
	if k := skipped(); len(k) != MaxMessageKeys || k[0].iteration != 599 || k[len(k)-1].iteration != 2599 {
		t.Fatalf("%d keys kept, %d to %d", len(k), k[0].iteration, k[len(k)-1].iteration)
	}
	refused(t, bob, alice, testGroup, msgs[598], ErrDuplicate)
	mustRead(t, bob, alice, msgs[599], "599")
	mustRead(t, bob, alice, msgs[2000], "2000")
	mustRead(t, bob, alice, msgs[2002], "2002")
}

func TestReplayAndTamperingRefused(t *testing.T) {
	alice, bob := newMember("alice"), newMember("bob")
	join(t, alice, bob, testGroup)
	m0 := send(t, alice, testGroup, "hello group")
	m1 := send(t, alice, testGroup, "second")
	// Every single-bit change anywhere is refused, and changes nothing.
	for i := range len(m1) {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(m1)
			bad[i] ^= bit
			refused(t, bob, alice, testGroup, bad)
		}
	}
	refused(t, bob, alice, testGroup, m1[:len(m1)-1])
	refused(t, bob, alice, testGroup, append(bytes.Clone(m1), 0))
	refused(t, bob, alice, testGroup, nil)
	mustRead(t, bob, alice, m1, "second")
	mustRead(t, bob, alice, m0, "hello group")
	refused(t, bob, alice, testGroup, m0, ErrDuplicate)
	refused(t, bob, alice, testGroup, m1, ErrDuplicate)
}

func TestSignedByAnotherKeyRefused(t *testing.T) {
	alice, mallory, bob := newMember("alice"), newMember("mallory"), newMember("bob")
	join(t, alice, bob, testGroup)
	// Mallory knows Alice's chain (she is a member) and forges a message
	// with her own signing key.
	join(t, alice, mallory, testGroup)
	r, _ := mallory.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
	s := r.states[0]
	forger, err := key.GenerateECKeyPair(newSeeded(7))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := s.chain.Step()
	mk := messageKeys(&seed)
	h := header{version: MessageVersion, distributionID: testGroup, chainID: s.chainID, iteration: s.chain.Index}
	forged, err := sealMessage(h, &mk, []byte("from alice, really"), &forger.Private, newSeeded(8))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, bob, alice, testGroup, forged.Bytes())
	mustRead(t, bob, alice, send(t, alice, testGroup, "real"), "real")
}

func TestUnknownSenderOrChain(t *testing.T) {
	alice, bob, carol := newMember("alice"), newMember("bob"), newMember("carol")
	join(t, alice, bob, testGroup)
	m := send(t, alice, testGroup, "hi")
	// Carol has no chain of Alice's.
	refused(t, carol, alice, testGroup, m, ErrNoSenderKey)
	// Bob has Alice's chain under Alice's address, not Carol's.
	refused(t, bob, carol, testGroup, m, ErrNoSenderKey)
	// Another distribution id.
	other := mustID("00000000-0000-4000-8000-000000000001")
	if _, err := alice.c.Encrypt(t.Context(), other, []byte("x")); !errors.Is(err, ErrNoSenderKey) {
		t.Fatalf("encrypt without a chain: %v", err)
	}
	// A chain id Bob does not have.
	r, _ := alice.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
	r.states[0].chainID ^= 1
	alice.st.StoreSenderKey(t.Context(), alice.c.Local, testGroup, r)
	refused(t, bob, alice, testGroup, send(t, alice, testGroup, "new chain id"), ErrNoSenderKey)
}

func TestProcessAgainDoesNotRewind(t *testing.T) {
	alice, bob := newMember("alice"), newMember("bob")
	d, err := alice.c.Distribution(t.Context(), testGroup)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Process(t.Context(), alice.c.Local, d); err != nil {
		t.Fatal(err)
	}
	m := send(t, alice, testGroup, "once")
	mustRead(t, bob, alice, m, "once")
	if err := bob.c.Process(t.Context(), alice.c.Local, d); err != nil {
		t.Fatal(err)
	}
	refused(t, bob, alice, testGroup, m, ErrDuplicate)
}

func TestRecordKeepsFiveStates(t *testing.T) {
	bob := newMember("bob")
	alice := session.Address{Name: "alice", Device: 1}
	var dists []*DistributionMessage
	for i := range MaxStates + 2 {
		sender := newMember("alice")
		sender.c.Rand = newSeeded(uint64(100 + i))
		d, err := sender.c.Distribution(t.Context(), testGroup)
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.c.Process(t.Context(), alice, d); err != nil {
			t.Fatal(err)
		}
		dists = append(dists, d)
		r, _ := bob.st.LoadSenderKey(t.Context(), alice, testGroup)
		if r.StateCount() != min(i+1, MaxStates) {
			t.Fatalf("after %d distributions the record keeps %d states", i+1, r.StateCount())
		}
	}
	r, _ := bob.st.LoadSenderKey(t.Context(), alice, testGroup)
	if r.StateCount() != MaxStates {
		t.Fatalf("record keeps %d states, want %d", r.StateCount(), MaxStates)
	}
	for i, d := range dists {
		kept := r.stateForChain(d.ChainID()) != nil
		if kept != (i >= 2) {
			t.Fatalf("distribution %d kept: %v", i, kept)
		}
	}
	if r.states[0].chainID != dists[len(dists)-1].ChainID() {
		t.Fatal("the newest state is not first")
	}
	// The same chain id with another signing key replaces the state.
	d := dists[3]
	forged := newDistributionMessage(d.header, &d.chainKey, key.ECPublic{})
	if err := bob.c.Process(t.Context(), alice, forged); err != nil {
		t.Fatal(err)
	}
	r, _ = bob.st.LoadSenderKey(t.Context(), alice, testGroup)
	if r.StateCount() != MaxStates || r.states[0].chainID != d.ChainID() || r.states[0].signing != (key.ECPublic{}) {
		t.Fatalf("after a new signing key for chain %d: %d states, first %d", d.ChainID(), r.StateCount(), r.states[0].chainID)
	}
}

func TestChainEnd(t *testing.T) {
	alice, bob := newMember("alice"), newMember("bob")
	join(t, alice, bob, testGroup)
	r, _ := alice.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
	r.states[0].chain.Index = math.MaxUint32 - 1
	alice.st.StoreSenderKey(t.Context(), alice.c.Local, testGroup, r)
	last := send(t, alice, testGroup, "last")
	if _, err := alice.c.Encrypt(t.Context(), testGroup, []byte("past the end")); !errors.Is(err, errChainEnd) {
		t.Fatalf("encrypt at the end of the chain: %v", err)
	}
	// Bob's chain (at 0) is too far behind to read it anyway; put it there.
	rb, _ := bob.st.LoadSenderKey(t.Context(), alice.c.Local, testGroup)
	rb.states[0].chain = r.states[0].chain
	bob.st.StoreSenderKey(t.Context(), alice.c.Local, testGroup, rb)
	mustRead(t, bob, alice, last, "last")
	// A message at iteration 2^32-1 cannot be read: the chain cannot step past it.
	h := header{version: MessageVersion, distributionID: testGroup, chainID: r.states[0].chainID, iteration: math.MaxUint32}
	seed, _ := r.states[0].chain.Step()
	mk := messageKeys(&seed)
	m, err := sealMessage(h, &mk, []byte("x"), r.states[0].private, newSeeded(1))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, bob, alice, testGroup, m.Bytes())
}

func TestLateJoiner(t *testing.T) {
	alice, bob, dave := newMember("alice"), newMember("bob"), newMember("dave")
	join(t, alice, bob, testGroup)
	var before [][]byte
	for i := range 3 {
		m := send(t, alice, testGroup, fmt.Sprint("before ", i))
		mustRead(t, bob, alice, m, fmt.Sprint("before ", i))
		before = append(before, m)
	}
	join(t, alice, dave, testGroup)
	for _, m := range before {
		refused(t, dave, alice, testGroup, m, ErrDuplicate)
	}
	after := send(t, alice, testGroup, "after")
	mustRead(t, dave, alice, after, "after")
	mustRead(t, bob, alice, after, "after")
}

func TestParseDistributionID(t *testing.T) {
	id, err := ParseDistributionID("3F0F0D5C-8F4B-4A43-9B2E-6A1C0E7D2B11")
	if err != nil || id != katGroup || id.String() != "3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b11" {
		t.Fatalf("%v %v", id, err)
	}
	for _, bad := range []string{"", "3f0f0d5c8f4b4a439b2e6a1c0e7d2b11", "3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b1", "3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b1g", "3f0f0d5c+8f4b-4a43-9b2e-6a1c0e7d2b11", "3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b11\x1b"} {
		if _, err := ParseDistributionID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// newSeeded is a deterministic randomness source for tests.
func newSeeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}
