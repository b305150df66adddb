package spqr

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hushmsg/hush/spqr/internal/polycode"
)

// recvFails checks that Recv fails with want and leaves s unchanged.
func recvFails(t *testing.T, s *State, m []byte, want error) {
	t.Helper()
	before := marshal(t, s)
	n, k, err := s.Recv(m)
	if !errors.Is(err, want) {
		t.Fatalf("Recv: got %v, want %v", err, want)
	}
	if n != nil || k != nil {
		t.Fatal("Recv returned a state or key with an error")
	}
	if !bytes.Equal(marshal(t, s), before) {
		t.Fatal("failed Recv changed the state")
	}
}

func tamperChunk(m []byte) []byte {
	c := append([]byte{}, m...)
	c[len(c)-1] ^= 0x01
	return c
}

// lockstepUntil runs A->B, B->A rounds until stop(msg from A, msg from B)
// is true, and returns the states before delivering the matching message(s).
type lockPair struct {
	a, b   *State
	ra, rb interface{ Read([]byte) (int, error) }
}

func newLockPair(t *testing.T, label string) *lockPair {
	a, b := newPair(t, label, V1, V1)
	return &lockPair{a: a, b: b, ra: shakeRand(label + "A"), rb: shakeRand(label + "B")}
}

// aSend / bSend send one message.
func (p *lockPair) aSend(t *testing.T) []byte {
	var m []byte
	p.a, m, _ = mustSend(t, p.a, p.ra)
	return m
}

func (p *lockPair) bSend(t *testing.T) []byte {
	var m []byte
	p.b, m, _ = mustSend(t, p.b, p.rb)
	return m
}

func TestTamperedHeaderMAC(t *testing.T) {
	p := newLockPair(t, "tamper-hdr")
	for i := 0; i < 2; i++ {
		p.b, _ = mustRecv(t, p.b, p.aSend(t))
	}
	m3 := p.aSend(t)
	if info(t, m3).chunk != 2 {
		t.Fatal("expected hdr chunk 2")
	}
	recvFails(t, p.b, tamperChunk(m3), ErrMacVerifyFailed)
	// The untouched message still works on the unchanged state.
	b2, k := mustRecv(t, p.b, m3)
	if k == nil || b2.br.kind != kHeaderReceived {
		t.Fatal("header not received after retry")
	}
}

func TestTamperedCiphertextMAC(t *testing.T) {
	p := newLockPair(t, "tamper-ct")
	for round := 0; round < 100; round++ {
		p.b, _ = mustRecv(t, p.b, p.aSend(t))
		mb := p.bSend(t)
		ib := info(t, mb)
		if ib.typ == msgCt2 && ib.chunk == 4 {
			recvFails(t, p.a, tamperChunk(mb), ErrMacVerifyFailed)
			a2, k := mustRecv(t, p.a, mb)
			if k == nil || a2.br.kind != kNoHeaderReceived || a2.br.epoch != 2 {
				t.Fatal("epoch not completed after retry")
			}
			return
		}
		p.a, _ = mustRecv(t, p.a, mb)
	}
	t.Fatal("never reached the last ct2 chunk")
}

// TestWrongEK: ek chunks that do not match the authenticated header give
// ErroneousDataReceived once the ek is complete.
func TestWrongEK(t *testing.T) {
	p := newLockPair(t, "wrong-ek")
	other := make([]byte, ekMsgSize)
	shakeRand("other ek").Read(other)
	enc, _ := polycode.NewEncoder(other)
	for round := 0; round < 100; round++ {
		ma := p.aSend(t)
		ia := info(t, ma)
		if ia.typ == msgEk || ia.typ == msgEkCt1Ack {
			pm, idx, _ := parseMessage(ma)
			pm.chunk = enc.ChunkAt(pm.chunk.Index)
			ma = pm.serialize(idx)
			if ia.chunk == 35 {
				recvFails(t, p.b, ma, ErrErroneousDataReceived)
				return
			}
		}
		p.b, _ = mustRecv(t, p.b, ma)
		p.a, _ = mustRecv(t, p.a, p.bSend(t))
	}
	t.Fatal("never completed the ek")
}

func TestEpochOutOfRange(t *testing.T) {
	a, b := newPair(t, "epochs", V1, V1)
	// Both start in epoch 1; an epoch-2 message is out of range for every
	// state but Ct2Sampled.
	for _, s := range []*State{a, b} {
		recvFails(t, s, []byte{1, 2, 1, 0}, ErrEpochOutOfRange)
		recvFails(t, s, []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0}, ErrEpochOutOfRange)
	}
	// Run into epoch 3 and replay an epoch-1 message: the braid ignores it
	// but chain epoch 0 is gone.
	p := newLockPair(t, "epochs2")
	var old []byte
	for round := 0; round < 100; round++ {
		ma := p.aSend(t)
		if round == 5 {
			old = ma // delivered later, out of order
		} else {
			p.b, _ = mustRecv(t, p.b, ma)
		}
		p.a, _ = mustRecv(t, p.a, p.bSend(t))
	}
	if p.a.br.epoch < 3 {
		t.Fatalf("epoch %d", p.a.br.epoch)
	}
	recvFails(t, p.b, old, ErrEpochOutOfRange)
}

func TestDuplicatesAndJumps(t *testing.T) {
	p := newLockPair(t, "dups")
	m1 := p.aSend(t)
	m2 := p.aSend(t)
	var k []byte
	p.b, k = mustRecv(t, p.b, m2)
	if k == nil {
		t.Fatal()
	}
	recvFails(t, p.b, m2, ErrKeyAlreadyRequested)
	p.b, _ = mustRecv(t, p.b, m1)
	recvFails(t, p.b, m1, ErrKeyAlreadyRequested)
	// A None message claiming index 25003 (more than 25000 past 2).
	recvFails(t, p.b, appendVarint([]byte{1, 1}, 25003), ErrMsgDecode)
	recvFails(t, p.b, append(appendVarint([]byte{1, 1}, 25003), 0), ErrKeyJump)
	if _, k, err := p.b.Recv(append(appendVarint([]byte{1, 1}, 25002), 0)); err != nil || k == nil {
		t.Fatalf("jump of exactly MaxJump: %v", err)
	}
}

func TestGarbageMessages(t *testing.T) {
	a, b := newPair(t, "garbage", V1, V1)
	for _, m := range [][]byte{{1}, {1, 1}, {1, 1, 1}, {1, 1, 1, 9}, {1, 1, 1, 1, 0}} {
		recvFails(t, a, m, ErrMsgDecode)
		recvFails(t, b, m, ErrMsgDecode)
	}
}
