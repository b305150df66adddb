package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hushmsg/hush/internal/testvec"
	"github.com/hushmsg/hush/key"
)

// TestChainKeyVector is libsignal's test_chain_key_derivation
// (rust/protocol/src/ratchet/keys.rs), without an SPQR salt.
func TestChainKeyVector(t *testing.T) {
	var ck ChainKey
	copy(ck.Key[:], testvec.Hex(t, "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f"))
	seed := ck.Seed()
	if !bytes.Equal(seed[:], testvec.Hex(t, "fae95235beda3d2e00b41cf2e655dada2405b4388cae0d251a51bcd2ebdd2e40")) {
		t.Errorf("seed %x", seed)
	}
	mk := DeriveMessageKeys(&seed, nil)
	if !bytes.Equal(mk.CipherKey[:], testvec.Hex(t, "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217")) {
		t.Errorf("cipher key %x", mk.CipherKey)
	}
	if !bytes.Equal(mk.MACKey[:], testvec.Hex(t, "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b")) {
		t.Errorf("mac key %x", mk.MACKey)
	}
	if !bytes.Equal(mk.IV[:], testvec.Hex(t, "afa8207986b692a116d4b40bbff72d6c")) {
		t.Errorf("iv %x", mk.IV)
	}
	next := ck.Next()
	if !bytes.Equal(next.Key[:], testvec.Hex(t, "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d")) || next.Index != 1 {
		t.Errorf("next chain key %x index %d", next.Key, next.Index)
	}
	// A zero salt is the same as none (HKDF pads the salt with zeros).
	if DeriveMessageKeys(&seed, make([]byte, 32)) != mk {
		t.Error("zero salt differs from no salt")
	}
	salt := bytes.Repeat([]byte{7}, 32)
	if DeriveMessageKeys(&seed, salt) == mk {
		t.Error("SPQR salt does not change the keys")
	}
}

// TestRootKDF checks KDF_RK with RFC 5869 HKDF on the inputs of
// libsignal-protocol-java's RootKeyTest (outputs computed independently,
// signal-digest section 14.6: the Java expected values are for legacy v2).
func TestRootKDF(t *testing.T) {
	var rk RootKey
	copy(rk[:], testvec.Hex(t, "7ba6debc2bc1bbf91abbc1367404176ca623095b7ec66b45f602d93538942dcc"))
	alice, err := key.NewECKeyPair(testvec.Hex(t, "206822ec67eb38049ebae7b939baeaebb151bbb32db80fd389245ac37a948e50"))
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := key.ParseECPublic(testvec.Hex(t, "05abb8eb29cc80b47109a2265abe9798485406e32da268934a9555e84757708a30"))
	next, ck, err := rk.CreateChain(bob, &alice.Private)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(next[:], testvec.Hex(t, "2eb9435d09e493e6b0fddf10f985a32777e327791714844264a40355666f9a8c")) {
		t.Errorf("root %x", next)
	}
	if !bytes.Equal(ck.Key[:], testvec.Hex(t, "113927a745a4ec92f314939b47c639b0396ee6634c0d680d42e119a22a73387b")) || ck.Index != 0 {
		t.Errorf("chain %x", ck.Key)
	}
}

// TestAESCBCVector is libsignal's aes_cbc_test (rust/crypto/src/aes_cbc.rs).
func TestAESCBCVector(t *testing.T) {
	var mk MessageKeys
	copy(mk.CipherKey[:], testvec.Hex(t, "4e22eb16d964779994222e82192ce9f747da72dc4abe49dfdeeb71d0ffe3796e"))
	copy(mk.IV[:], testvec.Hex(t, "6f8a557ddc0a140c878063a6d5f31d3d"))
	pt := testvec.Hex(t, "30736294a124482a4159")
	ct := mk.Seal(pt)
	if !bytes.Equal(ct, testvec.Hex(t, "dd3f573ab4508b9ed0e45e0baf5608f3")) {
		t.Fatalf("ciphertext %x", ct)
	}
	got, err := mk.Open(ct)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open: %x %v", got, err)
	}
	mk.IV[0] ^= 0x80
	got, err = mk.Open(ct)
	if err != nil || !bytes.Equal(got, testvec.Hex(t, "b0736294a124482a4159")) {
		t.Fatalf("Open with flipped IV: %x %v", got, err)
	}
	for _, bad := range [][]byte{nil, ct[:15], append(bytes.Clone(ct), 1)} {
		if _, err := mk.Open(bad); err == nil {
			t.Errorf("Open(%x) succeeded", bad)
		}
	}
}

