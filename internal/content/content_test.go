package content

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/attach"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/hushmsg/hush/internal/content/contentpb"
)

func TestRoundTrip(t *testing.T) {
	for _, body := range []string{"hi", "ünïcødé 🔒", strings.Repeat("x", 1000)} {
		m := &Message{ID: NewID(), SentAt: time.UnixMilli(1764100000123), Body: body, Timer: 30 * time.Second}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(b)%padBlock != 0 {
			t.Errorf("body %d bytes: encoding is %d bytes, not a multiple of %d", len(body), len(b), padBlock)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		m.Version = Version
		if !reflect.DeepEqual(got, m) {
			t.Errorf("got %+v, want %+v", got, m)
		}
	}
}

// TestRoundTripParts: the parts of issue 9, alone and together, with and
// without a body, survive Marshal and Parse, and Ordinary keeps working
// beside them.
func TestRoundTripParts(t *testing.T) {
	ids := []ID{NewID(), NewID(), NewID()}
	many := make([]ID, MaxReceiptIDs)
	for i := range many {
		many[i] = NewID()
	}
	epoch := &HistoryEpoch{ID: 1<<64 - 1}
	copy(epoch.Key[:], bytes.Repeat([]byte{0xa5}, EpochKeySize))
	for name, m := range map[string]*Message{
		"sync copy":         {Body: "to bob", SyncTo: "bob", Ordinary: true},
		"delivered":         {Receipt: &Receipt{Type: Delivered, IDs: ids[:1]}, Ordinary: true},
		"read, most ids":    {Receipt: &Receipt{Type: Read, IDs: many}},
		"unknown type kept": {Receipt: &Receipt{Type: 7, IDs: ids}},
		"read sync copy":    {Receipt: &Receipt{Type: Read, IDs: ids}, SyncTo: "carol_2", Ordinary: true},
		"typing started":    {Typing: &Typing{Started: true}},
		"typing stopped":    {Typing: &Typing{}, Ordinary: true},
		"history epoch":     {Control: &Control{HistoryEpoch: epoch}, Ordinary: true},
		"empty control":     {Control: &Control{}},
		"group message":     {Body: "hi all", Group: &GroupContext{ID: GroupID{9: 1}}, Ordinary: true},
		"sender key":        {SenderKey: &SenderKeyDistribution{Group: GroupID{1}, Distribution: bytes.Repeat([]byte{1}, MaxDistribution)}, Ordinary: true},
		"group control":     {GroupControl: &GroupControl{Group: GroupID{2}, Entries: [][]byte{{1}, {2, 3}}}, Ordinary: true},
		"everything":        {Body: "all", Timer: time.Minute, SyncTo: "bob", Receipt: &Receipt{Type: Read, IDs: ids}, Typing: &Typing{Started: true}, Control: &Control{HistoryEpoch: epoch}},
	} {
		m.ID, m.SentAt = NewID(), time.UnixMilli(1764100000123)
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b)%padBlock != 0 {
			t.Errorf("%s: %d bytes, not padded", name, len(b))
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.Version = Version
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v, want %+v", name, got, m)
		}
	}
}

// TestOldEncodingUnchanged: a message with only the fields from before
// issue 9 is encoded byte for byte as the code before it did (the hex is
// that code's output, padding left out).
func TestOldEncodingUnchanged(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i + 1)
	}
	for _, c := range []struct {
		m   Message
		old string
	}{
		{Message{ID: id, SentAt: time.UnixMilli(1764100000123), Body: "meet at noon", Timer: 30 * time.Second},
			"080112100102030405060708090a0b0c0d0e0f1018fb92b7e4ab33220c6d656574206174206e6f6f6e281e3001"},
		{Message{ID: id, SentAt: time.UnixMilli(1764100000123), Body: "ünïcødé", Ordinary: true},
			"080112100102030405060708090a0b0c0d0e0f1018fb92b7e4ab33220bc3bc6ec3af63c3b864c3a93002"},
	} {
		b, err := c.m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		old, _ := hex.DecodeString(c.old)
		if !bytes.HasPrefix(b, old) || b[len(old)] != fPadding<<3|2 || len(b) != padBlock {
			t.Errorf("encoding changed:\n got %x\nwant %x then padding", b, old)
		}
	}
}

