package senderkey

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/ratchet"
)

// ErrInvalidState is returned for a stored record that is damaged.
var ErrInvalidState = errors.New("senderkey: invalid sender key record")

func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalidState, what) }

// state is one chain of one sender: libsignal's SenderKeyState, kept as
// the fields of SenderKeyStateStructure (storage.proto).
type state struct {
	version uint32 // message_version as stored; 0 means 3
	chainID uint32
	chain   ratchet.ChainKey // the next iteration and its chain key
	signing key.ECPublic
	private *key.ECPrivate // our own chains only
	skipped []skippedKey   // oldest first, as libsignal keeps them
}

// skippedKey is a SenderMessageKey kept for an iteration not yet received:
// its seed, from which the keys are derived again when it is used.
type skippedKey struct {
	iteration uint32
	seed      [32]byte
}

// messageVersion is SenderKeyState::message_version: 0 means 3.
func (s *state) messageVersion() uint32 {
	if s.version == 0 {
		return MessageVersion
	}
	return s.version
}

// Record is everything known about one sender's chains under one
// distribution id: libsignal's SenderKeyRecord, at most [MaxStates] states,
// newest first. It serializes as SenderKeyRecordStructure (storage.proto),
// byte for byte as libsignal does. A record of our own chain holds the
// private signing key.
type Record struct {
	states []*state
}

// NewRecord returns an empty record.
func NewRecord() *Record { return &Record{} }

// StateCount is the number of chains the record keeps.
func (r *Record) StateCount() int { return len(r.states) }

// stateForChain is sender_key_state_for_chain_id: the first state with
// this chain id, or nil.
func (r *Record) stateForChain(chainID uint32) *state {
	for _, s := range r.states {
		if s.chainID == chainID {
			return s
		}
	}
	return nil
}

// addState is SenderKeyRecord::add_sender_key_state: a state with the same
// chain id and signing key is kept as it is (so a distribution processed
// again does not rewind its chain) and moved to the front; any other state
// with that chain id is dropped; the oldest states go beyond MaxStates.
func (r *Record) addState(s *state) {
	var existing *state
	kept := r.states[:0]
	for _, old := range r.states {
		switch {
		case old.chainID != s.chainID:
			kept = append(kept, old)
		case existing == nil && old.signing == s.signing:
			existing = old
		}
	}
	clear(r.states[len(kept):])
	r.states = kept
	if existing != nil {
		s = existing
	}
	if len(r.states) >= MaxStates {
		clear(r.states[MaxStates-1:])
		r.states = r.states[:MaxStates-1]
	}
	r.states = append([]*state{s}, r.states...)
}

// Field numbers of SenderKeyRecordStructure and SenderKeyStateStructure.
const (
	fRecordStates = 1 // SenderKeyRecordStructure.sender_key_states

	fStateChainID     = 1
	fStateChainKey    = 2 // SenderChainKey {iteration = 1; seed = 2}
	fStateSigningKey  = 3 // SenderSigningKey {public = 1; private = 2}
	fStateMessageKeys = 4 // SenderMessageKey {iteration = 1; seed = 2}
	fStateVersion     = 5
)

// MarshalBinary encodes the record as libsignal's prost does (proto3:
// fields in ascending order, zero values omitted, the two submessages always
// written). The result holds secret keys.
func (r *Record) MarshalBinary() ([]byte, error) {
	var b []byte
	for _, s := range r.states {
		b = pbwire.AppendMessage(b, fRecordStates, s.append)
	}
	return b, nil
}

