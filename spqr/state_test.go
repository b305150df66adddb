package spqr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sampleRun collects states of every kind and messages of every type from a
// lockstep run with some out-of-order traffic, for serialization tests and
// fuzz seeds.
func sampleRun(t testing.TB) (states [][]byte, msgs [][]byte, kinds map[stateKind]bool) {
	kinds = map[stateKind]bool{}
	a, b := newPair(t, "samples", V1, V1)
	ra, rb := shakeRand("sA"), shakeRand("sB")
	var held []byte
	add := func(s *State) {
		states = append(states, marshal(t, s))
		kinds[s.br.kind] = true
	}
	add(a)
	add(b)
	for round := 0; round < 140; round++ {
		var m []byte
		a, m, _ = mustSend(t, a, ra)
		msgs = append(msgs, m)
		if round%17 == 5 {
			held = m
		} else {
			b, _ = mustRecv(t, b, m)
		}
		if round%17 == 9 && held != nil {
			b, _ = mustRecv(t, b, held)
		}
		b, m, _ = mustSend(t, b, rb)
		msgs = append(msgs, m)
		a, _ = mustRecv(t, a, m)
		add(a)
		add(b)
	}
	return states, msgs, kinds
}

func TestStateSerializationCoversAllKinds(t *testing.T) {
	states, _, kinds := sampleRun(t)
	for k := stateKind(0); k < numKinds; k++ {
		if !kinds[k] && k != kEkReceivedCt1Sampled {
			t.Errorf("lockstep run never reached %v", k)
		}
	}
	// EkReceivedCt1Sampled needs the whole ek before the ct1 ack: build it.
	s := reachEkReceivedCt1Sampled(t)
	states = append(states, marshal(t, s))
	for _, b := range states {
		s, err := ParseState(b)
		if err != nil {
			t.Fatalf("own state rejected: %v", err)
		}
		if !bytes.Equal(marshal(t, s), b) {
			t.Fatal("not canonical")
		}
		// Every strict prefix and every extension is rejected.
		for _, n := range []int{0, 1, 2, 3, len(b) / 2, len(b) - 1} {
			if _, err := ParseState(b[:n]); !errors.Is(err, ErrStateDecode) {
				t.Fatalf("prefix %d of %d accepted", n, len(b))
			}
		}
		if _, err := ParseState(append(append([]byte{}, b...), 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
}

// reachEkReceivedCt1Sampled delivers all of A's ek chunks to B before B
// has sent its last ct1 chunk, so B holds the ek while still sending ct1.
func reachEkReceivedCt1Sampled(t *testing.T) *State {
	a, b := newPair(t, "ekrecv", V1, V1)
	ra, rb := shakeRand("eA"), shakeRand("eB")
	var m []byte
	// Header to B (3 chunks), B's first ct1 chunk to A.
	for i := 0; i < 3; i++ {
		a, m, _ = mustSend(t, a, ra)
		b, _ = mustRecv(t, b, m)
	}
	b, m, _ = mustSend(t, b, rb)
	a, _ = mustRecv(t, a, m)
	// 36 ek chunks from A, none acked (A lacks ct1).
	for i := 0; i < 36; i++ {
		a, m, _ = mustSend(t, a, ra)
		if info(t, m).typ != msgEk {
			t.Fatalf("expected Ek, got %v", info(t, m))
		}
		b, _ = mustRecv(t, b, m)
	}
	if b.br.kind != kEkReceivedCt1Sampled {
		t.Fatalf("B is in %v", b.br.kind)
	}
	return b
}

func TestParseStateRejects(t *testing.T) {
	a, _ := newPair(t, "rej", V1, V1)
	good := marshal(t, a)
	bad := map[string][]byte{
		"empty":         nil,
		"format 2":      append([]byte{2}, good[1:]...),
		"version 2":     {1, 2},
		"v0 trailing":   {1, 0, 0},
		"no flags":      {1, 1, 0},
		"unknown flag":  append([]byte{1, 1, 4}, good[3:]...),
		"direction 2":   func() []byte { b := bytes.Clone(good); b[3+32] = 2; return b }(),
		"min version 2": func() []byte { b := bytes.Clone(good); b[3+33] = 2; return b }(),
		"max jump 0":    func() []byte { b := bytes.Clone(good); copy(b[3+34:], []byte{0, 0, 0, 0}); return b }(),
	}
	for name, b := range bad {
		if _, err := ParseState(b); !errors.Is(err, ErrStateDecode) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if s, err := ParseState([]byte{1, 0}); err != nil || s.Version() != V0 {
		t.Fatal("V0 state")
	}
}

// TestSendRecvDoNotModify checks the immutability contract directly.
func TestSendRecvDoNotModify(t *testing.T) {
	a, b := newPair(t, "immut", V1, V1)
	ra, rb := shakeRand("iA"), shakeRand("iB")
	for round := 0; round < 100; round++ {
		before := marshal(t, a)
		a2, m, _ := mustSend(t, a, ra)
		if !bytes.Equal(marshal(t, a), before) {
			t.Fatal("Send modified its receiver")
		}
		before = marshal(t, b)
		b2, _ := mustRecv(t, b, m)
		if !bytes.Equal(marshal(t, b), before) {
			t.Fatal("Recv modified its receiver")
		}
		a, b = a2, b2
		b, m, _ = mustSend(t, b, rb)
		a, _ = mustRecv(t, a, m)
	}
}

func TestStringHasNoSecrets(t *testing.T) {
	a, _ := newPair(t, "string", V1, V1)
	a, _, _ = mustSend(t, a, shakeRand("s"))
	for _, out := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%v", *a)} {
		if len(out) > 80 || strings.Contains(out, fmt.Sprint(a.br.auth.root[0])+" ") {
			t.Fatalf("state printed as %q", out)
		}
	}
	if got := fmt.Sprint(a); got != "spqr.State{V1 KeysSampled epoch=1 negotiating}" {
		t.Fatalf("String() = %q", got)
	}
}
