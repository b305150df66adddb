package session

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/ratchet"
	"github.com/hushmsg/hush/spqr"
)

// This file encodes records as libsignal's RecordStructure and
// SessionStructure (internal/signalpb/storage.proto) directly from and to
// [State], without the generated protobuf types: a record is parsed and
// written on every message, and this is several times faster. The
// encoding is the one the generated code writes (fields in ascending
// order, proto3 defaults omitted); a differential test and fuzz target
// check both directions against internal/signalpb.

// Field numbers of SessionStructure.
const (
	fSessionVersion       = 1
	fLocalIdentity        = 2
	fRemoteIdentity       = 3
	fRootKey              = 4
	fPreviousCounter      = 5
	fSenderChain          = 6
	fReceiverChains       = 7
	fPendingPreKey        = 9
	fRemoteRegistrationID = 10
	fLocalRegistrationID  = 11
	fAliceBaseKey         = 13
	fPendingKyberPreKey   = 14
	fPQRatchetState       = 15
)

// appendECPublicField writes a 33-byte serialized public key.
func appendECPublicField(b []byte, num protowire.Number, k key.ECPublic) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, key.ECPublicSize)
	return k.AppendBytes(b)
}

func appendChainKey(b []byte, ck *ratchet.ChainKey) []byte {
	return pbwire.AppendMessage(b, 3, func(b []byte) []byte {
		b = pbwire.AppendVarint(b, 1, uint64(ck.Index))
		return pbwire.AppendBytes(b, 2, ck.Key[:])
	})
}

// appendState encodes s as a SessionStructure.
func appendState(b []byte, s *State) []byte {
	b = pbwire.AppendVarint(b, fSessionVersion, uint64(s.Version))
	b = appendECPublicField(b, fLocalIdentity, s.LocalIdentity.ECPublic)
	b = appendECPublicField(b, fRemoteIdentity, s.RemoteIdentity.ECPublic)
	b = pbwire.AppendBytes(b, fRootKey, s.Ratchet.Root[:])
	b = pbwire.AppendVarint(b, fPreviousCounter, uint64(s.Ratchet.PreviousCounter))
	if sc := s.Ratchet.Sender; sc != nil {
		b = pbwire.AppendMessage(b, fSenderChain, func(b []byte) []byte {
			b = appendECPublicField(b, 1, sc.RatchetKey.Public)
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, key.ECPrivateSize)
			b = sc.RatchetKey.Private.AppendBytes(b)
			return appendChainKey(b, &sc.ChainKey)
		})
	}
	for i := range s.Ratchet.Receivers {
		rc := &s.Ratchet.Receivers[i]
		b = pbwire.AppendMessage(b, fReceiverChains, func(b []byte) []byte {
			b = appendECPublicField(b, 1, rc.RatchetKey)
			b = appendChainKey(b, &rc.ChainKey)
			// Stored newest first; we keep them oldest first.
			for j := len(rc.Skipped) - 1; j >= 0; j-- {
				k := &rc.Skipped[j]
				b = pbwire.AppendMessage(b, 4, func(b []byte) []byte {
					b = pbwire.AppendVarint(b, 1, uint64(k.Index))
					if k.Legacy != nil {
						b = pbwire.AppendBytes(b, 2, k.Legacy.CipherKey[:])
						b = pbwire.AppendBytes(b, 3, k.Legacy.MACKey[:])
						return pbwire.AppendBytes(b, 4, k.Legacy.IV[:])
					}
					return pbwire.AppendBytes(b, 5, k.Seed[:])
				})
			}
			return b
		})
	}
	if p := s.Pending; p != nil {
		b = pbwire.AppendMessage(b, fPendingPreKey, func(b []byte) []byte {
			if p.PreKeyID != nil { // proto3 optional: written even when 0
				b = protowire.AppendTag(b, 1, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(*p.PreKeyID))
			}
			b = appendECPublicField(b, 2, p.BaseKey)
			// int32 signed_pre_key_id: negative values take ten bytes.
			b = pbwire.AppendVarint(b, 3, uint64(int64(int32(p.SignedPreKeyID))))
			return pbwire.AppendVarint(b, 4, uint64(p.Created.Unix()))
		})
	}
	b = pbwire.AppendVarint(b, fRemoteRegistrationID, uint64(s.RemoteRegistrationID))
	b = pbwire.AppendVarint(b, fLocalRegistrationID, uint64(s.LocalRegistrationID))
	if !s.AliceBaseKey.IsZero() {
		b = appendECPublicField(b, fAliceBaseKey, s.AliceBaseKey)
	}
	if p := s.Pending; p != nil && p.KyberPreKeyID != nil {
		b = pbwire.AppendMessage(b, fPendingKyberPreKey, func(b []byte) []byte {
			b = pbwire.AppendVarint(b, 1, uint64(*p.KyberPreKeyID))
			return pbwire.AppendBytes(b, 2, p.KyberCiphertext)
		})
	}
	if s.PQ != nil {
		// Written in place: a buffer of its own would be as large again
		// as the record (spqr's size hint is for its largest states).
		b = pbwire.AppendMessage(b, fPQRatchetState, func(b []byte) []byte {
			b, err := s.PQ.AppendBinary(b)
			if err != nil {
				panic("session: internal error: " + err.Error())
			}
			return b
		})
	}
	return b
}

