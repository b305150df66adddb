package session

import (
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/signalpb"
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

// toProto converts s into libsignal's SessionStructure.
func (s *State) toProto() *signalpb.SessionStructure {
	pb := &signalpb.SessionStructure{
		SessionVersion:       uint32(s.Version),
		LocalIdentityPublic:  s.LocalIdentity.Bytes(),
		RemoteIdentityPublic: s.RemoteIdentity.Bytes(),
		RootKey:              s.Ratchet.Root[:],
		PreviousCounter:      s.Ratchet.PreviousCounter,
		RemoteRegistrationId: uint32(s.RemoteRegistrationID),
		LocalRegistrationId:  uint32(s.LocalRegistrationID),
		AliceBaseKey:         s.AliceBaseKey.Bytes(),
	}
	if s.PQ != nil {
		b, err := s.PQ.MarshalBinary()
		if err != nil {
			panic("session: internal error: " + err.Error())
		}
		pb.PqRatchetState = b
	}
	if sc := s.Ratchet.Sender; sc != nil {
		pb.SenderChain = &signalpb.SessionStructure_Chain{
			SenderRatchetKey:        sc.RatchetKey.Public.Bytes(),
			SenderRatchetKeyPrivate: sc.RatchetKey.Private.Bytes(),
			ChainKey:                &signalpb.SessionStructure_Chain_ChainKey{Index: sc.ChainKey.Index, Key: sc.ChainKey.Key[:]},
		}
	}
	if len(s.Ratchet.Receivers) > 0 {
		pb.ReceiverChains = make([]*signalpb.SessionStructure_Chain, len(s.Ratchet.Receivers))
		for i := range s.Ratchet.Receivers {
			rc := &s.Ratchet.Receivers[i]
			c := &signalpb.SessionStructure_Chain{
				SenderRatchetKey: rc.RatchetKey.Bytes(),
				ChainKey:         &signalpb.SessionStructure_Chain_ChainKey{Index: rc.ChainKey.Index, Key: rc.ChainKey.Key[:]},
			}
			if n := len(rc.Skipped); n > 0 {
				// Stored newest first; we keep them oldest first.
				c.MessageKeys = make([]*signalpb.SessionStructure_Chain_MessageKey, n)
				for j := range rc.Skipped {
					k := &rc.Skipped[j]
					mk := &signalpb.SessionStructure_Chain_MessageKey{Index: k.Index}
					if k.Legacy != nil {
						mk.CipherKey, mk.MacKey, mk.Iv = k.Legacy.CipherKey[:], k.Legacy.MACKey[:], k.Legacy.IV[:]
					} else {
						mk.Seed = k.Seed[:]
					}
					c.MessageKeys[n-1-j] = mk
				}
			}
			pb.ReceiverChains[i] = c
		}
	}
	if p := s.Pending; p != nil {
		pb.PendingPreKey = &signalpb.SessionStructure_PendingPreKey{
			PreKeyId:       (*uint32)(p.PreKeyID),
			SignedPreKeyId: int32(p.SignedPreKeyID),
			BaseKey:        p.BaseKey.Bytes(),
			Timestamp:      uint64(p.Created.Unix()),
		}
		if p.KyberPreKeyID != nil {
			pb.PendingKyberPreKey = &signalpb.SessionStructure_PendingKyberPreKey{
				PreKeyId:   uint32(*p.KyberPreKeyID),
				Ciphertext: p.KyberCiphertext,
			}
		}
	}
	return pb
}

func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalidState, what) }

