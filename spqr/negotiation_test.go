package spqr

import (
	"bytes"
	"errors"
	"testing"
)

func marshal(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Port of the crate's lib_test::empty_key_until_version_negotiation: with
// min_version V0 no keys exist until the first Recv, messages sent before
// that carry index 0 and yield no key on the other side.
func TestEmptyKeyUntilVersionNegotiation(t *testing.T) {
	a, b := newPair(t, "negotiation", V0, V0)
	r := shakeRand("neg")
	var msgsA, keysA, msgsB, keysB [][]byte
	for i := 0; i < 3; i++ {
		var m, k []byte
		a, m, k = mustSend(t, a, r)
		msgsA, keysA = append(msgsA, m), append(keysA, k)
		if k != nil || info(t, m).index != 0 {
			t.Fatalf("A key %d before negotiation", i)
		}
	}
	for i := 0; i < 3; i++ {
		var m, k []byte
		b, m, k = mustSend(t, b, r)
		msgsB, keysB = append(msgsB, m), append(keysB, k)
		if k != nil || info(t, m).index != 0 {
			t.Fatalf("B key %d before negotiation", i)
		}
	}
	var k []byte
	a, k = mustRecv(t, a, msgsB[1])
	if k != nil {
		t.Fatal("key for an index-0 message")
	}
	for i := 0; i < 2; i++ {
		var m []byte
		a, m, k = mustSend(t, a, r)
		if k == nil {
			t.Fatal("no key after first Recv")
		}
		msgsA, keysA = append(msgsA, m), append(keysA, k)
	}
	b, k = mustRecv(t, b, msgsA[0])
	if k != nil {
		t.Fatal("key for an index-0 message")
	}
	for i := 0; i < 2; i++ {
		var m []byte
		b, m, k = mustSend(t, b, r)
		if k == nil {
			t.Fatal("no key after first Recv")
		}
		msgsB, keysB = append(msgsB, m), append(keysB, k)
	}
	for _, i := range []int{2, 3, 1, 4} {
		b, k = mustRecv(t, b, msgsA[i])
		if !bytes.Equal(k, keysA[i]) {
			t.Fatalf("B got wrong key for A's message %d", i)
		}
	}
	for _, i := range []int{0, 2, 3, 4} {
		a, k = mustRecv(t, a, msgsB[i])
		if !bytes.Equal(k, keysB[i]) {
			t.Fatalf("A got wrong key for B's message %d", i)
		}
	}
}

// Ports of min_version_v1_always_creates_keys_{a2b,b2a}.
func TestMinVersionV1AlwaysCreatesKeys(t *testing.T) {
	for _, aFirst := range []bool{true, false} {
		minA, minB := V1, V0
		if !aFirst {
			minA, minB = V0, V1
		}
		a, b := newPair(t, "minv1", minA, minB)
		strict, lax := a, b
		if !aFirst {
			strict, lax = b, a
		}
		r := shakeRand("minv1")
		_, m1, k1 := mustSend(t, strict, r)
		if k1 == nil {
			t.Fatal("min V1 sender has no key")
		}
		lax, _, k2 := mustSend(t, lax, r)
		if k2 != nil {
			t.Fatal("min V0 sender has a key before receiving")
		}
		lax, k := mustRecv(t, lax, m1)
		if !bytes.Equal(k, k1) {
			t.Fatal("receiver's key differs")
		}
		if _, _, k3 := mustSend(t, lax, r); k3 == nil {
			t.Fatal("no key after receiving")
		}
	}
}

func TestNegotiateDownToV0(t *testing.T) {
	for _, dir := range []Direction{A2B, B2A} {
		s, err := NewState(Params{AuthKey: testAuthKey("v0"), Version: V1, MinVersion: V0, Direction: dir})
		if err != nil {
			t.Fatal(err)
		}
		// Sending first does not close negotiation.
		s, m, k := mustSend(t, s, shakeRand("x"))
		if len(m) == 0 || k != nil {
			t.Fatal("V1 min V0 first send")
		}
		peer, _ := NewState(Params{Version: V0})
		if peer.Version() != V0 || len(marshal(t, peer)) != 2 {
			t.Fatal("V0 state")
		}
		peer, pm, pk := mustSend(t, peer, shakeRand("y"))
		if len(pm) != 0 || pk != nil {
			t.Fatal("V0 state sent SPQR bytes")
		}
		s, k = mustRecv(t, s, pm)
		if k != nil || s.Version() != V0 {
			t.Fatalf("not downgraded: version %d", s.Version())
		}
		s, m, k = mustSend(t, s, shakeRand("z"))
		if len(m) != 0 || k != nil {
			t.Fatal("downgraded state still sends SPQR")
		}
		// A V0 state ignores V1 messages (the crate returns the empty state).
		s2, k := mustRecv(t, s, []byte{1, 1, 1, 0})
		if k != nil || s2.Version() != V0 {
			t.Fatal("V0 state reacted to a V1 message")
		}
		_ = peer
	}
}

func TestNegotiationRefused(t *testing.T) {
	a, b := newPair(t, "refuse", V1, V1)
	if _, _, err := a.Recv(nil); !errors.Is(err, ErrMinimumVersion) {
		t.Fatalf("min V1 receiving V0: %v", err)
	}
	if _, _, err := b.Recv([]byte{0, 1, 2}); !errors.Is(err, ErrMinimumVersion) {
		t.Fatalf("min V1 receiving version byte 0: %v", err)
	}
	// After a successful Recv negotiation is over: VersionMismatch, even
	// for a state that allowed V0.
	a0, b0 := newPair(t, "refuse2", V0, V0)
	_, m, _ := mustSend(t, a0, shakeRand("r"))
	b0, _ = mustRecv(t, b0, m)
	if _, _, err := b0.Recv(nil); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("after negotiation: %v", err)
	}
	_, m, _ = mustSend(t, a, shakeRand("r"))
	b, _ = mustRecv(t, b, m)
	if _, _, err := b.Recv(nil); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("after negotiation (min V1): %v", err)
	}
}

func TestHigherVersionIgnored(t *testing.T) {
	a, _ := newPair(t, "higher", V1, V1)
	before := marshal(t, a)
	for _, m := range [][]byte{{2}, {2, 1, 1, 0}, {0xff, 0xff}} {
		n, k, err := a.Recv(m)
		if err != nil || k != nil || !bytes.Equal(marshal(t, n), before) {
			t.Fatalf("version %d message not ignored: %v", m[0], err)
		}
	}
}

func TestNewStateParams(t *testing.T) {
	good := Params{AuthKey: testAuthKey("p"), Version: V1, MinVersion: V1}
	if _, err := NewState(good); err != nil {
		t.Fatal(err)
	}
	bad := []Params{
		{AuthKey: make([]byte, 31), Version: V1, MinVersion: V1},
		{AuthKey: testAuthKey("p"), Version: 2, MinVersion: V1},
		{AuthKey: testAuthKey("p"), Version: V1, MinVersion: 2},
		{AuthKey: testAuthKey("p"), Version: V1, MinVersion: V1, Direction: 2},
		{AuthKey: testAuthKey("p"), Version: V1, MinVersion: V1, Chain: ChainParams{MaxOOOKeys: 1 << 30}},
	}
	for i, p := range bad {
		if _, err := NewState(p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("params %d accepted: %v", i, err)
		}
	}
}
