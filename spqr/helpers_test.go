package spqr

import (
	"bytes"
	"crypto/sha3"
	"fmt"
	"io"
	"testing"
)

// shakeRand is a deterministic random stream (SHAKE-128 of a label) so that
// runs are reproducible.
func shakeRand(label string) io.Reader {
	h := sha3.NewSHAKE128()
	h.Write([]byte(label))
	return h
}

func testAuthKey(label string) []byte {
	k := make([]byte, 32)
	shakeRand("auth key " + label).Read(k)
	return k
}

func newPair(t testing.TB, label string, minA, minB Version) (*State, *State) {
	t.Helper()
	key := testAuthKey(label)
	a, err := NewState(Params{AuthKey: key, Version: V1, MinVersion: minA, Direction: A2B})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewState(Params{AuthKey: key, Version: V1, MinVersion: minB, Direction: B2A})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// msgInfo describes a wire message for assertions.
type msgInfo struct {
	epoch uint64
	index uint32
	typ   msgType
	chunk int // -1 when the type carries none
}

func (m msgInfo) String() string {
	if m.chunk < 0 {
		return fmt.Sprintf("e%d i%d %v", m.epoch, m.index, m.typ)
	}
	return fmt.Sprintf("e%d i%d %v c%d", m.epoch, m.index, m.typ, m.chunk)
}

func info(t testing.TB, b []byte) msgInfo {
	t.Helper()
	m, idx, err := parseMessage(b)
	if err != nil {
		t.Fatalf("own message does not parse: %v", err)
	}
	c := -1
	if m.typ.hasChunk() {
		c = int(m.chunk.Index)
	}
	wantLen := 4
	if c >= 0 {
		wantLen = 37
	}
	if m.epoch < 128 && idx < 128 && c < 128 && len(b) != wantLen {
		t.Fatalf("message %v has %d bytes, want %d", msgInfo{m.epoch, idx, m.typ, c}, len(b), wantLen)
	}
	return msgInfo{m.epoch, idx, m.typ, c}
}

// roundTrip marshals and re-parses a state, checking the encoding is stable.
func roundTrip(t testing.TB, s *State) *State {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ParseState(b)
	if err != nil {
		t.Fatalf("ParseState of own state (%v): %v", s.br.kind, err)
	}
	b2, err := s2.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("state encoding not stable for %v", s.br.kind)
	}
	// AppendBinary writes the same bytes after whatever is in the buffer.
	b3, err := s.AppendBinary([]byte{7, 7, 7})
	if err != nil || !bytes.Equal(b3[:3], []byte{7, 7, 7}) || !bytes.Equal(b3[3:], b) {
		t.Fatalf("AppendBinary differs from MarshalBinary for %v", s.br.kind)
	}
	return s2
}

func mustSend(t testing.TB, s *State, r io.Reader) (*State, []byte, []byte) {
	t.Helper()
	n, m, k, err := s.Send(r)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return n, m, k
}

func mustRecv(t testing.TB, s *State, m []byte) (*State, []byte) {
	t.Helper()
	n, k, err := s.Recv(m)
	if err != nil {
		t.Fatalf("Recv(%x): %v", m, err)
	}
	return n, k
}