// encodeRecord writes a RecordStructure.
func encodeRecord(r *Record) []byte {
	return appendRecord(make([]byte, 0, r.sizeHint()), r)
}

// sizeHint is about the size of r encoded: the fixed part of a session
// (keys, chains, the SPQR state of an established chain) fits in 1 KiB;
// the pending Kyber ciphertext and the archived sessions come on top.
func (r *Record) sizeHint() int {
	n := 1024
	for _, p := range r.previous {
		n += len(p) + 4
	}
	if c := r.current; c != nil && c.Pending != nil {
		n += len(c.Pending.KyberCiphertext) + 8
	}
	return n
}

// appendRecord appends r, encoded as a RecordStructure, to b.
func appendRecord(b []byte, r *Record) []byte {
	if r.current != nil {
		b = pbwire.AppendMessage(b, 1, func(b []byte) []byte { return appendState(b, r.current) })
	}
	for _, p := range r.previous {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	return b
}

// rawState is a SessionStructure as read, before it is checked. Byte
// fields alias the input.
type rawState struct {
	version, prevCounter, remoteReg, localReg uint64
	localID, remoteID, root, baseKey, pq      []byte
	sender                                    *rawChain
	receivers                                 []*rawChain
	pending                                   *rawPending
	kyberID                                   uint64
	kyberCT                                   []byte
	haveKyber                                 bool
}

type rawChain struct {
	pub, priv, ckKey []byte
	ckIndex          uint64
	haveCK           bool
	keys             []*rawMessageKey
}

type rawMessageKey struct {
	index                 uint64
	cipher, mac, iv, seed []byte
}

type rawPending struct {
	preKeyID, signedPreKeyID, timestamp uint64
	havePreKeyID                        bool
	baseKey                             []byte
}

// Protobuf wire types must match the field's declared type, as the
// generated decoder requires; unknown fields are skipped.
func want(typ, t protowire.Type) bool { return typ == t }

func (c *rawChain) parse(b []byte) bool {
	return pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			c.pub = bs
			return want(typ, protowire.BytesType)
		case 2:
			c.priv = bs
			return want(typ, protowire.BytesType)
		case 3:
			c.haveCK = true
			return want(typ, protowire.BytesType) && pbwire.Walk(bs, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
				switch num {
				case 1:
					c.ckIndex = v
					return want(typ, protowire.VarintType)
				case 2:
					c.ckKey = bs
					return want(typ, protowire.BytesType)
				}
				return true
			})
		case 4:
			k := new(rawMessageKey)
			c.keys = append(c.keys, k)
			return want(typ, protowire.BytesType) && pbwire.Walk(bs, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
				switch num {
				case 1:
					k.index = v
					return want(typ, protowire.VarintType)
				case 2:
					k.cipher = bs
				case 3:
					k.mac = bs
				case 4:
					k.iv = bs
				case 5:
					k.seed = bs
				default:
					return true
				}
				return want(typ, protowire.BytesType)
			})
		}
		return true
	})
}

