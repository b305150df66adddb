package cluster

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// TestWakeMessages: a wake-up carries a device's messages, and only
// its own, and only when every one has Prev and they are small; what
// decodes is what was committed; damaged bytes give an error.
func TestWakeMessages(t *testing.T) {
	a, b := store.DeviceRef{Account: 7, Device: 1}, store.DeviceRef{Account: 8, Device: 3}
	fr := &store.Franking{Commitment: bytes.Repeat([]byte{1}, 32), Tag: bytes.Repeat([]byte{2}, 32), KeyID: 9}
	msgs := []*store.Message{
		{ID: 10, Prev: 0, HasPrev: true, PublicID: -5, To: a, From: b, Type: 1, Content: []byte("hello"), Timestamp: 1000, ExpiresAt: 2000},
		{ID: 11, Prev: 3, HasPrev: true, PublicID: 6, To: b, From: a, Type: 2, Content: []byte("other"), Timestamp: 1001, ExpiresAt: 2001},
		{ID: 12, Prev: 10, HasPrev: true, PublicID: 1 << 62, To: a, From: b, Type: 3, Content: []byte{}, Timestamp: 1002, ExpiresAt: 2002, Franking: fr},
	}
	got, err := decodeMessages(a, encodeMessages(a, msgs))
	if err != nil {
		t.Fatal(err)
	}
	if want := []*store.Message{msgs[0], msgs[2]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if got, err := decodeMessages(a, nil); got != nil || err != nil {
		t.Fatalf("an empty wake-up gave %v, %v", got, err)
	}
	noPrev := []*store.Message{{ID: 1, To: a, Content: []byte("x")}}
	big := []*store.Message{{ID: 1, HasPrev: true, To: a, Content: make([]byte, maxCarried+1)}}
	for _, ms := range [][]*store.Message{noPrev, big} {
		if enc := encodeMessages(a, ms); enc != nil {
			t.Fatalf("carried %d bytes of messages it should not", len(enc))
		}
	}
	enc := encodeMessages(a, msgs)
	for i := 1; i < len(enc); i++ {
		if ms, err := decodeMessages(a, enc[:i]); err == nil && len(ms) == 2 {
			t.Fatalf("%d of %d bytes decode as both messages", i, len(enc))
		}
	}
	if _, err := decodeMessages(a, append(enc[:len(enc):len(enc)], 0x80)); err == nil {
		t.Fatal("a truncated varint decodes")
	}
}
