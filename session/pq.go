package session

import (
	"fmt"
	"io"
	"math"

	"github.com/hushmsg/hush/spqr"
)

// newPQState makes the SPQR state of a new session (libsignal ratchet.rs,
// initialize_*_session): none for X3DH sessions or when SPQR is off; else
// version 1, with the PQXDH output's third block as authentication key,
// A2B for the initiator, and the minimum version the mode asks for. A
// session with oneself lifts the jump limit, as libsignal does.
func (c *Cipher) newPQState(version uint8, initiator bool, authKey []byte, self bool) (*spqr.State, error) {
	if version < 4 || c.PQRatchet == PQOff {
		return nil, nil
	}
	p := spqr.Params{
		AuthKey:    authKey,
		Version:    spqr.V1,
		MinVersion: spqr.V1,
		Direction:  spqr.B2A,
	}
	if c.PQRatchet == PQOffered {
		p.MinVersion = spqr.V0
	}
	if initiator {
		p.Direction = spqr.A2B
	}
	if self {
		p.Chain.MaxJump = math.MaxUint32
	}
	s, err := spqr.NewState(p)
	if err != nil {
		return nil, fmt.Errorf("session: SPQR: %w", err)
	}
	return s, nil
}

// pqSend runs SPQR's send step; a session without SPQR sends nothing and
// gets no key.
func pqSend(s *spqr.State, r io.Reader) (next *spqr.State, msg, key []byte, err error) {
	if s == nil {
		return nil, nil, nil, nil
	}
	next, msg, key, err = s.Send(r)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: SPQR send: %v", ErrInvalidState, err)
	}
	return next, msg, key, nil
}

// pqRecv runs SPQR's receive step. A session without SPQR ignores what the
// peer sends, as libsignal does with an empty state.
func pqRecv(s *spqr.State, msg []byte) (next *spqr.State, key []byte, err error) {
	if s == nil {
		return nil, nil, nil
	}
	return s.Recv(msg)
}
