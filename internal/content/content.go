package content

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/api"
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
	fVersion  = 1
	fID       = 2
	fSentAt   = 3
	fBody     = 4
	fTimer    = 5
	fKind     = 6
	fAttach   = 7
	fFranking = 8
	fReceipt  = 9
	fSyncTo   = 11
	fTyping   = 12
	fControl  = 13
	fGroup    = 14
	fPadding  = 15
	fSKDM     = 16
	fGroupCt  = 17

	kindSecret   = 1
	kindOrdinary = 2

	fReceiptType         = 1 // Receipt
	fReceiptIDs          = 2
	fTypingStarted       = 1 // Typing
	fControlHistoryEpoch = 1 // Control
	fEpochID             = 1 // HistoryEpoch
	fEpochKey            = 2

	fAttName        = 1 // Attachment
	fAttSize        = 2
	fAttContentType = 3
	fAttKey         = 4
	fAttDigest      = 5
	fAttSHA256      = 6
	fAttBlobID      = 7
	fAttScheme      = 8

	fGroupID          = 1 // GroupContext, SenderKeyDistribution, GroupControl
	fSKDMDistribution = 2 // SenderKeyDistribution
	fGroupCtEntries   = 2 // GroupControl
)

// Limits of the group parts (docs/groups.md).
const (
	// GroupIDSize is the length of a group id.
	GroupIDSize = 16
	// MaxDistribution is the longest sender key distribution message
	// (libsignal's is about 100 bytes).
	MaxDistribution = 1024
	// MaxGroupEntries is the most log entries one group control carries.
	MaxGroupEntries = 4096
)

// MaxReceiptIDs is the most message ids one receipt holds; a client with
// more to acknowledge sends several receipts.
const MaxReceiptIDs = 500

// EpochKeySize is the length of a history epoch key.
const EpochKeySize = 32

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

// Message is a decoded content message. It carries at least one of Body,
// Attachments, Receipt, Typing and Control; a message with none is
// malformed.
type Message struct {
	Version uint32 // Version when made here; what the sender wrote when parsed
	ID      ID
	SentAt  time.Time // millisecond precision
	Body    string
	Timer   time.Duration // whole seconds; 0: none
	// Ordinary is set on messages of ordinary (non-secret) conversations
	// (docs/multidevice.md).
	Ordinary bool
	// SyncTo, when set, says that this is a copy, for the sender's own
	// other devices, of a message the sender sent to the account SyncTo
	// (a valid username; docs/multidevice.md section 1). A receiver
	// accepts it only from a device of its own account.
	SyncTo string
	// Receipt acknowledges messages (section 5).
	Receipt *Receipt
	// Typing says that the sender started or stopped typing (section 5).
	Typing *Typing
	// Control is for the sender's own devices only (section 3); a receiver
	// refuses it from anyone else.
	Control *Control
	// Attachments are the files sent with the message (issue 11), at most
	// MaxAttachments.
	Attachments []Attachment

	// Group names the group of a group message (docs/groups.md).
	Group *GroupContext
	// SenderKey gives the sender device's sender key for a group.
	SenderKey *SenderKeyDistribution
	// GroupControl carries signed changes of a group's membership.
	GroupControl *GroupControl
	// FrankingKey is the message's franking key (docs/franking.md):
	// FrankingKeySize fresh random bytes, or nil for a message that is not
	// franked. It is secret until the recipient reports the message.
	FrankingKey []byte
}

// GroupID is a group's id: the first 16 bytes of the hash of its create
// entry (docs/groups.md).
type GroupID [GroupIDSize]byte

func (g GroupID) String() string { return fmt.Sprintf("%x", g[:]) }

// GroupContext names the group a message belongs to.
type GroupContext struct {
	ID GroupID
}

// SenderKeyDistribution is a sender key for the group Group: a
// libsignal SenderKeyDistributionMessage, 1 to MaxDistribution bytes,
// parsed by package senderkey. It holds a chain key: String leaves it out.
type SenderKeyDistribution struct {
	Group        GroupID
	Distribution []byte
}