// TestSecretsNotPrinted: an epoch key never appears in a formatted message.
func TestSecretsNotPrinted(t *testing.T) {
	e := &HistoryEpoch{ID: 7}
	copy(e.Key[:], bytes.Repeat([]byte{0xab}, EpochKeySize))
	m := &Message{Control: &Control{HistoryEpoch: e}}
	for _, s := range []string{fmt.Sprint(*e), fmt.Sprintf("%+v %#v %v", *e, *e, e), fmt.Sprintf("%+v", *m.Control)} {
		if strings.Contains(s, "abab") || strings.Contains(s, "171") {
			t.Errorf("key printed: %s", s)
		}
	}
}

// TestUnknownFields: a later version's fields (here an edit in the
// reserved field 10 and a field 40) are ignored, not refused.
func TestUnknownFields(t *testing.T) {
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(5), Body: "later"}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 10, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("an edit"))
	b = protowire.AppendTag(b, 40, protowire.VarintType)
	b = protowire.AppendVarint(b, 99)
	b = protowire.AppendTag(b, 1, protowire.VarintType) // version 2 (last one wins)
	b = protowire.AppendVarint(b, 2)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "later" || got.Version != 2 {
		t.Errorf("got %+v", got)
	}
}

func TestBad(t *testing.T) {
	enc := func(c *pb.Content) []byte {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := make([]byte, IDSize)
	ids := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = id
		}
		return out
	}
	key := make([]byte, EpochKeySize)
	// withField appends a raw field to a valid message with a body.
	withField := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		b := enc(&pb.Content{Version: 1, Id: id, Body: "x"})
		b = protowire.AppendTag(b, num, typ)
		if typ == protowire.VarintType {
			return protowire.AppendVarint(b, 1)
		}
		return protowire.AppendBytes(b, v)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version 0": enc(&pb.Content{Id: id, Body: "x"}),
		"short id":  enc(&pb.Content{Version: 1, Id: id[:15], Body: "x"}),
		"no id":     enc(&pb.Content{Version: 1, Body: "x"}),
		"garbage":   []byte{0xff, 0xff, 0xff},
		"bad utf8":  append(enc(&pb.Content{Version: 1, Id: id}), 0x22, 1, 0xff),
		"huge sent": enc(&pb.Content{Version: 1, Id: id, SentAt: 1 << 60, Body: "x"}),
		"truncated": enc(&pb.Content{Version: 1, Id: id, Body: "hello"})[:22],
		// Issue 9.
		"nothing":              enc(&pb.Content{Version: 1, Id: id, Timer: 30, Kind: pb.Kind_KIND_ORDINARY}),
		"sync only":            enc(&pb.Content{Version: 1, Id: id, SyncTo: "bob"}),
		"sync to bad name":     enc(&pb.Content{Version: 1, Id: id, Body: "x", SyncTo: "Bob"}),
		"sync to control char": enc(&pb.Content{Version: 1, Id: id, Body: "x", SyncTo: "bob\n"}),
		"sync to long":         enc(&pb.Content{Version: 1, Id: id, Body: "x", SyncTo: strings.Repeat("b", 33)}),
		"sync to bad utf8":     withField(fSyncTo, protowire.BytesType, []byte{0xff}),
		"receipt no ids":       enc(&pb.Content{Version: 1, Id: id, Receipt: &pb.Receipt{Type: pb.ReceiptType_RECEIPT_TYPE_READ}}),
		"receipt type 0":       enc(&pb.Content{Version: 1, Id: id, Receipt: &pb.Receipt{Ids: ids(1)}}),
		"receipt type <0":      enc(&pb.Content{Version: 1, Id: id, Receipt: &pb.Receipt{Type: -1, Ids: ids(1)}}),
		"receipt short id":     enc(&pb.Content{Version: 1, Id: id, Receipt: &pb.Receipt{Type: 1, Ids: [][]byte{id[:15]}}}),
		"receipt too many":     enc(&pb.Content{Version: 1, Id: id, Receipt: &pb.Receipt{Type: 1, Ids: ids(MaxReceiptIDs + 1)}}),
		"receipt as varint":    withField(fReceipt, protowire.VarintType, nil),
		"receipt garbage":      withField(fReceipt, protowire.BytesType, []byte{0xff}),
		"typing as varint":     withField(fTyping, protowire.VarintType, nil),
		"typing started bytes": withField(fTyping, protowire.BytesType, []byte{0x0a, 0}),
		"control as varint":    withField(fControl, protowire.VarintType, nil),
		"epoch id 0":           enc(&pb.Content{Version: 1, Id: id, Control: &pb.Control{HistoryEpoch: &pb.HistoryEpoch{Key: key}}}),
		"epoch short key":      enc(&pb.Content{Version: 1, Id: id, Control: &pb.Control{HistoryEpoch: &pb.HistoryEpoch{Id: 1, Key: key[:31]}}}),
		"epoch no key":         enc(&pb.Content{Version: 1, Id: id, Control: &pb.Control{HistoryEpoch: &pb.HistoryEpoch{Id: 1}}}),
	} {
		if m, err := Parse(b); !errors.Is(err, ErrMalformed) || m != nil {
			t.Errorf("%s: got %v, %v", name, m, err)
		}
	}
	for name, m := range map[string]*Message{
		"non-UTF-8 body":   {Body: "\xff"},
		"nothing":          {Timer: time.Minute, Ordinary: true},
		"bad sync to":      {Body: "x", SyncTo: "a b"},
		"receipt type 0":   {Receipt: &Receipt{IDs: []ID{{}}}},
		"receipt type big": {Receipt: &Receipt{Type: 1 << 31, IDs: []ID{{}}}},
		"receipt no ids":   {Receipt: &Receipt{Type: Read}},
		"receipt too many": {Receipt: &Receipt{Type: Read, IDs: make([]ID, MaxReceiptIDs+1)}},
		"epoch id 0":       {Control: &Control{HistoryEpoch: &HistoryEpoch{}}},
	} {
		if b, err := m.Marshal(); !errors.Is(err, ErrMalformed) || b != nil {
			t.Errorf("Marshal %s: got %x, %v", name, b, err)
		}
	}
}

