package server

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
)

// mailbox is the part of a store a session's delivery uses: one mailbox,
// with its reads counted.
type mailbox struct {
	store.Store // nil: anything else panics
	mu          sync.Mutex
	msgs        []*store.Message
	reads       int
}

func (b *mailbox) SetNotify(func([]*store.Message))                          {}
func (b *mailbox) TouchDevice(context.Context, store.DeviceRef, int64) error { return nil }
func (b *mailbox) AccountByID(_ context.Context, id int64) (store.Account, error) {
	return store.Account{ID: id, Username: "sender"}, nil
}

func (b *mailbox) Pending(_ context.Context, _ store.DeviceRef, after, _ int64, limit int) ([]*store.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	var out []*store.Message
	for _, m := range b.msgs {
		if m.ID > after && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (b *mailbox) add(m *store.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
}

func (b *mailbox) readCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads
}

// recordSink records the public ids delivered to it.
type recordSink struct {
	mu  sync.Mutex
	ids []int64
}

func (s *recordSink) Deliver(_ context.Context, msgs []api.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.ids = append(s.ids, m.ID)
	}
	return nil
}
func (s *recordSink) Empty(context.Context) error   { return nil }
func (s *recordSink) KeysLow(context.Context) error { return nil }
func (s *recordSink) Close(string)                  {}

func (s *recordSink) delivered() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// TestOfferPrev: in a cluster, a session takes messages a wake-up carries
// without reading its mailbox when they follow what it has (Prev), reads
// the mailbox when one may be missing before them, and shows each message
// once, in id order.
func TestOfferPrev(t *testing.T) {
	box := &mailbox{}
	s := New(box, Config{Cluster: &wakeRecorder{}, PollInterval: time.Hour})
	defer s.Close()
	to := store.DeviceRef{Account: 1, Device: 1}
	msg := func(id, prev int64, hasPrev bool) *store.Message {
		// The public id is the id, so that the sink shows the order.
		return &store.Message{ID: id, PublicID: id, To: to, From: store.DeviceRef{Account: 2, Device: 1},
			ExpiresAt: 1 << 50, Prev: prev, HasPrev: hasPrev}
	}
	box.add(msg(1, 0, true))
	sink := &recordSink{}
	if _, err := s.Connect(Principal{DeviceRef: to}, sink); err != nil {
		t.Fatal(err)
	}
	wait := func(want []int64, reads int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(sink.delivered(), want) || box.readCount() != reads {
			if time.Now().After(deadline) {
				t.Fatalf("delivered %v after %d reads, want %v after %d", sink.delivered(), box.readCount(), want, reads)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait([]int64{1}, 1) // the backlog, read at connect

	// Follows 1: taken without a read.
	m2 := msg(2, 1, true)
	box.add(m2)
	s.Wake(to, []*store.Message{m2})
	wait([]int64{1, 2}, 1)

	// 3 was committed before 4, and 4's wake-up comes first: its Prev (3)
	// is ahead of the session, which reads the mailbox.
	m3, m4 := msg(3, 2, true), msg(4, 3, true)
	box.add(m3)
	box.add(m4)
	s.Wake(to, []*store.Message{m4})
	wait([]int64{1, 2, 3, 4}, 2)
	s.Wake(to, []*store.Message{m3}) // late: not shown again
	s.Wake(to, []*store.Message{m4}) // duplicate
	// A message without Prev (not from a group commit) is read.
	m5 := msg(5, 0, false)
	box.add(m5)
	s.Wake(to, []*store.Message{m5})
	wait([]int64{1, 2, 3, 4, 5}, 3)
	// Several in one wake-up, Prev chained.
	m6, m7 := msg(6, 5, true), msg(7, 6, true)
	box.add(m6)
	box.add(m7)
	s.Wake(to, []*store.Message{m6, m7})
	wait([]int64{1, 2, 3, 4, 5, 6, 7}, 3)
	// A plain wake-up reads.
	s.Wake(to, nil)
	wait([]int64{1, 2, 3, 4, 5, 6, 7}, 4)
}