func (d SenderKeyDistribution) String() string {
	return fmt.Sprintf("sender-key-distribution(%v, redacted)", d.Group)
}
func (d SenderKeyDistribution) GoString() string { return d.String() }

// GroupControl carries 1 to MaxGroupEntries entries of the log of the
// group Group, each a GroupEntry encoding that the client checks (package
// grouplog); this package checks only their count and that none is empty.
type GroupControl struct {
	Group   GroupID
	Entries [][]byte
}

// FrankingKeySize is the length of a franking key (franking.KeySize).
const FrankingKeySize = 32

// ReceiptType says what a [Receipt] acknowledges.
type ReceiptType uint32

// Receipt types (docs/multidevice.md section 5). [Parse] keeps a nonzero
// type this version does not know ([ReceiptType.Known] is false); the
// receiver ignores such a receipt.
const (
	Delivered ReceiptType = 1 // the messages were stored on a device
	Read      ReceiptType = 2 // the messages were shown
)

// Known reports whether this version knows t.
func (t ReceiptType) Known() bool { return t == Delivered || t == Read }

func (t ReceiptType) String() string {
	switch t {
	case Delivered:
		return "delivered"
	case Read:
		return "read"
	}
	return fmt.Sprintf("receipt-type(%d)", uint32(t))
}

// Receipt acknowledges 1 to MaxReceiptIDs messages by their ids.
type Receipt struct {
	Type ReceiptType // nonzero, at most 2^31-1 (a protobuf enum)
	IDs  []ID
}

// Typing says that the sender started (Started) or stopped typing.
type Typing struct {
	Started bool
}

// Control is a message for the sender's own devices. Parts that a later
// version adds are ignored, so a Control may have no part set.
type Control struct {
	// HistoryEpoch is a new history epoch of the account
	// (docs/multidevice.md section 3).
	HistoryEpoch *HistoryEpoch
}

// HistoryEpoch is a history epoch: a nonzero id and its key. The key is
// secret: String and GoString leave it out.
type HistoryEpoch struct {
	ID  uint64
	Key [EpochKeySize]byte
}

func (e HistoryEpoch) String() string   { return fmt.Sprintf("history-epoch(%d, key redacted)", e.ID) }
func (e HistoryEpoch) GoString() string { return e.String() }

// ErrMalformed is the error of every content a version-1 reader cannot use.
var ErrMalformed = errors.New("content: malformed message")