func TestTimerClamp(t *testing.T) {
	for in, want := range map[uint32]time.Duration{0: 0, 1: MinTimer, 5: 5 * time.Second, 86400: MaxTimer, 1 << 31: MaxTimer} {
		b, _ := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize), Body: "x", Timer: in})
		m, err := Parse(b)
		if err != nil || m.Timer != want {
			t.Errorf("timer %d: got %v, %v; want %v", in, m.Timer, err, want)
		}
	}
}

// TestFrankingKey: a franking key is 32 bytes or absent; any other
// length is refused on both sides, and the padding still hides lengths.
func TestFrankingKey(t *testing.T) {
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(1), Body: "hi", FrankingKey: bytes.Repeat([]byte{1}, FrankingKeySize)}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%padBlock != 0 {
		t.Errorf("a franked message is %d bytes, not a multiple of %d", len(b), padBlock)
	}
	got, err := Parse(b)
	if err != nil || !bytes.Equal(got.FrankingKey, m.FrankingKey) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	unfranked := &Message{ID: NewID(), Body: "hi"}
	if b, _ := unfranked.Marshal(); bytes.Contains(b, []byte{0x42, 0x20}) {
		if got, _ := Parse(b); got.FrankingKey != nil {
			t.Fatal("an unfranked message parses with a franking key")
		}
	}
	for _, n := range []int{1, 31, 33} {
		bad := &Message{ID: NewID(), Body: "hi", FrankingKey: make([]byte, n)}
		if _, err := bad.Marshal(); !errors.Is(err, ErrMalformed) {
			t.Errorf("a %d-byte franking key was encoded", n)
		}
		enc := append([]byte{0x08, 0x01, 0x12, 0x10}, make([]byte, IDSize)...)
		enc = append(enc, 0x22, 0x02, 'h', 'i', 0x42, byte(n))
		enc = append(enc, make([]byte, n)...)
		if _, err := Parse(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("a %d-byte franking key parsed", n)
		}
	}
	empty := append([]byte{0x08, 0x01, 0x12, 0x10}, make([]byte, IDSize)...)
	empty = append(empty, 0x22, 0x02, 'h', 'i', 0x42, 0x00)
	if _, err := Parse(empty); !errors.Is(err, ErrMalformed) {
		t.Error("an empty franking key parsed")
	}
	// As a varint it is the wrong wire type.
	wrong := append([]byte{0x08, 0x01, 0x12, 0x10}, make([]byte, IDSize)...)
	wrong = append(wrong, 0x22, 0x02, 'h', 'i', 0x40, 0x01)
	if _, err := Parse(wrong); !errors.Is(err, ErrMalformed) {
		t.Error("a varint franking key parsed")
	}
}

