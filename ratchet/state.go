package ratchet

import (
	"errors"
	"io"

	"github.com/hushmsg/hush/key"
)

/* Specification constants (libsignal rust/protocol/src/consts.rs) */

const (
	// MaxForwardJumps is how far ahead of its chain a message may be.
	MaxForwardJumps = 25_000
	// MaxMessageKeys is how many skipped message keys a chain keeps.
	MaxMessageKeys = 2_000
	// MaxReceiverChains is how many receiving chains a session keeps.
	MaxReceiverChains = 5
)

// Errors a receiver sees. Callers return one uniform decryption error to the
// outside; these tell tests and logs what happened.
var (
	ErrDuplicate     = errors.New("ratchet: duplicate message")
	ErrTooFarAhead   = errors.New("ratchet: message from too far into the future")
	ErrNoSenderChain = errors.New("ratchet: session has no sending chain")
	ErrLegacyKey     = errors.New("ratchet: stored message key cannot take an SPQR key")
)

// SkippedKey is a message key kept for a message that has not arrived yet.
// libsignal stores the seed since 2025; older records hold the derived keys.
type SkippedKey struct {
	Index  uint32
	Seed   [32]byte
	Legacy *MessageKeys // non-nil for a record that stored derived keys
}

// SenderChain is the sending half: our current ratchet key pair and CKs.
type SenderChain struct {
	RatchetKey key.ECKeyPair
	ChainKey   ChainKey
}

// ReceiverChain is one receiving chain: the peer's ratchet public key, CKr,
// and the keys skipped on it (oldest first).
type ReceiverChain struct {
	RatchetKey key.ECPublic
	ChainKey   ChainKey
	// Skipped is treated as immutable: changes build a new slice, so that a
	// cloned State can share it.
	Skipped []SkippedKey
}

// State is the Double Ratchet state of one session (the DR part of
// libsignal's SessionStructure).
type State struct {
	Root            RootKey
	Sender          *SenderChain    // nil until the session can send
	Receivers       []ReceiverChain // oldest first, at most MaxReceiverChains
	PreviousCounter uint32          // PN: length of our previous sending chain
}

// Clone returns a copy of s that can be changed without changing s.
func (s *State) Clone() *State {
	c := *s
	if s.Sender != nil {
		sc := *s.Sender
		c.Sender = &sc
	}
	c.Receivers = append([]ReceiverChain(nil), s.Receivers...)
	return &c
}

// NextSend returns what the next outgoing message needs (the header values
// and the message key seed) and advances the sending chain.
func (s *State) NextSend() (ratchetKey key.ECPublic, counter, previousCounter uint32, seed [32]byte, err error) {
	if s.Sender == nil {
		return key.ECPublic{}, 0, 0, seed, ErrNoSenderChain
	}
	ck := &s.Sender.ChainKey
	counter = ck.Index
	seed, *ck = ck.Step()
	return s.Sender.RatchetKey.Public, counter, s.PreviousCounter, seed, nil
}

// Received is the key material for one received message.
type Received struct {
	Seed   [32]byte
	Legacy *MessageKeys
}

// Keys derives the message keys, with the SPQR key as salt when there is one.
func (r *Received) Keys(salt []byte) (MessageKeys, error) {
	if r.Legacy != nil {
		if salt != nil {
			return MessageKeys{}, ErrLegacyKey
		}
		return *r.Legacy, nil
	}
	return DeriveMessageKeys(&r.Seed, salt), nil
}

// Receive returns the key material for message counter on the peer's chain
// their, running a DH ratchet step if their key is new (Double Ratchet
// section 3.5, libsignal double_ratchet.rs). It changes s: callers work on a
// Clone and keep it only if the message then authenticates. maxJump is
// MaxForwardJumps, or unlimited for a session with oneself.
func (s *State) Receive(their key.ECPublic, counter uint32, maxJump uint32, rand io.Reader) (Received, error) {
	i := s.findReceiver(their)
	if i < 0 {
		var err error
		if i, err = s.step(their, rand); err != nil {
			return Received{}, err
		}
	}
	rc := &s.Receivers[i]
	ck := rc.ChainKey
	if ck.Index > counter {
		return s.takeSkipped(i, counter)
	}
	if counter-ck.Index > maxJump {
		return Received{}, ErrTooFarAhead
	}
	if n := counter - ck.Index; n > 0 {
		// Keep the newest MaxMessageKeys skipped keys, old and new together,
		// as libsignal does when it pushes each one and drops the oldest.
		keep := min(int(n), MaxMessageKeys)
		old := rc.Skipped
		if drop := len(old) + keep - MaxMessageKeys; drop > 0 {
			old = old[drop:]
		}
		skipped := make([]SkippedKey, len(old), len(old)+keep)
		copy(skipped, old)
		first := counter - uint32(keep)
		for ck.Index < counter {
			if ck.Index >= first {
				k := SkippedKey{Index: ck.Index}
				k.Seed, ck = ck.Step()
				skipped = append(skipped, k)
			} else {
				ck = ck.Next()
			}
		}
		rc.Skipped = skipped
	}
	var r Received
	r.Seed, rc.ChainKey = ck.Step()
	return r, nil
}

func (s *State) findReceiver(their key.ECPublic) int {
	for i := range s.Receivers {
		if s.Receivers[i].RatchetKey == their {
			return i
		}
	}
	return -1
}

// takeSkipped removes and returns the stored key for counter on chain i.
func (s *State) takeSkipped(i int, counter uint32) (Received, error) {
	rc := &s.Receivers[i]
	for j, k := range rc.Skipped {
		if k.Index == counter {
			skipped := make([]SkippedKey, 0, len(rc.Skipped)-1)
			skipped = append(append(skipped, rc.Skipped[:j]...), rc.Skipped[j+1:]...)
			rc.Skipped = skipped
			return Received{Seed: k.Seed, Legacy: k.Legacy}, nil
		}
	}
	return Received{}, ErrDuplicate
}

// step is the DH ratchet step: derive the receiving chain for their new key
// from our current sending key, then a fresh sending key pair and chain.
func (s *State) step(their key.ECPublic, rand io.Reader) (int, error) {
	if s.Sender == nil {
		return 0, ErrNoSenderChain
	}
	root, recvCK, err := s.Root.CreateChain(their, &s.Sender.RatchetKey.Private)
	if err != nil {
		return 0, err
	}
	ours, err := key.GenerateECKeyPair(rand)
	if err != nil {
		return 0, err
	}
	root2, sendCK, err := root.CreateChain(their, &ours.Private)
	if err != nil {
		return 0, err
	}
	s.PreviousCounter = s.Sender.ChainKey.Index
	if s.PreviousCounter > 0 {
		s.PreviousCounter--
	}
	s.Root = root2
	s.Receivers = append(s.Receivers, ReceiverChain{RatchetKey: their, ChainKey: recvCK})
	if n := len(s.Receivers) - MaxReceiverChains; n > 0 {
		s.Receivers = append([]ReceiverChain(nil), s.Receivers[n:]...)
	}
	s.Sender = &SenderChain{RatchetKey: ours, ChainKey: sendCK}
	return len(s.Receivers) - 1, nil
}
