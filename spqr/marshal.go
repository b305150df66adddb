package spqr

import (
	"encoding/binary"
	"math"

	"github.com/hushmsg/hush/spqr/internal/polycode"
)

// State serialization: this package's own format, not libsignal's
// PqRatchetState protobuf. All integers are fixed-width big-endian, every
// field is at a position determined by earlier ones, and nothing is
// optional except as flagged, so the encoding of a state is unique and
// ParseState can insist on it (parse then marshal returns the same bytes).
//
//	u8   format version (stateFormatV1)
//	u8   protocol version: 0 (V0, nothing follows) or 1
//	u8   flags: 1 = negotiation present, 2 = chain present (at least one set)
//	negotiation: auth key [32], direction u8, min version u8,
//	             max jump u32, max ooo keys u32
//	chain: direction u8, current epoch u64, send epoch u64, next root [32],
//	       max jump u32, max ooo keys u32, link count u16, then per link
//	       (oldest first, the last is the current epoch):
//	         send: ctr u32, next [32] only if the link's epoch >= send epoch,
//	               key count u32, records (BE32 index || key [32]) increasing
//	         recv: ctr u32, next [32], key count u32, records
//	braid: kind u8, epoch u64, auth root [32], auth mac key [32], then by kind:
//	  KeysUnsampled        -
//	  KeysSampled          seed [64], enc idx u32, hdr||mac [96]
//	  HeaderSent           seed [64], enc idx u32, ek [1152], ct1 decoder
//	  Ct1Received          seed [64], enc idx u32, ek [1152], ct1 [960]
//	  EkSentCt1Received    seed [64], ct1 [960], ct2||mac decoder
//	  NoHeaderReceived     hdr||mac decoder
//	  HeaderReceived       hdr [64]
//	  Ct1Sampled           hdr [64], m [32], enc idx u32, ct1 [960], ek decoder
//	  EkReceivedCt1Sampled hdr [64], m [32], enc idx u32, ct1 [960], ek [1152]
//	  Ct1Acknowledged      hdr [64], m [32], ct1 [960], ek decoder
//	  Ct2Sampled           enc idx u32, ct2||mac [160]
//
// Decoders use polycode's canonical encoding and are never complete (a
// complete decoder is consumed by the transition that completes it).
const stateFormatV1 = 1

const (
	flagNegotiation = 1
	flagChain       = 2
)

// MarshalBinary encodes the state (deterministic, versioned).
func (s *State) MarshalBinary() ([]byte, error) {
	if !s.v1 {
		return []byte{stateFormatV1, byte(V0)}, nil
	}
	b, err := s.AppendBinary(make([]byte, 0, s.sizeHint()))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendBinary appends the encoding MarshalBinary returns to b
// (encoding.BinaryAppender), so that a caller writing the state inside a
// larger record needs no buffer of its own. On error b is returned
// unchanged in length. The bytes appended hold secrets.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	if !s.v1 {
		return append(b, stateFormatV1, byte(V0)), nil
	}
	start := len(b)
	b = append(b, stateFormatV1, byte(V1))
	var flags byte
	if s.neg != nil {
		flags |= flagNegotiation
	}
	if s.chain != nil {
		flags |= flagChain
	}
	b = append(b, flags)
	if n := s.neg; n != nil {
		b = append(b, n.authKey[:]...)
		b = append(b, byte(n.dir), byte(n.minVersion))
		b = binary.BigEndian.AppendUint32(b, n.params.MaxJump)
		b = binary.BigEndian.AppendUint32(b, n.params.MaxOOOKeys)
	}
	if c := s.chain; c != nil {
		b = append(b, byte(c.dir))
		b = binary.BigEndian.AppendUint64(b, c.currentEpoch)
		b = binary.BigEndian.AppendUint64(b, c.sendEpoch)
		b = append(b, c.nextRoot[:]...)
		b = binary.BigEndian.AppendUint32(b, c.params.MaxJump)
		b = binary.BigEndian.AppendUint32(b, c.params.MaxOOOKeys)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.links)))
		for i := range c.links {
			l := &c.links[i]
			b = appendDir(b, &l.send, l.send.hasNext)
			b = appendDir(b, &l.recv, true)
		}
	}
	br := &s.br
	b = append(b, byte(br.kind))
	b = binary.BigEndian.AppendUint64(b, br.epoch)
	b = append(b, br.auth.root[:]...)
	b = append(b, br.auth.mac[:]...)
	switch br.kind {
	case kKeysUnsampled:
	case kKeysSampled:
		b = append(b, br.seed[:]...)
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.hmsg[:]...)
	case kHeaderSent:
		b = append(b, br.seed[:]...)
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.ek[:]...)
		b = br.dec.AppendBinary(b)
	case kCt1Received:
		b = append(b, br.seed[:]...)
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.ek[:]...)
		b = append(b, br.ct1[:]...)
	case kEkSentCt1Received:
		b = append(b, br.seed[:]...)
		b = append(b, br.ct1[:]...)
		b = br.dec.AppendBinary(b)
	case kNoHeaderReceived:
		b = br.dec.AppendBinary(b)
	case kHeaderReceived:
		b = append(b, br.hdr[:]...)
	case kCt1Sampled:
		b = append(b, br.hdr[:]...)
		b = append(b, br.m[:]...)
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.ct1[:]...)
		b = br.dec.AppendBinary(b)
	case kEkReceivedCt1Sampled:
		b = append(b, br.hdr[:]...)
		b = append(b, br.m[:]...)
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.ct1[:]...)
		b = append(b, br.ek[:]...)
	case kCt1Acknowledged:
		b = append(b, br.hdr[:]...)
		b = append(b, br.m[:]...)
		b = append(b, br.ct1[:]...)
		b = br.dec.AppendBinary(b)
	case kCt2Sampled:
		b = binary.BigEndian.AppendUint32(b, br.enc.NextIndex())
		b = append(b, br.msg2[:]...)
	default:
		clear(b[start:])
		return b[:start], ErrStateDecode
	}
	return b, nil
}

