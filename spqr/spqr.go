// Package spqr implements SPQR, the Sparse Post-Quantum Ratchet that
// libsignal (0.92 and later) runs beside the Double Ratchet to form the
// Triple Ratchet, byte for byte as the Rust crate spqr v1.5.3 does.
//
// Entry points:
//
//   - NewState makes a session's initial state from the PQXDH-derived
//     authentication key (crate initial_state).
//   - (*State).Send returns the bytes for SignalMessage.pq_ratchet and the
//     optional 32-byte key to use as the message-key HKDF salt (crate send).
//   - (*State).Recv consumes the peer's pq_ratchet bytes and returns the key
//     for that message (crate recv).
//   - (*State).MarshalBinary and ParseState store states in this package's
//     own versioned format (not libsignal's PqRatchetState protobuf).
//
// Send and Recv never modify their receiver; they return the next state, so
// a caller whose message MAC check fails simply keeps the old one.
//
// The protocol is described in the team's research note spqr.md (§1.5
// version negotiation, §2 the ML-KEM braid, chain, authenticator, erasure
// code and wire format, §3 labels). Each function names the crate function
// it implements. Sub-packages: internal/gf16 and internal/polycode (erasure
// code), internal/braid (split ML-KEM-768).
package spqr

import (
	"fmt"
	"io"
)

// Version is an SPQR protocol version (crate Version).
type Version uint8

const (
	// V0 means no SPQR: empty pq_ratchet bytes and no keys.
	V0 Version = 0
	// V1 is the ML-KEM-768 braid.
	V1 Version = 1
)

// Direction says which party a state belongs to (crate Direction).
type Direction uint8

const (
	// A2B is the session initiator (Alice); it starts as EK sender.
	A2B Direction = 0
	// B2A is the responder (Bob); it starts as CT sender.
	B2A Direction = 1
)

// ChainParams limit the symmetric chain (crate ChainParams). A zero field
// means the default: MaxJump 25000, MaxOOOKeys 2000.
type ChainParams struct {
	// MaxJump is the largest allowed gap between the newest received index
	// and a new one (libsignal: 25000, or 2^32-1 for a self-session).
	MaxJump uint32
	// MaxOOOKeys is how many skipped keys are kept for late messages.
	MaxOOOKeys uint32
}

// Params are the inputs of NewState (crate Params).
type Params struct {
	AuthKey    []byte // 32 bytes: PQXDH output bytes [64..96]
	Version    Version
	MinVersion Version
	Direction  Direction
	Chain      ChainParams
}

// negotiation is the crate's VersionNegotiation: what is needed to build
// the chain later, kept until the first successful Recv.
type negotiation struct {
	authKey    [32]byte
	dir        Direction
	minVersion Version
	params     ChainParams // resolved
}

// State is an SPQR state. It is immutable: Send and Recv return new states.
// The zero value is not valid; use NewState or ParseState.
type State struct {
	v1    bool         // false: V0 (no SPQR); all other fields empty
	neg   *negotiation // nil once negotiation is over
	chain *chain       // nil until built
	br    braidState
}

// NewState returns the initial state (crate initial_state): for V0 an empty
// state, for V1 the braid in init_a (A2B) or init_b (B2A) plus the version
// negotiation record.
func NewState(p Params) (*State, error) {
	if p.Version > V1 || p.MinVersion > V1 || p.Direction > B2A {
		return nil, fmt.Errorf("%w: version or direction", ErrInvalidParams)
	}
	if p.Version == V0 {
		return &State{}, nil
	}
	if p.MinVersion > p.Version {
		return nil, fmt.Errorf("%w: minimum version above version", ErrInvalidParams)
	}
	if len(p.AuthKey) != 32 {
		return nil, fmt.Errorf("%w: auth key must be 32 bytes", ErrInvalidParams)
	}
	cp := p.Chain.resolved()
	if cp.MaxOOOKeys > maxOOOKeysLimit {
		return nil, fmt.Errorf("%w: MaxOOOKeys too large", ErrInvalidParams)
	}
	n := &negotiation{dir: p.Direction, minVersion: p.MinVersion, params: cp}
	copy(n.authKey[:], p.AuthKey)
	s := &State{v1: true, neg: n}
	if p.Direction == A2B {
		s.br = initA(p.AuthKey)
	} else {
		s.br = initB(p.AuthKey)
	}
	return s, nil
}

// Version returns V1 for an SPQR state and V0 for a state without SPQR
// (made with Version V0, or downgraded by Recv).
func (s *State) Version() Version {
	if s.v1 {
		return V1
	}
	return V0
}

