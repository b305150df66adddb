package session

import (
	"errors"
	"io"
)

// errNoSPQR is returned while SPQR is not part of this build.
var errNoSPQR = errors.New("session: SPQR is not available yet; use PQOff")

// newPQState makes the SPQR state of a new session: none for X3DH sessions
// or when SPQR is off.
func (c *Cipher) newPQState(version uint8, initiator bool, authKey []byte, self bool) ([]byte, error) {
	if version < 4 || c.PQRatchet == PQOff {
		return nil, nil
	}
	return nil, errNoSPQR
}

// pqSend runs SPQR's send step; a session without SPQR sends nothing.
func pqSend(state []byte, r io.Reader) (next, msg, key []byte, err error) {
	if len(state) == 0 {
		return nil, nil, nil, nil
	}
	return nil, nil, nil, errNoSPQR
}

// pqRecv runs SPQR's receive step; a session without SPQR ignores what the
// peer sends, as libsignal does with an empty state.
func pqRecv(state, msg []byte) (next, key []byte, err error) {
	if len(state) == 0 {
		return nil, nil, nil
	}
	return nil, nil, errNoSPQR
}
