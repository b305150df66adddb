package content

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
)

// Version is the content version this package writes.
const Version = 1

// IDSize is the length of a message id.
const IDSize = 16

// Timer bounds: a disappearing timer is 5 seconds to 24 hours.
const (
	MinTimer = 5 * time.Second
	MaxTimer = 24 * time.Hour
)

// MaxBody is the longest body, in bytes, that a client sends. A received
// body may be longer (up to what fits the server's limit).
const MaxBody = 64 << 10

// padBlock is the padding granularity (Signal pads to 160-byte blocks).
const padBlock = 160

// Field numbers and kinds of contentpb/content.proto.
const (
	fVersion = 1
	fID      = 2
	fSentAt  = 3
	fBody    = 4
	fTimer   = 5
	fKind    = 6
	fPadding = 15

	kindSecret   = 1
	kindOrdinary = 2
)

// ID is a message id, random and chosen by the sender.
type ID [IDSize]byte

// NewID draws a random id.
func NewID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// ParseID reads an id in the form String writes.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, errors.New("content: message id must be 32 hex digits")
	}
	for i := range IDSize {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return id, errors.New("content: message id must be 32 hex digits")
		}
		id[i] = hi<<4 | lo
	}
	return id, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Message is a decoded content message.
type Message struct {
	Version uint32 // Version when made here; what the sender wrote when parsed
	ID      ID
	SentAt  time.Time // millisecond precision
	Body    string
	Timer   time.Duration // whole seconds; 0: none
	// Ordinary is set on messages of ordinary (non-secret) conversations,
	// which this version does not make.
	Ordinary bool
}

// ErrMalformed is the error of every content a version-1 reader cannot use.
var ErrMalformed = errors.New("content: malformed message")

// Marshal encodes m, padded.
func (m *Message) Marshal() ([]byte, error) {
	if !utf8.ValidString(m.Body) {
		return nil, fmt.Errorf("%w: body is not UTF-8", ErrMalformed)
	}
	if m.Timer < 0 || m.Timer%time.Second != 0 {
		return nil, fmt.Errorf("%w: timer must be whole seconds", ErrMalformed)
	}
	kind := uint64(kindSecret)
	if m.Ordinary {
		kind = kindOrdinary
	}
	// Fields in ascending order, proto3 defaults omitted (contentpb/content.proto).
	b := make([]byte, 0, len(m.Body)+2*padBlock)
	b = pbwire.AppendVarint(b, fVersion, Version)
	b = pbwire.AppendBytes(b, fID, m.ID[:])
	b = pbwire.AppendVarint(b, fSentAt, uint64(m.SentAt.UnixMilli()))
	b = pbwire.AppendBytes(b, fBody, []byte(m.Body))
	b = pbwire.AppendVarint(b, fTimer, uint64(m.Timer/time.Second))
	b = pbwire.AppendVarint(b, fKind, kind)
	n, pad := len(b), 0
	if n%padBlock != 0 {
		for pad = 1; (n+1+protowire.SizeVarint(uint64(pad))+pad)%padBlock != 0; pad++ {
		}
		padding := make([]byte, pad)
		rand.Read(padding)
		b = pbwire.AppendBytes(b, fPadding, padding)
	}
	return b, nil
}

// Parse decodes a content message. Unknown fields are ignored. It checks
// what this version relies on: a version from 1 up, a 16-byte id, a UTF-8
// body (which protobuf itself checks) and a timer within bounds; a timer
// outside [MinTimer, MaxTimer] is brought within them rather than refused,
// so that a message is never kept longer than the sender's client meant.
func Parse(b []byte) (*Message, error) {
	var (
		version, sentAt, timer, kind uint64
		id, body                     []byte
	)
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fVersion:
			version = uint64(uint32(v))
		case fID:
			id = bs
			return typ == protowire.BytesType
		case fSentAt:
			sentAt = v
		case fBody:
			body = bs
			return typ == protowire.BytesType && utf8.Valid(bs) // a proto3 string
		case fTimer:
			timer = uint64(uint32(v))
		case fKind:
			kind = v
		default:
			return true // padding, and fields of later versions
		}
		return typ == protowire.VarintType
	})
	if !ok {
		return nil, fmt.Errorf("%w: bad encoding", ErrMalformed)
	}
	if version < 1 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, version)
	}
	if len(id) != IDSize {
		return nil, fmt.Errorf("%w: id has %d bytes", ErrMalformed, len(id))
	}
	if sentAt > 1<<53 {
		return nil, fmt.Errorf("%w: sent time out of range", ErrMalformed)
	}
	m := &Message{
		Version:  uint32(version),
		SentAt:   time.UnixMilli(int64(sentAt)),
		Body:     string(body),
		Ordinary: int32(kind) == kindOrdinary,
	}
	copy(m.ID[:], id)
	if timer > 0 {
		m.Timer = ClampTimer(time.Duration(timer) * time.Second)
	}
	return m, nil
}

// ClampTimer brings a nonzero timer within [MinTimer, MaxTimer].
func ClampTimer(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 0
	case d < MinTimer:
		return MinTimer
	case d > MaxTimer:
		return MaxTimer
	}
	return d.Truncate(time.Second)
}
