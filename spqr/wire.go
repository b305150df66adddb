package spqr

import (
	"github.com/hushmsg/hush/spqr/internal/polycode"
)

// msgType is the payload type byte of a V1 message
// (src/v1/chunked/states/serialize.rs MessageType).
type msgType uint8

const (
	msgNone     msgType = 0
	msgHdr      msgType = 1
	msgEk       msgType = 2
	msgEkCt1Ack msgType = 3
	msgCt1Ack   msgType = 4
	msgCt1      msgType = 5
	msgCt2      msgType = 6
)

var msgTypeNames = [...]string{"None", "Hdr", "Ek", "EkCt1Ack", "Ct1Ack", "Ct1", "Ct2"}

func (t msgType) String() string {
	if int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return "invalid"
}

func (t msgType) hasChunk() bool {
	switch t {
	case msgHdr, msgEk, msgEkCt1Ack, msgCt1, msgCt2:
		return true
	}
	return false
}

// message is src/v1/chunked/states.rs Message: the sender's epoch and the
// payload. The chain index travels beside it on the wire.
type message struct {
	epoch uint64
	typ   msgType
	chunk polycode.Chunk // when typ.hasChunk()
}

// maxVarintLen is MAX_VARINT_BYTES_LEN.
const maxVarintLen = 10

// appendVarint is encode_varint: LEB128, 7 bits per byte, low group first.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// readVarint is decode_varint: at most 10 bytes, error on truncation; like
// the crate it accepts non-minimal encodings and lets bits above 64 fall off.
func readVarint(b []byte, at int) (uint64, int, error) {
	if at >= len(b) {
		return 0, at, ErrMsgDecode
	}
	var v uint64
	for i := 0; i < maxVarintLen && at+i < len(b); i++ {
		c := b[at+i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, at + i + 1, nil
		}
	}
	return 0, at, ErrMsgDecode
}

// serialize is Message::serialize: version byte 1, varint epoch, varint
// index, type byte, and for chunk payloads varint chunk index and 32 bytes.
func (m *message) serialize(index uint32) []byte {
	b := make([]byte, 0, 40)
	b = append(b, byte(V1))
	b = appendVarint(b, m.epoch)
	b = appendVarint(b, uint64(index))
	b = append(b, byte(m.typ))
	if m.typ.hasChunk() {
		b = appendVarint(b, uint64(m.chunk.Index))
		b = append(b, m.chunk.Data[:]...)
	}
	return b
}

// parseMessage is Message::deserialize. Bytes after the message are ignored
// (reserved by the crate for future upgrades).
func parseMessage(b []byte) (message, uint32, error) {
	var m message
	if len(b) == 0 || b[0] != byte(V1) {
		return m, 0, ErrMsgDecode
	}
	epoch, at, err := readVarint(b, 1)
	if err != nil {
		return m, 0, err
	}
	if epoch == 0 {
		return m, 0, ErrMsgDecode
	}
	index, at, err := readVarint(b, at)
	if err != nil || index > 0xffffffff {
		return m, 0, ErrMsgDecode
	}
	if at >= len(b) {
		return m, 0, ErrMsgDecode
	}
	typ := msgType(b[at])
	at++
	if typ > msgCt2 {
		return m, 0, ErrMsgDecode
	}
	m.epoch, m.typ = epoch, typ
	if typ.hasChunk() {
		ci, next, err := readVarint(b, at)
		if err != nil {
			return message{}, 0, err
		}
		if ci > 0xffff || len(b)-next < polycode.ChunkSize {
			return message{}, 0, ErrMsgDecode
		}
		m.chunk.Index = uint16(ci)
		copy(m.chunk.Data[:], b[next:next+polycode.ChunkSize])
	}
	return m, uint32(index), nil
}
