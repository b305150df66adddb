package spqr

import (
	"fmt"
	"io"
	"math"

	"github.com/hushmsg/hush/spqr/internal/braid"
	"github.com/hushmsg/hush/spqr/internal/polycode"
)

// stateKind names the 11 chunked states of src/v1/chunked/states.rs States.
type stateKind uint8

const (
	// EK-sender role (src/v1/chunked/send_ek.rs).
	kKeysUnsampled stateKind = iota
	kKeysSampled
	kHeaderSent
	kCt1Received
	kEkSentCt1Received
	// CT-sender role (src/v1/chunked/send_ct.rs).
	kNoHeaderReceived
	kHeaderReceived
	kCt1Sampled
	kEkReceivedCt1Sampled
	kCt1Acknowledged
	kCt2Sampled
	numKinds
)

var kindNames = [...]string{
	"KeysUnsampled", "KeysSampled", "HeaderSent", "Ct1Received", "EkSentCt1Received",
	"NoHeaderReceived", "HeaderReceived", "Ct1Sampled", "EkReceivedCt1Sampled",
	"Ct1Acknowledged", "Ct2Sampled",
}

func (k stateKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Payload sizes of the four chunked streams and of the stored secrets.
const (
	hdrMsgSize = braid.HeaderSize + macSize // hdr || mac
	ct2MsgSize = braid.Ct2Size + macSize    // ct2 || mac
	ekMsgSize  = braid.EKSize               // ek vector
	ct1MsgSize = braid.Ct1Size              // ct1
	seedSize   = braid.SeedSize             // ML-KEM key-generation seed
	mSize      = braid.MSize                // ML-KEM encapsulation randomness
	hdrSize    = braid.HeaderSize           // rho || H(ek)
	macSize    = 32                         // HMAC-SHA256
)

// braidState is one of the 11 states. Which fields are meaningful depends on
// kind (see the table in marshal.go). The arrays behind the pointers are
// never modified once set, so states may share them; the decoder is cloned
// before it is changed.
type braidState struct {
	kind  stateKind
	epoch uint64
	auth  authenticator

	seed *[seedSize]byte   // EK side from KeysSampled on: the ML-KEM seed (replaces libcrux's dk)
	hdr  *[hdrSize]byte    // CT side from HeaderReceived on: the peer's header
	m    *[mSize]byte      // CT side from Ct1Sampled on: encaps randomness (replaces the encaps state)
	ek   *[ekMsgSize]byte  // EK side: own ek (encoder message); CT side EkReceivedCt1Sampled: peer's ek
	ct1  *[ct1MsgSize]byte // ct1 (own or peer's)
	enc  polycode.Encoder  // outgoing stream of the state, if any
	dec  polycode.Decoder  // incoming stream of the state, if any
	msg2 *[ct2MsgSize]byte // Ct2Sampled: ct2 || mac (encoder message)
	hmsg *[hdrMsgSize]byte // KeysSampled: hdr || mac (encoder message)
}

// initA is States::init_a: the session initiator starts as EK sender.
func initA(authKey []byte) braidState {
	return braidState{kind: kKeysUnsampled, epoch: 1, auth: newAuthenticator(authKey, 1)}
}

// initB is States::init_b: the responder starts as CT sender.
func initB(authKey []byte) braidState {
	return braidState{kind: kNoHeaderReceived, epoch: 1, auth: newAuthenticator(authKey, 1), dec: mustDecoder(hdrMsgSize)}
}

func mustDecoder(n int) polycode.Decoder {
	d, err := polycode.NewDecoder(n)
	if err != nil {
		panic("spqr: decoder size") // sizes are constants
	}
	return d
}

func mustEncoder(msg []byte) polycode.Encoder {
	e, err := polycode.NewEncoder(msg)
	if err != nil {
		panic("spqr: encoder size") // sizes are constants
	}
	return e
}

// epochSecretOut is an epoch secret handed to the chain (crate EpochSecret).
type epochSecretOut struct {
	epoch  uint64
	secret [32]byte
}

// send is States::send. It works on a copy; s is not changed.
func (s braidState) send(rand io.Reader) (braidState, message, *epochSecretOut, error) {
	msg := message{epoch: s.epoch, typ: msgNone}
	switch s.kind {
	case kKeysUnsampled:
		// KeysUnsampled::send_hdr_chunk / unchunked send_header: sample the
		// key pair, MAC the header, start sending hdr || mac.
		seed := new([seedSize]byte)
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return s, msg, nil, ErrRandom
		}
		hdr, _, err := braid.KeyGen(seed[:])
		if err != nil {
			return s, msg, nil, err
		}
		mac := s.auth.macHdr(s.epoch, hdr[:])
		hm := new([hdrMsgSize]byte)
		copy(hm[:hdrSize], hdr[:])
		copy(hm[hdrSize:], mac[:])
		s.kind, s.seed, s.hmsg = kKeysSampled, seed, hm
		s.enc = mustEncoder(hm[:])
		msg.typ, msg.chunk = msgHdr, s.enc.Next()
	case kKeysSampled:
		msg.typ, msg.chunk = msgHdr, s.enc.Next()
	case kHeaderSent:
		msg.typ, msg.chunk = msgEk, s.enc.Next()
	case kCt1Received:
		msg.typ, msg.chunk = msgEkCt1Ack, s.enc.Next()
	case kEkSentCt1Received:
		msg.typ = msgCt1Ack
	case kNoHeaderReceived, kCt1Acknowledged:
		// msg.typ = None
	case kHeaderReceived:
		// HeaderReceived::send_ct1_chunk / unchunked send_ct1: encaps1,
		// derive the epoch secret, update the authenticator, send ct1.
		m := new([mSize]byte)
		if _, err := io.ReadFull(rand, m[:]); err != nil {
			return s, msg, nil, ErrRandom
		}
		ct1, ss := braid.Encaps1(s.hdr, m)
		sec := epochSecret(s.epoch, ss[:])
		s.auth.update(s.epoch, sec[:])
		c1 := new([ct1MsgSize]byte)
		*c1 = ct1
		s.kind, s.m, s.ct1 = kCt1Sampled, m, c1
		s.enc = mustEncoder(c1[:])
		s.dec = mustDecoder(ekMsgSize)
		msg.typ, msg.chunk = msgCt1, s.enc.Next()
		return s, msg, &epochSecretOut{epoch: s.epoch, secret: sec}, nil
	case kCt1Sampled, kEkReceivedCt1Sampled:
		msg.typ, msg.chunk = msgCt1, s.enc.Next()
	case kCt2Sampled:
		msg.typ, msg.chunk = msgCt2, s.enc.Next()
	default:
		return s, msg, nil, ErrStateDecode
	}
	return s, msg, nil, nil
}

