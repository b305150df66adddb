package api

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// The frames of a busy connection (sends and acks to the server, "sent"
// answers and messages from it) are decoded and encoded here without
// reflection: at 5,000 messages a second encoding/json took a fifth of
// hushd's CPU (docs/performance.md, "Latency: 1,000 pairs at 5,000
// messages/s"). Both are fast paths for frames as encoding/json writes
// them: what they do not take (an escape in a string, an unknown or
// differently capitalised key, a null, a number with a fraction or an
// exponent, a key given twice, non-ASCII text) is left to encoding/json,
// which gives the same value or the same error as before. The tests check
// that every frame ParseFrame takes, encoding/json decodes to the same
// value, and that every frame AppendFrame encodes is byte for byte what
// encoding/json writes.

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
	mMsg
	mResult
	mID
	mTimestamp
	mFrom
	mFromDevice
	mExpiresAt
	mFranking
	mTag
	mKeyID
)

// ParseFrame decodes a frame in the subset described above; ok is false
// (and the frame zero) for anything else, which the caller decodes with
// encoding/json.
func ParseFrame(b []byte) (Frame, bool) {
	if f, ok := parseFrame(b); ok {
		return f, true
	}
	return Frame{}, false
}

func parseFrame(b []byte) (f Frame, ok bool) {
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
			f.Type = frameType(t)
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
			f.Send = new(SendMessage)
			ok = s.sendMessage(f.Send)
		case "msg":
			m = mMsg
			f.Msg = new(Message)
			ok = s.message(f.Msg)
		case "result":
			m = mResult
			f.Result = new(SendResult)
			ok = s.result(f.Result)
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

func (s *frameScanner) sendMessage(m *SendMessage) bool {
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

func (s *frameScanner) result(r *SendResult) bool {
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
		case "id":
			bit = mID
			r.ID, ok = s.int(64)
		case "timestamp":
			bit = mTimestamp
			r.Timestamp, ok = s.int(64)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

func (s *frameScanner) message(m *Message) bool {
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
		case "id":
			bit = mID
			m.ID, ok = s.int(64)
		case "timestamp":
			bit = mTimestamp
			m.Timestamp, ok = s.int(64)
		case "from":
			bit = mFrom
			var t []byte
			t, ok = s.str()
			m.From = string(t)
		case "fromDevice":
			bit = mFromDevice
			var d uint64
			d, ok = s.uint(32)
			m.FromDevice = uint32(d)
		case "type":
			bit = mType
			var t int64
			t, ok = s.int(32)
			m.Type = int32(t)
		case "content":
			bit = mContent
			m.Content, ok = s.bytes()
		case "expiresAt":
			bit = mExpiresAt
			m.ExpiresAt, ok = s.int(64)
		case "franking":
			bit = mFranking
			m.Franking = new(Franking)
			ok = s.franking(m.Franking)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

func (s *frameScanner) franking(f *Franking) bool {
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
		case "commitment":
			bit = mCommitment
			f.Commitment, ok = s.bytes()
		case "tag":
			bit = mTag
			f.Tag, ok = s.bytes()
		case "keyId":
			bit = mKeyID
			var d uint64
			d, ok = s.uint(32)
			f.KeyID = uint32(d)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// AppendFrame appends f as encoding/json encodes it (json.Marshal).
func AppendFrame(b []byte, f *Frame) ([]byte, error) {
	switch {
	case f.Type == FrameSent && f.Result != nil && f.Msg == nil && f.IDs == nil && f.To == "" && f.Device == 0 &&
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
	case f.Type == FrameMessage && f.Msg != nil && f.ReqID == 0 && f.IDs == nil && f.To == "" && f.Device == 0 &&
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
	case f.Type == FrameSend && f.Send != nil && f.Msg == nil && f.IDs == nil && f.Result == nil && f.Error == nil &&
		plain(f.To) && plainAll(f.Send.Blobs):
		m := f.Send
		b = append(b, `{"type":"send"`...)
		if f.ReqID != 0 {
			b = append(b, `,"reqId":`...)
			b = strconv.AppendUint(b, f.ReqID, 10)
		}
		if f.To != "" {
			b = append(b, `,"to":"`...)
			b = append(b, f.To...)
			b = append(b, '"')
		}
		if f.Device != 0 {
			b = append(b, `,"device":`...)
			b = strconv.AppendUint(b, uint64(f.Device), 10)
		}
		b = append(b, `,"send":{"type":`...)
		b = strconv.AppendInt(b, int64(m.Type), 10)
		b = append(b, `,"content":`...)
		b = appendBytes(b, m.Content)
		if m.ExpiresIn != 0 {
			b = append(b, `,"expiresIn":`...)
			b = strconv.AppendInt(b, m.ExpiresIn, 10)
		}
		if len(m.Commitment) > 0 {
			b = append(b, `,"frankingCommitment":`...)
			b = appendBytes(b, m.Commitment)
		}
		if len(m.Blobs) > 0 {
			b = append(b, `,"blobs":[`...)
			for i, id := range m.Blobs {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = append(b, id...)
				b = append(b, '"')
			}
			b = append(b, ']')
		}
		if len(m.RecipientIdentity) > 0 {
			b = append(b, `,"recipientIdentity":`...)
			b = appendBytes(b, m.RecipientIdentity)
		}
		return append(b, "}}"...), nil
	case f.Type == FrameAck && len(f.IDs) > 0 && f.ReqID == 0 && f.Msg == nil && f.To == "" && f.Device == 0 &&
		f.Send == nil && f.Result == nil && f.Error == nil:
		b = append(b, `{"type":"ack","ids":[`...)
		for i, id := range f.IDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, id, 10)
		}
		return append(b, "]}"...), nil
	}
	j, err := json.Marshal(f)
	return append(b, j...), err
}

func plainAll(ss []string) bool {
	for _, s := range ss {
		if !plain(s) {
			return false
		}
	}
	return true
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

// frameType returns the frame type t, without an allocation for the
// usual ones.
func frameType(t []byte) string {
	for _, k := range []string{FrameSend, FrameAck, FrameSent, FrameMessage} {
		if string(t) == k {
			return k
		}
	}
	return string(t)
}