func (r *rawState) parse(b []byte) bool {
	return pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		isVarint, isBytes := typ == protowire.VarintType, typ == protowire.BytesType
		switch num {
		case fSessionVersion:
			r.version = v
			return isVarint
		case fLocalIdentity:
			r.localID = bs
			return isBytes
		case fRemoteIdentity:
			r.remoteID = bs
			return isBytes
		case fRootKey:
			r.root = bs
			return isBytes
		case fPreviousCounter:
			r.prevCounter = v
			return isVarint
		case fSenderChain:
			if r.sender == nil { // a repeated submessage merges into one
				r.sender = new(rawChain)
			}
			return isBytes && r.sender.parse(bs)
		case fReceiverChains:
			c := new(rawChain)
			r.receivers = append(r.receivers, c)
			return isBytes && c.parse(bs)
		case fPendingPreKey:
			if r.pending == nil {
				r.pending = new(rawPending)
			}
			p := r.pending
			return isBytes && pbwire.Walk(bs, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
				switch num {
				case 1:
					p.preKeyID, p.havePreKeyID = v, true
				case 2:
					p.baseKey = bs
					return want(typ, protowire.BytesType)
				case 3:
					p.signedPreKeyID = v
				case 4:
					p.timestamp = v
				default:
					return true
				}
				return want(typ, protowire.VarintType)
			})
		case fRemoteRegistrationID:
			r.remoteReg = v
			return isVarint
		case fLocalRegistrationID:
			r.localReg = v
			return isVarint
		case fAliceBaseKey:
			r.baseKey = bs
			return isBytes
		case fPendingKyberPreKey:
			r.haveKyber = true
			return isBytes && pbwire.Walk(bs, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
				switch num {
				case 1:
					r.kyberID = v
					return want(typ, protowire.VarintType)
				case 2:
					r.kyberCT = bs
					return want(typ, protowire.BytesType)
				}
				return true
			})
		case fPQRatchetState:
			r.pq = bs
			return isBytes
		}
		return true
	})
}

