package content

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/hushmsg/hush/internal/content/contentpb"
)

func TestRoundTrip(t *testing.T) {
	for _, body := range []string{"", "hi", "ünïcødé 🔒", strings.Repeat("x", 1000)} {
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
		if *got != *m {
			t.Errorf("got %+v, want %+v", got, m)
		}
	}
}

// TestUnknownFields: a later version's fields (here an attachment in field
// 7 and a field 40) are ignored, not refused.
func TestUnknownFields(t *testing.T) {
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(5), Body: "later"}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("attachment pointer"))
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
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version 0": enc(&pb.Content{Id: id}),
		"short id":  enc(&pb.Content{Version: 1, Id: id[:15]}),
		"no id":     enc(&pb.Content{Version: 1}),
		"garbage":   []byte{0xff, 0xff, 0xff},
		"bad utf8":  append(enc(&pb.Content{Version: 1, Id: id}), 0x22, 1, 0xff),
		"huge sent": enc(&pb.Content{Version: 1, Id: id, SentAt: 1 << 60}),
		"truncated": enc(&pb.Content{Version: 1, Id: id, Body: "hello"})[:22],
	} {
		if m, err := Parse(b); !errors.Is(err, ErrMalformed) || m != nil {
			t.Errorf("%s: got %v, %v", name, m, err)
		}
	}
	if _, err := (&Message{Body: "\xff"}).Marshal(); err == nil {
		t.Error("marshalled a non-UTF-8 body")
	}
}

func TestTimerClamp(t *testing.T) {
	for in, want := range map[uint32]time.Duration{0: 0, 1: MinTimer, 5: 5 * time.Second, 86400: MaxTimer, 1 << 31: MaxTimer} {
		b, _ := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize), Timer: in})
		m, err := Parse(b)
		if err != nil || m.Timer != want {
			t.Errorf("timer %d: got %v, %v; want %v", in, m.Timer, err, want)
		}
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
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(1), Body: "seed", Timer: time.Minute}
	b, _ := m.Marshal()
	f.Add(b)
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
		if *m2 != *m {
			t.Fatalf("round trip: %+v then %+v", m, m2)
		}
		if !bytes.Equal(m2.ID[:], m.ID[:]) {
			t.Fatal("id changed")
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
}