func TestPadding(t *testing.T) {
	var mk MessageKeys
	rand.Read(mk.CipherKey[:])
	rand.Read(mk.IV[:])
	for n := range 50 {
		pt := make([]byte, n)
		rand.Read(pt)
		ct := mk.Seal(pt)
		if len(ct)%16 != 0 || len(ct) <= n {
			t.Fatalf("%d bytes seal to %d", n, len(ct))
		}
		got, err := mk.Open(ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes: %v", n, err)
		}
	}
	// A last block that does not decrypt to valid padding is refused.
	refused := 0
	for range 200 {
		ct := make([]byte, 32)
		rand.Read(ct)
		if _, err := mk.Open(ct); err != nil {
			refused++
		}
	}
	if refused < 150 {
		t.Fatalf("only %d of 200 random ciphertexts refused", refused)
	}
}

// pairOfStates builds a sender (Alice, who has sent) and receiver (Bob) as
// session initialization leaves them.
func pairOfStates(t *testing.T) (alice, bob *State) {
	t.Helper()
	var rk RootKey
	rand.Read(rk[:])
	var ck ChainKey
	rand.Read(ck.Key[:])
	bobKey, _ := key.GenerateECKeyPair(rand.Reader)
	aliceKey, _ := key.GenerateECKeyPair(rand.Reader)
	root1, aliceCK, err := rk.CreateChain(bobKey.Public, &aliceKey.Private)
	if err != nil {
		t.Fatal(err)
	}
	alice = &State{Root: root1, Sender: &SenderChain{RatchetKey: aliceKey, ChainKey: aliceCK},
		Receivers: []ReceiverChain{{RatchetKey: bobKey.Public, ChainKey: ck}}}
	bob = &State{Root: rk, Sender: &SenderChain{RatchetKey: bobKey, ChainKey: ck}}
	return alice, bob
}

func TestReceiveOrderAndLimits(t *testing.T) {
	alice, bob := pairOfStates(t)
	type sent struct {
		rk      key.ECPublic
		counter uint32
		seed    [32]byte
	}
	var msgs []sent
	for range 10 {
		rk, ctr, _, seed, err := alice.NextSend()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, sent{rk, ctr, seed})
	}
	// Receive 9, then 0..8 out of order, then duplicates.
	order := []int{9, 3, 0, 8, 1, 2, 4, 5, 7, 6}
	for _, i := range order {
		r, err := bob.Receive(msgs[i].rk, msgs[i].counter, MaxForwardJumps, rand.Reader)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if r.Seed != msgs[i].seed {
			t.Fatalf("message %d: wrong key", i)
		}
	}
	for _, i := range []int{0, 5, 9} {
		if _, err := bob.Receive(msgs[i].rk, msgs[i].counter, MaxForwardJumps, rand.Reader); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("duplicate %d: %v", i, err)
		}
	}
	// A jump beyond the limit is refused and a jump at it accepted.
	rk := msgs[0].rk
	next := bob.Receivers[0].ChainKey.Index
	c := bob.Clone()
	if _, err := c.Receive(rk, next+MaxForwardJumps+1, MaxForwardJumps, rand.Reader); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("jump over the limit: %v", err)
	}
	if _, err := c.Receive(rk, next+MaxForwardJumps, MaxForwardJumps, rand.Reader); err != nil {
		t.Fatalf("jump at the limit: %v", err)
	}
	if n := len(c.Receivers[0].Skipped); n != MaxMessageKeys {
		t.Fatalf("%d skipped keys kept, want %d", n, MaxMessageKeys)
	}
	// The kept keys are the newest ones.
	if c.Receivers[0].Skipped[0].Index != next+MaxForwardJumps-MaxMessageKeys {
		t.Fatalf("oldest kept key has index %d", c.Receivers[0].Skipped[0].Index)
	}
	// The clone's changes did not reach the original.
	if bob.Receivers[0].ChainKey.Index != next || len(bob.Receivers[0].Skipped) != 0 {
		t.Fatal("changing a clone changed the original")
	}
}

func TestReceiverChainsBounded(t *testing.T) {
	alice, bob := pairOfStates(t)
	for round := range 8 {
		rk, ctr, _, seed, _ := alice.NextSend()
		r, err := bob.Receive(rk, ctr, MaxForwardJumps, rand.Reader)
		if err != nil || r.Seed != seed {
			t.Fatalf("round %d: bob: %v", round, err)
		}
		rk, ctr, _, seed, _ = bob.NextSend()
		r, err = alice.Receive(rk, ctr, MaxForwardJumps, rand.Reader)
		if err != nil || r.Seed != seed {
			t.Fatalf("round %d: alice: %v", round, err)
		}
	}
	if len(alice.Receivers) != MaxReceiverChains || len(bob.Receivers) != MaxReceiverChains {
		t.Fatalf("%d and %d receiver chains", len(alice.Receivers), len(bob.Receivers))
	}
}

func TestStepMatchesSeedAndNext(t *testing.T) {
	var ck ChainKey
	rand.Read(ck.Key[:])
	ck.Index = 41
	seed, next := ck.Step()
	if seed != ck.Seed() || next != ck.Next() || next.Index != 42 {
		t.Fatal("Step differs from Seed and Next")
	}
}
