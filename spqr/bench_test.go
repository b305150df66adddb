package spqr

import (
	"crypto/rand"
	"testing"
)

// BenchmarkSendRecvSteady measures one message in a steady lockstep
// conversation, alternating A->B and B->A so that epochs complete (about 86
// messages per epoch, amortising the ML-KEM work). Each message includes
// what a session layer does: ParseState of the sender, Send, MarshalBinary,
// ParseState of the receiver, Recv, MarshalBinary.
func BenchmarkSendRecvSteady(b *testing.B) {
	a, bb := newPair(b, "bench", V1, V1)
	sa, _ := a.MarshalBinary()
	sb, _ := bb.MarshalBinary()
	var stateBytes int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		from, to := &sa, &sb
		if i%2 == 1 {
			from, to = &sb, &sa
		}
		s, err := ParseState(*from)
		if err != nil {
			b.Fatal(err)
		}
		s, m, _, err := s.Send(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if *from, err = s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
		r, err := ParseState(*to)
		if err != nil {
			b.Fatal(err)
		}
		r, _, err = r.Recv(m)
		if err != nil {
			b.Fatal(err)
		}
		if *to, err = r.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
		stateBytes += len(*from) + len(*to)
	}
	b.ReportMetric(float64(stateBytes)/float64(2*b.N), "state-bytes/op")
}

// BenchmarkStateMarshalParse measures the round trip of a large state
// (B holding an incomplete ek decoder and its ct1 encoder).
func BenchmarkStateMarshalParse(b *testing.B) {
	a, bb := newPair(b, "bench2", V1, V1)
	ra, rb := shakeRand("ba"), shakeRand("bb")
	for i := 0; i < 20; i++ {
		a, bb = exchange(b, a, bb, ra, rb)
	}
	enc, _ := bb.MarshalBinary()
	for b.Loop() {
		s, err := ParseState(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc)), "state-bytes")
}

// exchange runs one lockstep round (A->B, B->A).
func exchange(t testing.TB, a, b *State, ra, rb interface{ Read([]byte) (int, error) }) (*State, *State) {
	a, m, _ := mustSend(t, a, ra)
	b, _ = mustRecv(t, b, m)
	b, m, _ = mustSend(t, b, rb)
	a, _ = mustRecv(t, a, m)
	return a, b
}