// decodeState parses and checks a SessionStructure. Every key must have
// the right type and length; anything else is ErrInvalidState. The result
// does not alias b.
func decodeState(b []byte) (*State, error) {
	var r rawState
	if !r.parse(b) {
		return nil, invalid("session encoding")
	}
	if r.version != 3 && r.version != 4 {
		return nil, invalid("unknown session version")
	}
	s := &State{
		Version:              uint8(r.version),
		LocalRegistrationID:  key.RegistrationID(r.localReg),
		RemoteRegistrationID: key.RegistrationID(r.remoteReg),
	}
	var err error
	if s.LocalIdentity, err = key.ParseIdentityKey(r.localID); err != nil {
		return nil, invalid("local identity key")
	}
	if s.RemoteIdentity, err = key.ParseIdentityKey(r.remoteID); err != nil {
		return nil, invalid("remote identity key")
	}
	if len(r.root) != 32 {
		return nil, invalid("root key")
	}
	copy(s.Ratchet.Root[:], r.root)
	s.Ratchet.PreviousCounter = uint32(r.prevCounter)
	if len(r.baseKey) > 0 {
		if s.AliceBaseKey, err = key.ParseECPublic(r.baseKey); err != nil {
			return nil, invalid("base key")
		}
	}
	if len(r.pq) > 0 {
		if s.PQ, err = spqr.ParseState(r.pq); err != nil {
			return nil, invalid("SPQR state")
		}
	}
	if c := r.sender; c != nil {
		pub, err := key.ParseECPublic(c.pub)
		if err != nil {
			return nil, invalid("sender ratchet key")
		}
		priv, err := key.NewECPrivate(c.priv)
		if err != nil {
			return nil, invalid("sender ratchet private key")
		}
		ck, err := chainKey(c)
		if err != nil {
			return nil, err
		}
		s.Ratchet.Sender = &ratchet.SenderChain{RatchetKey: key.ECKeyPair{Private: priv, Public: pub}, ChainKey: ck}
	}
	if n := len(r.receivers); n > 0 {
		s.Ratchet.Receivers = make([]ratchet.ReceiverChain, n)
		for i, c := range r.receivers {
			rc := &s.Ratchet.Receivers[i]
			if rc.RatchetKey, err = key.ParseECPublic(c.pub); err != nil {
				return nil, invalid("receiver ratchet key")
			}
			if rc.ChainKey, err = chainKey(c); err != nil {
				return nil, err
			}
			if m := len(c.keys); m > 0 {
				rc.Skipped = make([]ratchet.SkippedKey, m)
				for j, mk := range c.keys {
					k := &rc.Skipped[m-1-j]
					k.Index = uint32(mk.index)
					switch {
					case len(mk.seed) == 32:
						copy(k.Seed[:], mk.seed)
					case len(mk.seed) == 0 && len(mk.cipher) == 32 && len(mk.mac) == 32 && len(mk.iv) == 16:
						k.Legacy = new(ratchet.MessageKeys)
						copy(k.Legacy.CipherKey[:], mk.cipher)
						copy(k.Legacy.MACKey[:], mk.mac)
						copy(k.Legacy.IV[:], mk.iv)
					default:
						return nil, invalid("skipped message key")
					}
				}
			}
		}
	}
	if p := r.pending; p != nil {
		pp := &PendingPreKey{
			SignedPreKeyID: key.SignedPreKeyID(uint32(p.signedPreKeyID)),
			Created:        time.Unix(int64(p.timestamp), 0),
		}
		if p.havePreKeyID {
			id := key.PreKeyID(p.preKeyID)
			pp.PreKeyID = &id
		}
		if pp.BaseKey, err = key.ParseECPublic(p.baseKey); err != nil {
			return nil, invalid("pending base key")
		}
		if r.haveKyber {
			id := key.KyberPreKeyID(r.kyberID)
			pp.KyberPreKeyID, pp.KyberCiphertext = &id, append([]byte(nil), r.kyberCT...)
		}
		s.Pending = pp
	}
	return s, nil
}

func chainKey(c *rawChain) (ratchet.ChainKey, error) {
	var ck ratchet.ChainKey
	if !c.haveCK || len(c.ckKey) != 32 {
		return ck, invalid("chain key")
	}
	copy(ck.Key[:], c.ckKey)
	ck.Index = uint32(c.ckIndex)
	return ck, nil
}

// decodeRecord parses a RecordStructure; archived sessions stay encoded.
func decodeRecord(b []byte) (*Record, error) {
	r := &Record{}
	var cur []byte
	haveCur := false
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			if haveCur { // a repeated submessage merges: concatenate
				cur = append(append([]byte(nil), cur...), bs...)
			} else {
				cur = bs
			}
			haveCur = true
			return typ == protowire.BytesType
		case 2:
			r.previous = append(r.previous, append([]byte(nil), bs...))
			return typ == protowire.BytesType
		}
		return true
	})
	if !ok {
		return nil, invalid("record encoding")
	}
	if haveCur {
		s, err := decodeState(cur)
		if err != nil {
			return nil, err
		}
		r.current = s
	}
	return r, nil
}