// stateFromProto checks and converts a SessionStructure. Every key must have
// the right type and length; anything else is ErrInvalidState.
func stateFromProto(pb *signalpb.SessionStructure) (*State, error) {
	s := &State{
		LocalRegistrationID:  key.RegistrationID(pb.LocalRegistrationId),
		RemoteRegistrationID: key.RegistrationID(pb.RemoteRegistrationId),
	}
	if pb.SessionVersion != 3 && pb.SessionVersion != 4 {
		return nil, invalid("unknown session version")
	}
	s.Version = uint8(pb.SessionVersion)
	var err error
	if len(pb.PqRatchetState) > 0 {
		if s.PQ, err = spqr.ParseState(pb.PqRatchetState); err != nil {
			return nil, invalid("SPQR state")
		}
	}
	if s.LocalIdentity, err = key.ParseIdentityKey(pb.LocalIdentityPublic); err != nil {
		return nil, invalid("local identity key")
	}
	if s.RemoteIdentity, err = key.ParseIdentityKey(pb.RemoteIdentityPublic); err != nil {
		return nil, invalid("remote identity key")
	}
	if len(pb.RootKey) != 32 {
		return nil, invalid("root key")
	}
	copy(s.Ratchet.Root[:], pb.RootKey)
	s.Ratchet.PreviousCounter = pb.PreviousCounter
	if len(pb.AliceBaseKey) > 0 {
		if s.AliceBaseKey, err = key.ParseECPublic(pb.AliceBaseKey); err != nil {
			return nil, invalid("base key")
		}
	}
	if c := pb.SenderChain; c != nil {
		pub, err := key.ParseECPublic(c.SenderRatchetKey)
		if err != nil {
			return nil, invalid("sender ratchet key")
		}
		priv, err := key.NewECPrivate(c.SenderRatchetKeyPrivate)
		if err != nil {
			return nil, invalid("sender ratchet private key")
		}
		ck, err := chainKeyFromProto(c.ChainKey)
		if err != nil {
			return nil, err
		}
		s.Ratchet.Sender = &ratchet.SenderChain{RatchetKey: key.ECKeyPair{Private: priv, Public: pub}, ChainKey: ck}
	}
	if n := len(pb.ReceiverChains); n > 0 {
		s.Ratchet.Receivers = make([]ratchet.ReceiverChain, n)
		for i, c := range pb.ReceiverChains {
			rc := &s.Ratchet.Receivers[i]
			if rc.RatchetKey, err = key.ParseECPublic(c.SenderRatchetKey); err != nil {
				return nil, invalid("receiver ratchet key")
			}
			if rc.ChainKey, err = chainKeyFromProto(c.ChainKey); err != nil {
				return nil, err
			}
			if m := len(c.MessageKeys); m > 0 {
				rc.Skipped = make([]ratchet.SkippedKey, m)
				for j, mk := range c.MessageKeys {
					k := &rc.Skipped[m-1-j]
					k.Index = mk.Index
					switch {
					case len(mk.Seed) == 32:
						copy(k.Seed[:], mk.Seed)
					case len(mk.Seed) == 0 && len(mk.CipherKey) == 32 && len(mk.MacKey) == 32 && len(mk.Iv) == 16:
						k.Legacy = new(ratchet.MessageKeys)
						copy(k.Legacy.CipherKey[:], mk.CipherKey)
						copy(k.Legacy.MACKey[:], mk.MacKey)
						copy(k.Legacy.IV[:], mk.Iv)
					default:
						return nil, invalid("skipped message key")
					}
				}
			}
		}
	}
	if p := pb.PendingPreKey; p != nil {
		pp := &PendingPreKey{
			PreKeyID:       (*key.PreKeyID)(p.PreKeyId),
			SignedPreKeyID: key.SignedPreKeyID(uint32(p.SignedPreKeyId)),
			Created:        time.Unix(int64(p.Timestamp), 0),
		}
		if pp.BaseKey, err = key.ParseECPublic(p.BaseKey); err != nil {
			return nil, invalid("pending base key")
		}
		if k := pb.PendingKyberPreKey; k != nil {
			id := key.KyberPreKeyID(k.PreKeyId)
			pp.KyberPreKeyID, pp.KyberCiphertext = &id, k.Ciphertext
		}
		s.Pending = pp
	}
	return s, nil
}

func chainKeyFromProto(c *signalpb.SessionStructure_Chain_ChainKey) (ratchet.ChainKey, error) {
	var ck ratchet.ChainKey
	if c == nil || len(c.Key) != 32 {
		return ck, invalid("chain key")
	}
	copy(ck.Key[:], c.Key)
	ck.Index = c.Index
	return ck, nil
}
