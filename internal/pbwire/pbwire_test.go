package pbwire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestAppendMessageLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 70000} {
		body := bytes.Repeat([]byte{7}, n)
		got := AppendMessage([]byte{0xaa}, 3, func(b []byte) []byte { return append(b, body...) })
		want := protowire.AppendBytes(protowire.AppendTag([]byte{0xaa}, 3, protowire.BytesType), body)
		if !bytes.Equal(got, want) {
			t.Fatalf("body of %d bytes encoded wrongly", n)
		}
	}
}

func TestWalk(t *testing.T) {
	var b []byte
	b = AppendVarint(b, 1, 300)
	b = AppendBytes(b, 2, []byte("hi"))
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1<<40)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)
	seen := map[protowire.Number]bool{}
	ok := Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		seen[num] = true
		switch num {
		case 1:
			return v == 300
		case 2:
			return string(bs) == "hi"
		case 3:
			return v == 1<<40
		case 4:
			return bs != nil && len(bs) == 0
		}
		return false
	})
	if !ok || len(seen) != 4 {
		t.Fatalf("walk: %v %v", ok, seen)
	}
	for _, bad := range [][]byte{{0x08}, {0x0a, 0x05, 1}, {0xf8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, {0}} {
		if Walk(bad, func(protowire.Number, protowire.Type, uint64, []byte) bool { return true }) {
			t.Errorf("malformed %x accepted", bad)
		}
	}
}