// Marshal encodes m, padded. Fields older than issue 9 are encoded as
// before, byte for byte; the new ones follow them.
func (m *Message) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	kind := uint64(kindSecret)
	if m.Ordinary {
		kind = kindOrdinary
	}
	// Fields in ascending order, proto3 defaults omitted (contentpb/content.proto).
	size := len(m.Body) + len(m.SyncTo) + len(m.FrankingKey) + 2*padBlock
	if m.Receipt != nil {
		size += len(m.Receipt.IDs) * (2 + IDSize)
	}
	for _, a := range m.Attachments {
		size += len(a.Name) + len(a.ContentType) + 200
	}
	if m.SenderKey != nil {
		size += len(m.SenderKey.Distribution) + 32
	}
	if m.GroupControl != nil {
		for _, e := range m.GroupControl.Entries {
			size += len(e) + 4
		}
	}
	b := make([]byte, 0, size)
	b = pbwire.AppendVarint(b, fVersion, Version)
	b = pbwire.AppendBytes(b, fID, m.ID[:])
	b = pbwire.AppendVarint(b, fSentAt, uint64(m.SentAt.UnixMilli()))
	b = pbwire.AppendBytes(b, fBody, []byte(m.Body))
	b = pbwire.AppendVarint(b, fTimer, uint64(m.Timer/time.Second))
	b = pbwire.AppendVarint(b, fKind, kind)
	for i := range m.Attachments {
		b = m.Attachments[i].append(b)
	}
	b = pbwire.AppendBytes(b, fFranking, m.FrankingKey)
	if r := m.Receipt; r != nil {
		b = pbwire.AppendMessage(b, fReceipt, func(b []byte) []byte {
			b = pbwire.AppendVarint(b, fReceiptType, uint64(r.Type))
			for _, id := range r.IDs {
				b = protowire.AppendTag(b, fReceiptIDs, protowire.BytesType)
				b = protowire.AppendBytes(b, id[:])
			}
			return b
		})
	}
	b = pbwire.AppendBytes(b, fSyncTo, []byte(m.SyncTo))
	if t := m.Typing; t != nil {
		b = pbwire.AppendMessage(b, fTyping, func(b []byte) []byte {
			if t.Started {
				b = pbwire.AppendVarint(b, fTypingStarted, 1)
			}
			return b
		})
	}
	if c := m.Control; c != nil {
		b = pbwire.AppendMessage(b, fControl, func(b []byte) []byte {
			if e := c.HistoryEpoch; e != nil {
				b = pbwire.AppendMessage(b, fControlHistoryEpoch, func(b []byte) []byte {
					b = pbwire.AppendVarint(b, fEpochID, e.ID)
					return pbwire.AppendBytes(b, fEpochKey, e.Key[:])
				})
			}
			return b
		})
	}
	if g := m.Group; g != nil {
		b = pbwire.AppendMessage(b, fGroup, func(b []byte) []byte { return pbwire.AppendBytes(b, fGroupID, g.ID[:]) })
	}
	if d := m.SenderKey; d != nil {
		b = pbwire.AppendMessage(b, fSKDM, func(b []byte) []byte {
			b = pbwire.AppendBytes(b, fGroupID, d.Group[:])
			return pbwire.AppendBytes(b, fSKDMDistribution, d.Distribution)
		})
	}
	if g := m.GroupControl; g != nil {
		b = pbwire.AppendMessage(b, fGroupCt, func(b []byte) []byte {
			b = pbwire.AppendBytes(b, fGroupID, g.Group[:])
			for _, e := range g.Entries {
				b = pbwire.AppendBytes(b, fGroupCtEntries, e)
			}
			return b
		})
	}
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

// check refuses what Marshal must not write and Parse refuses.
func (m *Message) check() error {
	if !utf8.ValidString(m.Body) {
		return fmt.Errorf("%w: body is not UTF-8", ErrMalformed)
	}
	if m.Timer < 0 || m.Timer%time.Second != 0 {
		return fmt.Errorf("%w: timer must be whole seconds", ErrMalformed)
	}
	if m.FrankingKey != nil && len(m.FrankingKey) != FrankingKeySize {
		return fmt.Errorf("%w: franking key of %d bytes", ErrMalformed, len(m.FrankingKey))
	}
	if m.SyncTo != "" && !api.ValidUsername(m.SyncTo) {
		return fmt.Errorf("%w: syncTo is not a username", ErrMalformed)
	}
	if r := m.Receipt; r != nil {
		if r.Type == 0 || r.Type > math.MaxInt32 {
			return fmt.Errorf("%w: receipt type %d", ErrMalformed, uint32(r.Type))
		}
		if len(r.IDs) == 0 || len(r.IDs) > MaxReceiptIDs {
			return fmt.Errorf("%w: receipt of %d ids (1 to %d)", ErrMalformed, len(r.IDs), MaxReceiptIDs)
		}
	}
	if m.Control != nil && m.Control.HistoryEpoch != nil && m.Control.HistoryEpoch.ID == 0 {
		return fmt.Errorf("%w: history epoch id 0", ErrMalformed)
	}
	if len(m.Attachments) > MaxAttachments {
		return fmt.Errorf("%w: %d attachments (at most %d)", ErrMalformed, len(m.Attachments), MaxAttachments)
	}
	for i := range m.Attachments {
		if err := m.Attachments[i].check(); err != nil {
			return err
		}
	}
	if d := m.SenderKey; d != nil && (len(d.Distribution) == 0 || len(d.Distribution) > MaxDistribution) {
		return fmt.Errorf("%w: sender key distribution of %d bytes", ErrMalformed, len(d.Distribution))
	}
	if g := m.GroupControl; g != nil {
		if len(g.Entries) == 0 || len(g.Entries) > MaxGroupEntries {
			return fmt.Errorf("%w: group control of %d entries (1 to %d)", ErrMalformed, len(g.Entries), MaxGroupEntries)
		}
		for _, e := range g.Entries {
			if len(e) == 0 {
				return fmt.Errorf("%w: empty group entry", ErrMalformed)
			}
		}
	}
	if m.Group != nil && m.Body == "" {
		return fmt.Errorf("%w: a group message without a body", ErrMalformed)
	}
	if m.Body == "" && len(m.Attachments) == 0 && m.Receipt == nil && m.Typing == nil && m.Control == nil && m.SenderKey == nil && m.GroupControl == nil {
		return fmt.Errorf("%w: no body, attachment, receipt, typing, control, sender key or group control", ErrMalformed)
	}
	return nil
}