func TestID(t *testing.T) {
	id := NewID()
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatal(got, err)
	}
	for _, s := range []string{"", "zz", strings.Repeat("g", 32), id.String() + "0"} {
		if _, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) succeeded", s)
		}
	}
}

// FuzzParse: Parse never panics, refuses with ErrMalformed only, and what
// it accepts re-encodes to a message that parses to the same thing.
func FuzzParse(f *testing.F) {
	epoch := &HistoryEpoch{ID: 3}
	for _, m := range []*Message{
		{Body: "seed", Timer: time.Minute},
		{Body: "seed", Ordinary: true, SyncTo: "bob"},
		{Receipt: &Receipt{Type: Read, IDs: []ID{NewID(), NewID()}}, SyncTo: "bob"},
		{Typing: &Typing{Started: true}},
		{Typing: &Typing{}},
		{Control: &Control{HistoryEpoch: epoch}, Ordinary: true},
		{Attachments: []Attachment{testAttachment("../../etc/passwd"), testAttachment("CON.txt")}, Ordinary: true},
		{Body: "a photo", Attachments: []Attachment{testAttachment("photo.jpg")}, Timer: time.Minute},
		{Body: "v2", Attachments: []Attachment{{Name: "v2.bin", Size: 9, Key: attach.NewKey(), BlobID: "AAAAAAAAAAAAAAAAAAAAAA", Scheme: attach.V2}}},
		{Body: "to the group", Ordinary: true, Group: &GroupContext{ID: GroupID{1, 2}}},
		{SenderKey: &SenderKeyDistribution{Group: GroupID{3}, Distribution: bytes.Repeat([]byte{0x33}, 140)}, Ordinary: true},
		{GroupControl: &GroupControl{Group: GroupID{4}, Entries: [][]byte{{1, 2, 3}, bytes.Repeat([]byte{7}, 300)}}, Ordinary: true},
		{Body: "franked", FrankingKey: bytes.Repeat([]byte{7}, FrankingKeySize)},
	} {
		m.ID, m.SentAt = NewID(), time.UnixMilli(1)
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01, 0x12, 0x10})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with %v", err, m)
			}
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("re-encoding a parsed message: %v", err)
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		m2.Version = m.Version
		if !reflect.DeepEqual(m2, m) {
			t.Fatalf("round trip: %+v then %+v", m, m2)
		}
	})
}

// TestMatchesProtobuf: the hand encoding is read by the generated code of
// content.proto as what was meant, and the other way round.
func TestMatchesProtobuf(t *testing.T) {
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(1764100000123), Body: "ünïcødé", Timer: 30 * time.Second, Ordinary: true}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var c pb.Content
	if err := proto.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Version != Version || !bytes.Equal(c.Id, m.ID[:]) || c.SentAt != 1764100000123 || c.Body != m.Body ||
		c.Timer != 30 || c.Kind != pb.Kind_KIND_ORDINARY || len(c.Padding) == 0 {
		t.Fatalf("protobuf reads %v", &c)
	}
	ref, _ := proto.Marshal(&pb.Content{Version: 1, Id: m.ID[:], SentAt: 42, Body: "x", Timer: 60, Kind: pb.Kind_KIND_SECRET})
	got, err := Parse(ref)
	if err != nil || got.Body != "x" || got.SentAt.UnixMilli() != 42 || got.Timer != time.Minute || got.Ordinary || got.ID != m.ID {
		t.Fatalf("we read protobuf's encoding as %+v, %v", got, err)
	}

	// The franking key (issue 11), both ways.
	fk := bytes.Repeat([]byte{0xf7}, FrankingKeySize)
	m = &Message{ID: NewID(), Body: "x", FrankingKey: fk}
	if b, err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	if err := proto.Unmarshal(b, &c); err != nil || !bytes.Equal(c.FrankingKey, fk) {
		t.Fatalf("protobuf reads %v, %v", &c, err)
	}
	ref, _ = proto.Marshal(&pb.Content{Version: 1, Id: m.ID[:], Body: "x", FrankingKey: fk})
	if got, err = Parse(ref); err != nil || !bytes.Equal(got.FrankingKey, fk) {
		t.Fatalf("we read protobuf's encoding as %+v, %v", got, err)
	}

	// The parts of issue 9, both ways.
	epoch := &HistoryEpoch{ID: 1 << 63}
	copy(epoch.Key[:], bytes.Repeat([]byte{9}, EpochKeySize))
	r := &Receipt{Type: Read, IDs: []ID{NewID(), NewID()}}
	m = &Message{ID: NewID(), Receipt: r, SyncTo: "bob", Typing: &Typing{Started: true}, Control: &Control{HistoryEpoch: epoch}}
	if b, err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	if err := proto.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Receipt.GetType() != pb.ReceiptType_RECEIPT_TYPE_READ || len(c.Receipt.GetIds()) != 2 || !bytes.Equal(c.Receipt.Ids[1], r.IDs[1][:]) ||
		c.SyncTo != "bob" || !c.Typing.GetStarted() || c.Control.GetHistoryEpoch().GetId() != 1<<63 ||
		!bytes.Equal(c.Control.GetHistoryEpoch().GetKey(), epoch.Key[:]) || c.Body != "" {
		t.Fatalf("protobuf reads %v", &c)
	}
	ref, _ = proto.Marshal(&pb.Content{Version: 1, Id: m.ID[:], Kind: pb.Kind_KIND_ORDINARY, SyncTo: "bob",
		Receipt: &pb.Receipt{Type: pb.ReceiptType_RECEIPT_TYPE_DELIVERED, Ids: [][]byte{r.IDs[0][:]}},
		Typing:  &pb.Typing{}, Control: &pb.Control{HistoryEpoch: &pb.HistoryEpoch{Id: 5, Key: epoch.Key[:]}}})
	want := &Message{Version: 1, ID: m.ID, SentAt: time.UnixMilli(0), Ordinary: true, SyncTo: "bob",
		Receipt: &Receipt{Type: Delivered, IDs: r.IDs[:1]}, Typing: &Typing{}, Control: &Control{HistoryEpoch: &HistoryEpoch{ID: 5, Key: epoch.Key}}}
	if got, err = Parse(ref); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("we read protobuf's encoding as %+v, %v", got, err)
	}
}

