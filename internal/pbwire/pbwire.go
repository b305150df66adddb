// Package pbwire has the few protobuf encoding helpers that hush's
// hand-written codecs share (wire messages, session records, key records,
// fingerprints). They follow libsignal's prost: a field of the wrong wire
// type or an out-of-range field number makes the message invalid, unknown
// fields are skipped, and a repeated scalar keeps its last value.
package pbwire

import "google.golang.org/protobuf/encoding/protowire"

// Walk calls f for each field of a message with its number and wire type,
// the value of a varint or fixed field in v, and the bytes of a
// length-delimited field in bs (aliasing b). Groups are skipped. f returns
// false to reject the message; so does a malformed field. Walk reports
// whether the whole message was read.
func Walk(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return false
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
			if bs == nil && n >= 0 {
				bs = []byte{} // present but empty
			}
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 || !f(num, typ, v, bs) {
			return false
		}
		b = b[n:]
	}
	return true
}

// AppendBytes appends a length-delimited field, omitted when empty (proto3).
func AppendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// AppendVarint appends a varint field, omitted when zero (proto3).
func AppendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendMessage appends a submessage that f writes in place: it reserves a
// one-byte length and moves the body if it turns out longer.
func AppendMessage(b []byte, num protowire.Number, f func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = append(b, 0)
	b = f(b)
	n := len(b) - start - 1
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	sz := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, sz-1)...)
	copy(b[start+sz:], b[start+1:start+1+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}