// Send produces this message's SPQR bytes (for SignalMessage.pq_ratchet;
// empty for V0) and the optional 32-byte message key (nil when there is
// none). It returns the new state and never modifies s (crate send).
//
// Steps: the braid's send; build the chain from the negotiation record if
// there is none and the minimum version is above V0; add the epoch secret
// the braid produced, if any, before taking the key; take the send key of
// chain epoch msg.epoch-1; serialize with that key's index.
func (s *State) Send(rand io.Reader) (next *State, msg []byte, key []byte, err error) {
	if !s.v1 {
		return &State{}, nil, nil, nil
	}
	br, m, sec, err := s.br.send(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	ch := s.chain
	if ch == nil {
		if s.neg == nil {
			return nil, nil, nil, ErrChainNotAvailable
		}
		if s.neg.minVersion > V0 {
			ch = newChain(s.neg.authKey[:], s.neg.dir, s.neg.params)
		}
	} else {
		ch = ch.clone()
	}
	var index uint32
	if ch != nil {
		if sec != nil {
			if err := ch.addEpoch(sec.epoch, sec.secret[:]); err != nil {
				return nil, nil, nil, err
			}
		}
		i, k, err := ch.sendKey(m.epoch - 1)
		if err != nil {
			return nil, nil, nil, err
		}
		index, key = i, k[:]
	} else if sec != nil {
		// The crate asserts this cannot happen: a braid secret needs a
		// received header, and receiving builds the chain.
		return nil, nil, nil, ErrChainNotAvailable
	}
	// Sending never changes the version negotiation.
	next = &State{v1: true, neg: s.neg, chain: ch, br: br}
	return next, m.serialize(index), key, nil
}

// msgVersion is the crate's msg_version: empty means V0, a first byte of 0
// or 1 is that version, anything else is a version we do not know (ok=false).
func msgVersion(msg []byte) (Version, bool) {
	if len(msg) == 0 {
		return V0, true
	}
	if msg[0] <= byte(V1) {
		return Version(msg[0]), true
	}
	return 0, false
}

// Recv consumes the peer's SPQR bytes and returns the key for that message
// (nil if none) and the new state; s is never modified (crate recv).
//
// Steps: version negotiation (an unknown higher version is ignored; a lower
// one downgrades to V0 if negotiation is still open and allowed, else
// ErrMinimumVersion or ErrVersionMismatch); parse the message; run the
// braid's recv; build the chain if needed and add any epoch secret; take
// the receive key of chain epoch msg.epoch-1 at the message's index, except
// that (epoch 0, index 0) carries no key. A successful Recv ends
// negotiation.
func (s *State) Recv(msg []byte) (next *State, key []byte, err error) {
	v, known := msgVersion(msg)
	if !known {
		// Too high for us: ignore it and keep sending our version.
		return s, nil, nil
	}
	if v < s.Version() {
		if s.neg == nil {
			return nil, nil, ErrVersionMismatch
		}
		if v < s.neg.minVersion {
			return nil, nil, ErrMinimumVersion
		}
		// Negotiate down to V0: the crate builds a state with no braid and
		// then, having no braid, returns the empty (V0) state.
		return &State{}, nil, nil
	}
	if !s.v1 {
		return &State{}, nil, nil
	}
	m, index, err := parseMessage(msg)
	if err != nil {
		return nil, nil, err
	}
	br, sec, err := s.br.recv(&m)
	if err != nil {
		return nil, nil, err
	}
	var ch *chain
	switch {
	case s.chain != nil:
		ch = s.chain.clone()
	case s.neg != nil:
		ch = newChain(s.neg.authKey[:], s.neg.dir, s.neg.params)
	default:
		return nil, nil, ErrChainNotAvailable
	}
	if sec != nil {
		if err := ch.addEpoch(sec.epoch, sec.secret[:]); err != nil {
			return nil, nil, err
		}
	}
	keyEpoch := m.epoch - 1
	if !(keyEpoch == 0 && index == 0) {
		k, err := ch.recvKey(keyEpoch, index)
		if err != nil {
			return nil, nil, err
		}
		key = k[:]
	}
	// Receiving ends the version negotiation.
	return &State{v1: true, chain: ch, br: br}, key, nil
}

// String describes the state without any key material: its version, braid
// state and epoch. It keeps states that end up in logs or %v output from
// leaking secrets.
func (s State) String() string {
	if !s.v1 {
		return "spqr.State{V0}"
	}
	neg := ""
	if s.neg != nil {
		neg = " negotiating"
	}
	return fmt.Sprintf("spqr.State{V1 %v epoch=%d%s}", s.br.kind, s.br.epoch, neg)
}

// GoString is String, so that %#v does not print key material either.
func (s State) GoString() string { return s.String() }
