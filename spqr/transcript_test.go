package spqr

import (
	"bytes"
	"testing"
)

// TestLockstepTranscript drives two states in lockstep (A->B then B->A each
// round) and checks the messages against the libsignal-client 0.103.0
// transcript recorded in spqr.md §2.5, and that both sides get equal keys
// for every message. States are marshalled and parsed between messages.
func TestLockstepTranscript(t *testing.T) {
	type want struct{ a2b, b2a string }
	expect := map[int]want{
		0:  {"e1 i1 Hdr c0", "e1 i1 None"},
		2:  {"e1 i3 Hdr c2", "e1 i3 Ct1 c0"},
		3:  {"e1 i4 Ek c0", "e1 i4 Ct1 c1"},
		31: {"e1 i32 Ek c28", "e1 i32 Ct1 c29"},
		32: {"e1 i33 EkCt1Ack c29", "e1 i33 None"},
		38: {"e1 i39 EkCt1Ack c35", "e1 i39 Ct2 c0"},
		39: {"e1 i40 Ct1Ack", "e1 i40 Ct2 c1"},
		42: {"e1 i43 Ct1Ack", "e1 i43 Ct2 c4"},
		43: {"e2 i1 None", "e2 i1 Hdr c0"},
		46: {"e2 i4 Ct1 c0", "e2 i4 Ek c0"},
		75: {"e2 i33 Ct1 c29", "e2 i33 EkCt1Ack c29"},
		81: {"e2 i39 None", "e2 i39 EkCt1Ack c35"},
		82: {"e2 i40 Ct2 c0", "e2 i40 Ct1Ack"},
		86: {"e2 i44 Ct2 c4", "e3 i1 None"},
		87: {"e3 i1 Hdr c0", "e3 i2 None"},
	}
	a, b := newPair(t, "transcript", V1, V1)
	ra, rb := shakeRand("transcript A"), shakeRand("transcript B")
	seen := 0
	for round := 0; round < 200; round++ {
		var m, ka, kb []byte
		a, m, ka = mustSend(t, a, ra)
		ia := info(t, m)
		b, kb = mustRecv(t, b, m)
		if ka == nil || !bytes.Equal(ka, kb) {
			t.Fatalf("round %d A->B: keys differ or missing", round)
		}
		b, m, kb = mustSend(t, b, rb)
		ib := info(t, m)
		a, ka = mustRecv(t, a, m)
		if kb == nil || !bytes.Equal(ka, kb) {
			t.Fatalf("round %d B->A: keys differ or missing", round)
		}
		if w, ok := expect[round]; ok {
			seen++
			if ia.String() != w.a2b || ib.String() != w.b2a {
				t.Errorf("round %d: got %q | %q, want %q | %q", round, ia, ib, w.a2b, w.b2a)
			}
		}
		a, b = roundTrip(t, a), roundTrip(t, b)
	}
	if seen != len(expect) {
		t.Fatalf("checked %d rounds", seen)
	}
}