func (s *state) append(b []byte) []byte {
	b = pbwire.AppendVarint(b, fStateChainID, uint64(s.chainID))
	b = pbwire.AppendMessage(b, fStateChainKey, func(b []byte) []byte {
		b = pbwire.AppendVarint(b, 1, uint64(s.chain.Index))
		return pbwire.AppendBytes(b, 2, s.chain.Key[:])
	})
	b = pbwire.AppendMessage(b, fStateSigningKey, func(b []byte) []byte {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, key.ECPublicSize)
		b = s.signing.AppendBytes(b)
		if s.private != nil {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, key.ECPrivateSize)
			b = s.private.AppendBytes(b)
		}
		return b
	})
	for i := range s.skipped {
		k := &s.skipped[i]
		b = pbwire.AppendMessage(b, fStateMessageKeys, func(b []byte) []byte {
			b = pbwire.AppendVarint(b, 1, uint64(k.iteration))
			return pbwire.AppendBytes(b, 2, k.seed[:])
		})
	}
	return pbwire.AppendVarint(b, fStateVersion, uint64(s.version))
}

// ParseRecord decodes a SenderKeyRecordStructure. Where libsignal checks a
// state's keys only when it uses them, hush checks every state now: a
// record whose chain key, signing key or a skipped key has the wrong
// length, or whose message version is not 3, is [ErrInvalidState]. The
// result does not alias b.
func ParseRecord(b []byte) (*Record, error) {
	r := &Record{}
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) bool {
		if num != fRecordStates {
			return true
		}
		if typ != protowire.BytesType {
			return false
		}
		s, ok := parseState(bs)
		if ok {
			r.states = append(r.states, s)
		}
		return ok
	})
	if !ok {
		return nil, invalid("record encoding")
	}
	for _, s := range r.states {
		if err := s.check(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// rawState holds the undecoded key fields of a state while it is read. A
// submessage field that repeats merges into one, as in prost, so each of
// its fields keeps its last value.
type rawState struct {
	chainSeed, public, private []byte
	haveChain, haveSigning     bool
}

func parseState(b []byte) (*state, bool) {
	s := &state{}
	var raw rawState
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fStateChainID:
			s.chainID = uint32(v)
			return typ == protowire.VarintType
		case fStateVersion:
			s.version = uint32(v)
			return typ == protowire.VarintType
		case fStateChainKey:
			raw.haveChain = true
			return typ == protowire.BytesType && walkPair(bs, func(it uint64) { s.chain.Index = uint32(it) }, func(seed []byte) { raw.chainSeed = seed })
		case fStateSigningKey:
			raw.haveSigning = true
			return typ == protowire.BytesType && pbwire.Walk(bs, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) bool {
				switch num {
				case 1:
					raw.public = bs
				case 2:
					raw.private = bs
				default:
					return true
				}
				return typ == protowire.BytesType
			})
		case fStateMessageKeys:
			var it uint64
			var seed []byte
			if typ != protowire.BytesType || !walkPair(bs, func(v uint64) { it = v }, func(b []byte) { seed = b }) {
				return false
			}
			if len(seed) != 32 {
				return false
			}
			k := skippedKey{iteration: uint32(it)}
			copy(k.seed[:], seed)
			s.skipped = append(s.skipped, k)
		}
		return true
	})
	if !ok || !raw.haveChain || !raw.haveSigning || len(raw.chainSeed) != 32 {
		return nil, false
	}
	copy(s.chain.Key[:], raw.chainSeed)
	var err error
	if s.signing, err = key.ParseECPublic(raw.public); err != nil {
		return nil, false
	}
	if len(raw.private) > 0 {
		p, err := key.NewECPrivate(raw.private)
		if err != nil {
			return nil, false
		}
		s.private = &p
	}
	return s, true
}

// walkPair reads a {uint32 iteration = 1; bytes seed = 2} submessage
// (SenderChainKey, SenderMessageKey).
func walkPair(b []byte, iteration func(uint64), seed func([]byte)) bool {
	return pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			iteration(v)
			return typ == protowire.VarintType
		case 2:
			seed(bs)
			return typ == protowire.BytesType
		}
		return true
	})
}

// check refuses what libsignal would refuse when it used the state.
func (s *state) check() error {
	if s.messageVersion() != MessageVersion {
		return invalid("message version")
	}
	if len(s.skipped) > MaxMessageKeys {
		return invalid("too many skipped message keys")
	}
	return nil
}