func (s *State) sizeHint() int {
	n := 3 + 42 + 64 + 9 + 65 + 3200
	if s.chain != nil {
		for i := range s.chain.links {
			n += 80 + len(s.chain.links[i].send.prev) + len(s.chain.links[i].recv.prev)
		}
	}
	return n
}

func appendDir(b []byte, d *chainDir, withNext bool) []byte {
	b = binary.BigEndian.AppendUint32(b, d.ctr)
	if withNext {
		b = append(b, d.next[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.prev)/keyRecordSize))
	return append(b, d.prev...)
}

// reader reads fixed-width fields; after the first short read every read
// fails and ok stays false.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) take(n int) []byte {
	if !r.ok || n < 0 || len(r.b) < n {
		r.ok = false
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) arr32(dst *[32]byte) { copy(dst[:], r.take(32)) }

func (r *reader) decoder(n int) polycode.Decoder {
	if !r.ok {
		return polycode.Decoder{}
	}
	d, rest, err := polycode.ParseDecoder(n, r.b)
	if err != nil || d.Complete() {
		r.ok = false
		return polycode.Decoder{}
	}
	r.b = rest
	return d
}

// fill copies the next len(dst) bytes into dst.
func (r *reader) fill(dst []byte) { copy(dst, r.take(len(dst))) }

func (r *reader) encoder(msg []byte, idx uint32) polycode.Encoder {
	if !r.ok {
		return polycode.Encoder{}
	}
	e, err := polycode.RestoreEncoder(msg, idx)
	if err != nil {
		r.ok = false
	}
	return e
}

func validParams(p ChainParams) bool {
	return p.MaxJump != 0 && p.MaxOOOKeys != 0 && p.MaxOOOKeys <= maxOOOKeysLimit
}

// ParseState decodes a state written by MarshalBinary. It rejects, with
// ErrStateDecode, every input that MarshalBinary could not have produced
// for a state reachable through this package's API, including trailing
// bytes; it never panics.
func ParseState(b []byte) (*State, error) {
	r := &reader{b: b, ok: true}
	if r.u8() != stateFormatV1 || !r.ok {
		return nil, ErrStateDecode
	}
	switch r.u8() {
	case byte(V0):
		if !r.ok || len(r.b) != 0 {
			return nil, ErrStateDecode
		}
		return &State{}, nil
	case byte(V1):
	default:
		return nil, ErrStateDecode
	}
	flags := r.u8()
	if flags == 0 || flags&^(flagNegotiation|flagChain) != 0 {
		return nil, ErrStateDecode
	}
	s := &State{v1: true}
	if flags&flagNegotiation != 0 {
		n := &negotiation{}
		r.arr32(&n.authKey)
		n.dir = Direction(r.u8())
		n.minVersion = Version(r.u8())
		n.params.MaxJump = r.u32()
		n.params.MaxOOOKeys = r.u32()
		if n.dir > B2A || n.minVersion > V1 || !validParams(n.params) {
			return nil, ErrStateDecode
		}
		s.neg = n
	}
	if flags&flagChain != 0 {
		c, ok := parseChain(r)
		if !ok {
			return nil, ErrStateDecode
		}
		s.chain = c
	}
	if !parseBraid(r, &s.br) || !r.ok || len(r.b) != 0 {
		return nil, ErrStateDecode
	}
	return s, nil
}

