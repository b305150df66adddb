package session

import (
	"fmt"
	"time"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/ratchet"
	"github.com/hushmsg/hush/spqr"
)

// MaxUnacknowledgedAge is how long an initiator keeps sending PreKey
// messages without an answer before the session counts as gone
// (libsignal MAX_UNACKNOWLEDGED_SESSION_AGE).
const MaxUnacknowledgedAge = 30 * 24 * time.Hour

// State is one session with one device of a peer (libsignal SessionState,
// stored as SessionStructure).
type State struct {
	Version        uint8 // 3 (X3DH) or 4 (PQXDH)
	LocalIdentity  key.IdentityKey
	RemoteIdentity key.IdentityKey
	Ratchet        ratchet.State
	// Pending is set on the initiator's side until the peer answers: every
	// message goes out as a PreKeySignalMessage built from it.
	Pending              *PendingPreKey
	LocalRegistrationID  key.RegistrationID
	RemoteRegistrationID key.RegistrationID
	// AliceBaseKey is the initiator's base key: it identifies the session,
	// so that a repeated PreKey message finds the session it made.
	AliceBaseKey key.ECPublic
	// PQ is the SPQR state; nil for a session without SPQR. It is
	// immutable, so State copies may share it.
	PQ *spqr.State
}

// PendingPreKey is what the initiator repeats in every PreKey message.
type PendingPreKey struct {
	PreKeyID        *key.PreKeyID
	SignedPreKeyID  key.SignedPreKeyID
	BaseKey         key.ECPublic
	Created         time.Time // seconds precision, as stored
	KyberPreKeyID   *key.KyberPreKeyID
	KyberCiphertext []byte
}

// clone copies s deeply enough that changing the copy's ratchet or PQ state
// leaves s as it was.
func (s *State) clone() *State {
	c := *s
	c.Ratchet = *s.Ratchet.Clone()
	return &c
}

func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalidState, what) }