// Parse decodes a content message. Unknown fields are ignored. It checks
// what this version relies on: a version from 1 up, a 16-byte id, a UTF-8
// body (which protobuf itself checks) and a timer within bounds; a timer
// outside [MinTimer, MaxTimer] is brought within them rather than refused,
// so that a message is never kept longer than the sender's client meant.
// Since issue 9 it also checks that the message carries a body, a receipt,
// typing or control (or, since issue 11, an attachment); that syncTo, if set, is a valid username; that a
// receipt has a nonzero type and 1 to MaxReceiptIDs ids of 16 bytes; and
// that a history epoch has a nonzero id and a 32-byte key. Since issue 11
// it checks each attachment as [Attachment] says, and that there are at
// most MaxAttachments. A field that appears twice keeps its last value
// (submessages are not merged); attachments, a repeated field, add up.
func Parse(b []byte) (*Message, error) {
	var (
		version, sentAt, timer, kind uint64
		id, body, syncTo             []byte
		receipt, typing, control     []byte
		attachments                  [][]byte
		group, skdm, groupCt         []byte
		frankingKey                  []byte
		franked                      bool
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
		case fAttach:
			if len(attachments) == MaxAttachments {
				return false
			}
			attachments = append(attachments, bs)
			return typ == protowire.BytesType
		case fFranking:
			frankingKey, franked = bs, true
			return typ == protowire.BytesType
		case fReceipt:
			receipt = bs
			return typ == protowire.BytesType
		case fSyncTo:
			syncTo = bs
			return typ == protowire.BytesType
		case fTyping:
			typing = bs
			return typ == protowire.BytesType
		case fControl:
			control = bs
			return typ == protowire.BytesType
		case fGroup:
			group = bs
			return typ == protowire.BytesType
		case fSKDM:
			skdm = bs
			return typ == protowire.BytesType
		case fGroupCt:
			groupCt = bs
			return typ == protowire.BytesType
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
		SyncTo:   string(syncTo),
	}
	if franked {
		// An empty field is what Marshal never writes (proto3 leaves it
		// out): refused, as any key that is not FrankingKeySize bytes.
		if len(frankingKey) != FrankingKeySize {
			return nil, fmt.Errorf("%w: franking key of %d bytes", ErrMalformed, len(frankingKey))
		}
		m.FrankingKey = append([]byte(nil), frankingKey...)
	}
	copy(m.ID[:], id)
	if timer > 0 {
		m.Timer = ClampTimer(time.Duration(timer) * time.Second)
	}
	var err error
	if len(attachments) > 0 {
		m.Attachments = make([]Attachment, len(attachments))
		for i, b := range attachments {
			if err := m.Attachments[i].parse(b); err != nil {
				return nil, err
			}
		}
	}
	if receipt != nil {
		if m.Receipt, err = parseReceipt(receipt); err != nil {
			return nil, err
		}
	}
	if typing != nil {
		if m.Typing, err = parseTyping(typing); err != nil {
			return nil, err
		}
	}
	if control != nil {
		if m.Control, err = parseControl(control); err != nil {
			return nil, err
		}
	}
	if group != nil {
		if m.Group, err = parseGroupContext(group); err != nil {
			return nil, err
		}
	}
	if skdm != nil {
		if m.SenderKey, err = parseSenderKey(skdm); err != nil {
			return nil, err
		}
	}
	if groupCt != nil {
		if m.GroupControl, err = parseGroupControl(groupCt); err != nil {
			return nil, err
		}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseReceipt(b []byte) (*Receipt, error) {
	r := new(Receipt)
	var bad bool
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fReceiptType:
			// An enum is an int32; check refuses what does not fit,
			// negative values (sign-extended varints) included.
			r.Type = ReceiptType(min(v, math.MaxUint32))
			return typ == protowire.VarintType
		case fReceiptIDs:
			if len(bs) != IDSize || len(r.IDs) == MaxReceiptIDs {
				bad = true
				return false
			}
			r.IDs = append(r.IDs, ID(bs))
			return typ == protowire.BytesType
		}
		return true
	})
	if !ok || bad {
		return nil, fmt.Errorf("%w: bad receipt", ErrMalformed)
	}
	return r, nil
}

