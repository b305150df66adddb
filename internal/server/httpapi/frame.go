package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/hushmsg/hush/internal/api"
)

// The frames of a busy connection, sends and acks in, "sent" and messages
// out, are decoded and encoded here without reflection: at 5,000 messages
// a second encoding/json took a fifth of hushd's CPU (docs/performance.md,
// "Latency: 1,000 pairs at 5,000 messages/s"). Both are fast paths for the
// frames as encoding/json writes them: what they do not take (an escape in
// a string, an unknown or differently capitalised key, a null, a number
// with a fraction or an exponent, ...) goes to encoding/json, which gives
// the same value or the same error as before. The tests check that every
// frame the fast path decodes, encoding/json decodes to the same value,
// and that every frame it encodes is byte for byte what encoding/json
// writes.

// decodeFrame decodes a WebSocket frame.
func decodeFrame(b []byte) (api.Frame, error) {
	if f, ok := fastDecodeFrame(b); ok {
		return f, nil
	}
	return Decode[api.Frame](b)
}

// frameScanner reads the subset of JSON that the fast path takes.
type frameScanner struct {
	b []byte
	i int
}

func (s *frameScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c (and
// consumes it if so).
func (s *frameScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes and of printable ASCII only (so that
// it is the same bytes after decoding, and encoding/json would keep them
// as they are); it returns the bytes between the quotes.
func (s *frameScanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// digits reads a JSON integer: an optional minus (if neg), then 0 or
// digits without a leading zero, not followed by a fraction or exponent.
func (s *frameScanner) digits(neg bool) ([]byte, bool) {
	s.space()
	start := s.i
	if neg && s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	d := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	switch {
	case s.i == d, s.i-d > 1 && s.b[d] == '0':
		return nil, false
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return nil, false
	}
	return s.b[start:s.i], true
}

func (s *frameScanner) int(bits int) (int64, bool) {
	d, ok := s.digits(true)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(d), 10, bits)
	return n, err == nil
}

func (s *frameScanner) uint(bits int) (uint64, bool) {
	d, ok := s.digits(false)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d), 10, bits)
	return n, err == nil
}

// bytes reads a base64 string, as encoding/json decodes a []byte.
func (s *frameScanner) bytes() ([]byte, bool) {
	q, ok := s.str()
	if !ok {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(q)))
	n, err := base64.StdEncoding.Decode(out, q)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// key reads the next member's key of an object whose '{' was read, and
// the colon after it; n is the number of members read before. end
// reports the closing brace instead.
func (s *frameScanner) key(n int) (k []byte, end, ok bool) {
	if s.next('}') {
		return nil, true, true
	}
	if n > 0 && !s.next(',') {
		return nil, false, false
	}
	k, ok = s.str()
	return k, false, ok && s.next(':')
}

// elem reads up to the next element of an array whose '[' was read; n is
// the number of elements read before. end reports the closing bracket
// instead.
func (s *frameScanner) elem(n int) (end, ok bool) {
	if s.next(']') {
		return true, true
	}
	return false, n == 0 || s.next(',')
}

// Members of a frame, as bits, to refuse a key given twice.
const (
	mType = 1 << iota
	mReqID
	mTo
	mDevice
	mIDs
	mSend
	mContent
	mExpiresIn
	mCommitment
	mIdentity
	mBlobs
)

// fastDecodeFrame decodes the frames clients send (sends and acks) when
// they are in the subset described above; ok is false otherwise.
func fastDecodeFrame(b []byte) (f api.Frame, ok bool) {
	s := &frameScanner{b: b}
	if !s.next('{') {
		return f, false
	}
	seen := 0
	for n := 0; ; n++ {
		k, end, ok := s.key(n)
		if !ok {
			return f, false
		}
		if end {
			break
		}
		var m int
		switch string(k) {
		case "type":
			m = mType
			var t []byte
			t, ok = s.str()
			f.Type = string(t)
		case "reqId":
			m = mReqID
			f.ReqID, ok = s.uint(64)
		case "to":
			m = mTo
			var t []byte
			t, ok = s.str()
			f.To = string(t)
		case "device":
			m = mDevice
			var d uint64
			d, ok = s.uint(32)
			f.Device = uint32(d)
		case "ids":
			m = mIDs
			f.IDs, ok = s.ints()
		case "send":
			m = mSend
			f.Send = new(api.SendMessage)
			ok = s.sendMessage(f.Send)
		default:
			return f, false
		}
		if !ok || seen&m != 0 {
			return f, false
		}
		seen |= m
	}
	s.space()
	return f, s.i == len(s.b)
}

// ints reads an array of int64.
func (s *frameScanner) ints() ([]int64, bool) {
	if !s.next('[') {
		return nil, false
	}
	out := []int64{}
	for n := 0; ; n++ {
		end, ok := s.elem(n)
		switch {
		case !ok:
			return nil, false
		case end:
			return out, true
		}
		id, ok := s.int(64)
		if !ok {
			return nil, false
		}
		out = append(out, id)
	}
}

// strs reads an array of strings.
func (s *frameScanner) strs() ([]string, bool) {
	if !s.next('[') {
		return nil, false
	}
	out := []string{}
	for n := 0; ; n++ {
		end, ok := s.elem(n)
		switch {
		case !ok:
			return nil, false
		case end:
			return out, true
		}
		b, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, string(b))
	}
}

func (s *frameScanner) sendMessage(m *api.SendMessage) bool {
	if !s.next('{') {
		return false
	}
	seen := 0
	for n := 0; ; n++ {
		k, end, ok := s.key(n)
		switch {
		case !ok:
			return false
		case end:
			return true
		}
		var bit int
		switch string(k) {
		case "type":
			bit = mType
			var t int64
			t, ok = s.int(32)
			m.Type = int32(t)
		case "content":
			bit = mContent
			m.Content, ok = s.bytes()
		case "expiresIn":
			bit = mExpiresIn
			m.ExpiresIn, ok = s.int(64)
		case "frankingCommitment":
			bit = mCommitment
			m.Commitment, ok = s.bytes()
		case "recipientIdentity":
			bit = mIdentity
			m.RecipientIdentity, ok = s.bytes()
		case "blobs":
			bit = mBlobs
			m.Blobs, ok = s.strs()
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// appendFrame appends f as encoding/json encodes it (json.Marshal, without
// the newline).
func appendFrame(b []byte, f *api.Frame) ([]byte, error) {
	switch {
	case f.Type == api.FrameSent && f.Result != nil && f.Msg == nil && f.IDs == nil && f.To == "" && f.Device == 0 &&
		f.Send == nil && f.Error == nil:
		b = append(b, `{"type":"sent"`...)
		if f.ReqID != 0 {
			b = append(b, `,"reqId":`...)
			b = strconv.AppendUint(b, f.ReqID, 10)
		}
		b = append(b, `,"result":{"id":`...)
		b = strconv.AppendInt(b, f.Result.ID, 10)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, f.Result.Timestamp, 10)
		return append(b, "}}"...), nil
	case f.Type == api.FrameMessage && f.Msg != nil && f.ReqID == 0 && f.IDs == nil && f.To == "" && f.Device == 0 &&
		f.Send == nil && f.Result == nil && f.Error == nil && plain(f.Msg.From):
		m := f.Msg
		b = append(b, `{"type":"message","msg":{"id":`...)
		b = strconv.AppendInt(b, m.ID, 10)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, m.Timestamp, 10)
		b = append(b, `,"from":"`...)
		b = append(b, m.From...)
		b = append(b, `","fromDevice":`...)
		b = strconv.AppendUint(b, uint64(m.FromDevice), 10)
		b = append(b, `,"type":`...)
		b = strconv.AppendInt(b, int64(m.Type), 10)
		b = append(b, `,"content":`...)
		b = appendBytes(b, m.Content)
		b = append(b, `,"expiresAt":`...)
		b = strconv.AppendInt(b, m.ExpiresAt, 10)
		if fr := m.Franking; fr != nil {
			b = append(b, `,"franking":{"commitment":`...)
			b = appendBytes(b, fr.Commitment)
			b = append(b, `,"tag":`...)
			b = appendBytes(b, fr.Tag)
			b = append(b, `,"keyId":`...)
			b = strconv.AppendUint(b, uint64(fr.KeyID), 10)
			b = append(b, '}')
		}
		return append(b, "}}"...), nil
	}
	j, err := json.Marshal(f)
	return append(b, j...), err
}

// appendBytes appends p as encoding/json encodes a []byte.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// plain reports whether encoding/json writes s as it is between quotes:
// printable ASCII without the characters it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