// TestGroupParts: the group parts of issue 10 read by the generated code of
// content.proto, and the bad ones refused.
func TestGroupParts(t *testing.T) {
	g := GroupID{0: 0xaa, 15: 0x55}
	m := &Message{ID: NewID(), Body: "hi", Ordinary: true, Group: &GroupContext{ID: g},
		SenderKey:    &SenderKeyDistribution{Group: g, Distribution: []byte{0x33, 1, 2}},
		GroupControl: &GroupControl{Group: g, Entries: [][]byte{{1}, {2}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var c pb.Content
	if err := proto.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Group.GetId(), g[:]) || !bytes.Equal(c.SenderKey.GetGroupId(), g[:]) || !bytes.Equal(c.SenderKey.GetDistribution(), []byte{0x33, 1, 2}) ||
		!bytes.Equal(c.GroupControl.GetGroupId(), g[:]) || len(c.GroupControl.GetEntries()) != 2 {
		t.Fatalf("protobuf reads %v", &c)
	}
	if s := fmt.Sprint(m.SenderKey, *m.SenderKey); strings.Contains(s, "3301") || strings.Contains(s, "[51 1 2]") {
		t.Errorf("a distribution printed: %s", s)
	}
	for name, pbc := range map[string]*pb.Content{
		"short group id":      {Group: &pb.GroupContext{Id: g[:15]}, Body: "x"},
		"group id missing":    {Group: &pb.GroupContext{}, Body: "x"},
		"group without body":  {Group: &pb.GroupContext{Id: g[:]}},
		"empty distribution":  {SenderKey: &pb.SenderKeyDistribution{GroupId: g[:]}},
		"huge distribution":   {SenderKey: &pb.SenderKeyDistribution{GroupId: g[:], Distribution: make([]byte, MaxDistribution+1)}},
		"distribution no id":  {SenderKey: &pb.SenderKeyDistribution{Distribution: []byte{1}}},
		"control no entries":  {GroupControl: &pb.GroupControl{GroupId: g[:]}},
		"control empty entry": {GroupControl: &pb.GroupControl{GroupId: g[:], Entries: [][]byte{{}}}},
		"control no group":    {GroupControl: &pb.GroupControl{Entries: [][]byte{{1}}}},
		"too many entries":    {GroupControl: &pb.GroupControl{GroupId: g[:], Entries: slices.Repeat([][]byte{{1}}, MaxGroupEntries+1)}},
	} {
		pbc.Version, pbc.Id = 1, g[:]
		b, _ := proto.Marshal(pbc)
		if got, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: parsed as %+v, %v", name, got, err)
		}
	}
}