func parseChain(r *reader) (*chain, bool) {
	c := &chain{}
	c.dir = Direction(r.u8())
	c.currentEpoch = r.u64()
	c.sendEpoch = r.u64()
	r.arr32(&c.nextRoot)
	c.params.MaxJump = r.u32()
	c.params.MaxOOOKeys = r.u32()
	nlinks := int(r.u16())
	if !r.ok || c.dir > B2A || !validParams(c.params) || nlinks == 0 ||
		uint64(nlinks-1) > c.currentEpoch || c.sendEpoch > c.currentEpoch {
		return nil, false
	}
	first := c.currentEpoch - uint64(nlinks-1)
	// The send epoch keeps at most one epoch before it.
	if c.sendEpoch > 0 && first < c.sendEpoch-epochsToKeepPriorToSendEpoch {
		return nil, false
	}
	c.links = make([]chainEpoch, nlinks)
	maxKeys := c.params.trimSize() - 1
	for i := range c.links {
		l := &c.links[i]
		epoch := first + uint64(i)
		if !parseDir(r, &l.send, epoch >= c.sendEpoch, maxKeys) ||
			!parseDir(r, &l.recv, true, maxKeys) {
			return nil, false
		}
	}
	return c, r.ok
}

func parseDir(r *reader, d *chainDir, withNext bool, maxKeys int) bool {
	d.ctr = r.u32()
	if withNext {
		r.arr32(&d.next)
		d.hasNext = true
	}
	n := r.u32()
	if !r.ok || uint64(n) > uint64(maxKeys) {
		return false
	}
	if n > 0 {
		recs := r.take(int(n) * keyRecordSize)
		if recs == nil {
			return false
		}
		last := uint32(0)
		for i := 0; i < len(recs); i += keyRecordSize {
			idx := binary.BigEndian.Uint32(recs[i:])
			if idx <= last || idx >= d.ctr {
				return false
			}
			last = idx
		}
		d.prev = append([]byte(nil), recs...)
	}
	return true
}

func parseBraid(r *reader, br *braidState) bool {
	br.kind = stateKind(r.u8())
	br.epoch = r.u64()
	r.arr32(&br.auth.root)
	r.arr32(&br.auth.mac)
	if !r.ok || br.kind >= numKinds || br.epoch == 0 || br.epoch == math.MaxUint64 {
		return false
	}
	switch br.kind {
	case kKeysUnsampled:
	case kKeysSampled:
		br.seed = new([seedSize]byte)
		r.fill(br.seed[:])
		idx := r.u32()
		br.hmsg = new([hdrMsgSize]byte)
		r.fill(br.hmsg[:])
		br.enc = r.encoder(br.hmsg[:], idx)
	case kHeaderSent:
		br.seed = new([seedSize]byte)
		r.fill(br.seed[:])
		idx := r.u32()
		br.ek = new([ekMsgSize]byte)
		r.fill(br.ek[:])
		br.enc = r.encoder(br.ek[:], idx)
		br.dec = r.decoder(ct1MsgSize)
	case kCt1Received:
		br.seed = new([seedSize]byte)
		r.fill(br.seed[:])
		idx := r.u32()
		br.ek = new([ekMsgSize]byte)
		r.fill(br.ek[:])
		br.enc = r.encoder(br.ek[:], idx)
		br.ct1 = new([ct1MsgSize]byte)
		r.fill(br.ct1[:])
	case kEkSentCt1Received:
		br.seed = new([seedSize]byte)
		r.fill(br.seed[:])
		br.ct1 = new([ct1MsgSize]byte)
		r.fill(br.ct1[:])
		br.dec = r.decoder(ct2MsgSize)
	case kNoHeaderReceived:
		br.dec = r.decoder(hdrMsgSize)
	case kHeaderReceived:
		br.hdr = new([hdrSize]byte)
		r.fill(br.hdr[:])
	case kCt1Sampled:
		br.hdr = new([hdrSize]byte)
		r.fill(br.hdr[:])
		br.m = new([mSize]byte)
		r.fill(br.m[:])
		idx := r.u32()
		br.ct1 = new([ct1MsgSize]byte)
		r.fill(br.ct1[:])
		br.enc = r.encoder(br.ct1[:], idx)
		br.dec = r.decoder(ekMsgSize)
	case kEkReceivedCt1Sampled:
		br.hdr = new([hdrSize]byte)
		r.fill(br.hdr[:])
		br.m = new([mSize]byte)
		r.fill(br.m[:])
		idx := r.u32()
		br.ct1 = new([ct1MsgSize]byte)
		r.fill(br.ct1[:])
		br.enc = r.encoder(br.ct1[:], idx)
		br.ek = new([ekMsgSize]byte)
		r.fill(br.ek[:])
	case kCt1Acknowledged:
		br.hdr = new([hdrSize]byte)
		r.fill(br.hdr[:])
		br.m = new([mSize]byte)
		r.fill(br.m[:])
		br.ct1 = new([ct1MsgSize]byte)
		r.fill(br.ct1[:])
		br.dec = r.decoder(ekMsgSize)
	case kCt2Sampled:
		idx := r.u32()
		br.msg2 = new([ct2MsgSize]byte)
		r.fill(br.msg2[:])
		br.enc = r.encoder(br.msg2[:], idx)
	}
	return r.ok
}
