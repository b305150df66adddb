package spqr

import (
	"bytes"
	"testing"
)

// FuzzParseState: ParseState never panics; an accepted input is canonical
// (marshal gives the same bytes back), and Send and Recv on it do not panic.
func FuzzParseState(f *testing.F) {
	states, msgs, _ := sampleRun(f)
	for i, s := range states {
		if i%3 == 0 {
			f.Add(s, msgs[i%len(msgs)])
		}
	}
	f.Add([]byte{1, 0}, []byte{})
	f.Fuzz(func(t *testing.T, b, m []byte) {
		s, err := ParseState(b)
		if err != nil {
			if s != nil {
				t.Fatal("state with error")
			}
			return
		}
		out, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %v", err)
		}
		if n, _, _, err := s.Send(shakeRand("fuzz")); err == nil {
			if _, err := n.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		// A state may legitimately allow jumps of up to 2^32-1 keys (libsignal
		// self-sessions), and a message can then demand billions of chain
		// steps; keep the fuzzer to jumps a test can afford.
		if _, idx, err := parseMessage(m); err == nil && uint64(idx) > maxRecvCtr(s)+1<<12 {
			return
		}
		if n, _, err := s.Recv(m); err == nil {
			if _, err := n.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if again, _ := s.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatal("Send/Recv modified the state")
		}
	})
}

// FuzzRecv: the message parser and Recv never panic, and a failed Recv
// leaves the state unchanged. States come from a real run.
func FuzzRecv(f *testing.F) {
	states, msgs, _ := sampleRun(f)
	for i, m := range msgs {
		f.Add(uint8(i), m)
	}
	f.Add(uint8(0), []byte{1, 1, 1, 4, 9, 9})
	parsed := make([]*State, len(states))
	for i, b := range states {
		s, err := ParseState(b)
		if err != nil {
			f.Fatal(err)
		}
		parsed[i] = s
	}
	f.Fuzz(func(t *testing.T, which uint8, m []byte) {
		idx := int(which) % len(parsed)
		s := parsed[idx]
		n, k, err := s.Recv(m)
		if again := mustMarshal(t, s); !bytes.Equal(again, states[idx]) {
			t.Fatal("Recv modified its receiver")
		}
		if err != nil {
			if n != nil || k != nil {
				t.Fatal("result with error")
			}
			return
		}
		if k != nil && len(k) != 32 {
			t.Fatal("key length")
		}
		nb := mustMarshal(t, n)
		if _, err := ParseState(nb); err != nil {
			t.Fatalf("Recv produced an unparsable state: %v", err)
		}
	})
}

func mustMarshal(t *testing.T, s *State) []byte {
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func maxRecvCtr(s *State) uint64 {
	var c uint64
	if s.chain != nil {
		for _, l := range s.chain.links {
			c = max(c, uint64(l.recv.ctr))
		}
	}
	return c
}