// recv is States::recv. It works on a copy; s is not changed. Messages from
// earlier epochs and payloads of the wrong type leave the state as it is.
func (s braidState) recv(msg *message) (braidState, *epochSecretOut, error) {
	if msg.epoch > s.epoch {
		// Only Ct2Sampled may see the next epoch: the peer has decapsulated
		// and now sends as CT sender, so we become EK sender.
		if s.kind == kCt2Sampled && s.epoch < math.MaxUint64 && msg.epoch == s.epoch+1 {
			return braidState{kind: kKeysUnsampled, epoch: s.epoch + 1, auth: s.auth}, nil, nil
		}
		return s, nil, errEpoch(msg.epoch)
	}
	if msg.epoch < s.epoch {
		return s, nil, nil
	}
	switch s.kind {
	case kKeysSampled:
		// KeysSampled::recv_ct1_chunk: the first ct1 chunk starts the ct1
		// decoder and the ek stream.
		if msg.typ != msgCt1 {
			break
		}
		_, ek, err := braid.KeyGen(s.seed[:])
		if err != nil {
			return s, nil, err
		}
		e := new([ekMsgSize]byte)
		*e = ek
		s.kind, s.ek, s.hmsg = kHeaderSent, e, nil
		s.enc = mustEncoder(e[:])
		s.dec = mustDecoder(ct1MsgSize)
		s.dec.Add(msg.chunk)
	case kHeaderSent:
		// HeaderSent::recv_ct1_chunk.
		if msg.typ != msgCt1 {
			break
		}
		s.dec = s.dec.Clone()
		s.dec.Add(msg.chunk)
		if b, ok := s.dec.Decoded(); ok {
			c1 := new([ct1MsgSize]byte)
			copy(c1[:], b)
			s.kind, s.ct1, s.dec = kCt1Received, c1, polycode.Decoder{}
		}
	case kCt1Received:
		// Ct1Received::recv_ct2_chunk: stop sending ek, start the ct2 decoder.
		if msg.typ != msgCt2 {
			break
		}
		s.kind, s.ek, s.enc = kEkSentCt1Received, nil, polycode.Encoder{}
		s.dec = mustDecoder(ct2MsgSize)
		s.dec.Add(msg.chunk)
	case kEkSentCt1Received:
		// EkSentCt1Received::recv_ct2_chunk / unchunked recv_ct2: once ct2 ||
		// mac is complete, decapsulate, update the authenticator with the
		// epoch secret, then verify the ciphertext MAC.
		if msg.typ != msgCt2 {
			break
		}
		s.dec = s.dec.Clone()
		s.dec.Add(msg.chunk)
		b, ok := s.dec.Decoded()
		if !ok {
			break
		}
		var ct2 [braid.Ct2Size]byte
		copy(ct2[:], b[:braid.Ct2Size])
		ss, err := braid.Decaps(s.seed[:], s.ct1, &ct2)
		if err != nil {
			return s, nil, err
		}
		sec := epochSecret(s.epoch, ss[:])
		s.auth.update(s.epoch, sec[:])
		if !s.auth.verifyCt(s.epoch, s.ct1[:], ct2[:], b[braid.Ct2Size:]) {
			return s, nil, fmt.Errorf("%w: ciphertext", ErrMacVerifyFailed)
		}
		if s.epoch == math.MaxUint64 {
			return s, nil, errEpoch(s.epoch)
		}
		out := &epochSecretOut{epoch: s.epoch, secret: sec}
		return braidState{kind: kNoHeaderReceived, epoch: s.epoch + 1, auth: s.auth, dec: mustDecoder(hdrMsgSize)}, out, nil
	case kNoHeaderReceived:
		// NoHeaderReceived::recv_hdr_chunk / unchunked recv_header.
		if msg.typ != msgHdr {
			break
		}
		s.dec = s.dec.Clone()
		s.dec.Add(msg.chunk)
		b, ok := s.dec.Decoded()
		if !ok {
			break
		}
		if !s.auth.verifyHdr(s.epoch, b[:hdrSize], b[hdrSize:]) {
			return s, nil, fmt.Errorf("%w: header", ErrMacVerifyFailed)
		}
		h := new([hdrSize]byte)
		copy(h[:], b)
		s.kind, s.hdr, s.dec = kHeaderReceived, h, polycode.Decoder{}
	case kCt1Sampled:
		// Ct1Sampled::recv_ek_chunk.
		if msg.typ != msgEk && msg.typ != msgEkCt1Ack {
			break
		}
		ack := msg.typ == msgEkCt1Ack
		s.dec = s.dec.Clone()
		s.dec.Add(msg.chunk)
		b, ok := s.dec.Decoded()
		switch {
		case ok:
			e, err := s.checkEK(b)
			if err != nil {
				return s, nil, err
			}
			s.ek, s.dec = e, polycode.Decoder{}
			if ack {
				return s.sendCt2()
			}
			s.kind = kEkReceivedCt1Sampled
		case ack:
			s.kind, s.enc = kCt1Acknowledged, polycode.Encoder{}
		}
	case kEkReceivedCt1Sampled:
		// EkReceivedCt1Sampled::recv_ct1_ack.
		if msg.typ == msgCt1Ack || msg.typ == msgEkCt1Ack {
			return s.sendCt2()
		}
	case kCt1Acknowledged:
		// Ct1Acknowledged::recv_ek_chunk.
		if msg.typ != msgEk && msg.typ != msgEkCt1Ack {
			break
		}
		s.dec = s.dec.Clone()
		s.dec.Add(msg.chunk)
		if b, ok := s.dec.Decoded(); ok {
			e, err := s.checkEK(b)
			if err != nil {
				return s, nil, err
			}
			s.ek, s.dec = e, polycode.Decoder{}
			return s.sendCt2()
		}
	case kKeysUnsampled, kHeaderReceived, kCt2Sampled:
		// Nothing to receive in this epoch.
	default:
		return s, nil, ErrStateDecode
	}
	return s, nil, nil
}

// checkEK is unchunked Ct1Sent::recv_ek: the decoded ek must match the
// authenticated header.
func (s *braidState) checkEK(b []byte) (*[ekMsgSize]byte, error) {
	e := new([ekMsgSize]byte)
	copy(e[:], b)
	if !braid.ValidateEK(s.hdr, e) {
		return nil, ErrErroneousDataReceived
	}
	return e, nil
}

// sendCt2 is unchunked Ct1SentEkReceived::send_ct2 plus the chunked
// send_ct2_encoder: encaps2, MAC ct1 || ct2, start sending ct2 || mac.
func (s braidState) sendCt2() (braidState, *epochSecretOut, error) {
	ct2, err := braid.Encaps2(s.hdr, s.ek, s.m)
	if err != nil {
		return s, nil, ErrErroneousDataReceived
	}
	mac := s.auth.macCt(s.epoch, s.ct1[:], ct2[:])
	cm := new([ct2MsgSize]byte)
	copy(cm[:], ct2[:])
	copy(cm[braid.Ct2Size:], mac[:])
	return braidState{kind: kCt2Sampled, epoch: s.epoch, auth: s.auth, msg2: cm, enc: mustEncoder(cm[:])}, nil, nil
}