func parseTyping(b []byte) (*Typing, error) {
	t := new(Typing)
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		if num == fTypingStarted {
			t.Started = v != 0
			return typ == protowire.VarintType
		}
		return true
	})
	if !ok {
		return nil, fmt.Errorf("%w: bad typing", ErrMalformed)
	}
	return t, nil
}

func parseControl(b []byte) (*Control, error) {
	c := new(Control)
	var epoch []byte
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		if num == fControlHistoryEpoch {
			epoch = bs
			return typ == protowire.BytesType
		}
		return true
	})
	if !ok {
		return nil, fmt.Errorf("%w: bad control", ErrMalformed)
	}
	if epoch != nil {
		e := new(HistoryEpoch)
		var key []byte
		ok := pbwire.Walk(epoch, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
			switch num {
			case fEpochID:
				e.ID = v
				return typ == protowire.VarintType
			case fEpochKey:
				key = bs
				return typ == protowire.BytesType
			}
			return true
		})
		if !ok || e.ID == 0 || len(key) != EpochKeySize {
			return nil, fmt.Errorf("%w: bad history epoch", ErrMalformed)
		}
		copy(e.Key[:], key)
		c.HistoryEpoch = e
	}
	return c, nil
}

// groupID reads a 16-byte group id field.
func groupID(dst *GroupID, typ protowire.Type, bs []byte) bool {
	if typ != protowire.BytesType || len(bs) != GroupIDSize {
		return false
	}
	copy(dst[:], bs)
	return true
}

func parseGroupContext(b []byte) (*GroupContext, error) {
	g := new(GroupContext)
	var seen bool
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		if num == fGroupID {
			seen = true
			return groupID(&g.ID, typ, bs)
		}
		return true
	})
	if !ok || !seen {
		return nil, fmt.Errorf("%w: bad group context", ErrMalformed)
	}
	return g, nil
}

func parseSenderKey(b []byte) (*SenderKeyDistribution, error) {
	d := new(SenderKeyDistribution)
	var seen bool
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fGroupID:
			seen = true
			return groupID(&d.Group, typ, bs)
		case fSKDMDistribution:
			d.Distribution = append([]byte(nil), bs...)
			return typ == protowire.BytesType && len(bs) <= MaxDistribution
		}
		return true
	})
	if !ok || !seen || len(d.Distribution) == 0 {
		return nil, fmt.Errorf("%w: bad sender key distribution", ErrMalformed)
	}
	return d, nil
}

func parseGroupControl(b []byte) (*GroupControl, error) {
	g := new(GroupControl)
	var seen bool
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fGroupID:
			seen = true
			return groupID(&g.Group, typ, bs)
		case fGroupCtEntries:
			if typ != protowire.BytesType || len(bs) == 0 || len(g.Entries) == MaxGroupEntries {
				return false
			}
			g.Entries = append(g.Entries, append([]byte(nil), bs...))
		}
		return true
	})
	if !ok || !seen || len(g.Entries) == 0 {
		return nil, fmt.Errorf("%w: bad group control", ErrMalformed)
	}
	return g, nil
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
