package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// franked gives m a franking of its own, told apart by n.
func franked(m *store.Message, n byte) *store.Message {
	m.Franking = &store.Franking{Commitment: bytes.Repeat([]byte{n}, 32), Tag: bytes.Repeat([]byte{n + 1}, 32), KeyID: uint32(n) << 20}
	return m
}

// testFranking: a message's franking is kept with it, by EnqueueBatch and
// EnqueueFanout, and a message without one comes back without one.
func testFranking(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	from := store.DeviceRef{Account: a.ID, Device: 1}
	to := store.DeviceRef{Account: b.ID, Device: 1}
	batch := []*store.Message{franked(msg(from, to, "f", 100), 7), msg(from, to, "plain", 100)}
	must(s.EnqueueBatch(ctx, batch, 100, 100))
	ok(t, s.SetAccountIdentity(ctx, b.ID, []byte("identity b")))
	ok(t, s.SetOrdinaryKeys(ctx, to, 201, Keys("b", 1, 1)))
	fm := franked(msg(from, to, "fanout", 100), 9)
	must(s.EnqueueFanout(ctx, store.Fanout{
		Accounts: []store.FanoutAccount{fanoutAccount(b.ID, 0, map[uint32]uint32{to.Device: 201}), fanoutAccount(a.ID, from.Device, nil)},
		Messages: []*store.Message{fm}, MaxQueue: 10, MaxPerSender: 10,
	}))
	got := must(s.Pending(ctx, to, 0, 100, 10))
	if len(got) != 3 {
		t.Fatalf("%d pending", len(got))
	}
	for i, want := range []*store.Franking{batch[0].Franking, nil, fm.Franking} {
		if fmt.Sprint(got[i].Franking) != fmt.Sprint(want) {
			t.Errorf("message %d: franking %+v, want %+v", i, got[i].Franking, want)
		}
	}
}

// testReports: reports get increasing ids, read back as stored, listed
// in pages; a second report of the same tag is refused and stores nothing.
func testReports(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	rep := store.DeviceRef{Account: a.ID, Device: 1}
	if _, err := s.Report(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Report of nothing: %v", err)
	}
	if rs := must(s.Reports(ctx, 0, 10)); len(rs) != 0 {
		t.Fatalf("reports of an empty store: %v", rs)
	}
	var ids []int64
	for i := range 3 {
		id := must(s.AddReport(ctx, store.Report{Reporter: rep, Created: int64(100 + i), Tag: []byte{byte(i), 1, 2},
			Body: []byte(fmt.Sprint(`{"n":`, i, `}`))}))
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("report ids %v then %d", ids, id)
		}
		ids = append(ids, id)
	}
	if _, err := s.AddReport(ctx, store.Report{Reporter: rep, Created: 200, Tag: []byte{1, 1, 2}, Body: []byte("again")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second report of a tag: %v", err)
	}
	r := must(s.Report(ctx, ids[1]))
	if r.ID != ids[1] || r.Reporter != rep || r.Created != 101 || !bytes.Equal(r.Tag, []byte{1, 1, 2}) || string(r.Body) != `{"n":1}` {
		t.Fatalf("report %+v", r)
	}
	all := must(s.Reports(ctx, 0, 10))
	if len(all) != 3 || all[0].ID != ids[0] || all[2].ID != ids[2] || string(all[2].Body) != `{"n":2}` {
		t.Fatalf("reports %+v", all)
	}
	if page := must(s.Reports(ctx, ids[0], 1)); len(page) != 1 || page[0].ID != ids[1] {
		t.Fatalf("second page %+v", page)
	}
}
