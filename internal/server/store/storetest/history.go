package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// Conformance tests of history records and recovery blobs
// (docs/multidevice.md section 3).

func rec(id, blob string) store.HistoryRecord {
	return store.HistoryRecord{ID: []byte(fmt.Sprintf("%-16s", id)), Blob: []byte(blob)}
}

// allHistory pages through account's whole history, limit records a page.
func allHistory(t *testing.T, s store.Store, account int64, limit int) []store.HistoryRecord {
	t.Helper()
	var out []store.HistoryRecord
	after := int64(0)
	for {
		page, more := must2(s.History(ctx, account, after, limit, 1<<30))
		if len(page) > limit || more && len(page) != limit {
			t.Fatalf("page of %d records (limit %d), more %v", len(page), limit, more)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

func must2[T, U any](v T, w U, err error) (T, U) {
	if err != nil {
		panic(mustError{err})
	}
	return v, w
}

func blobs(recs []store.HistoryRecord) string {
	var b bytes.Buffer
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.Write(r.Blob)
	}
	return b.String()
}

func testHistory(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	if n := must(s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("1", "one"), rec("2", "two"), rec("1", "one again")}, 10)); n != 2 {
		t.Fatalf("deposited %d, want 2", n)
	}
	// The first copy stays; new ones are numbered after.
	if n := must(s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("2", "two again"), rec("3", "three")}, 10)); n != 1 {
		t.Fatalf("deposited %d, want 1", n)
	}
	must(s.DepositHistory(ctx, b.ID, []store.HistoryRecord{rec("1", "bob's one")}, 10)) // another account, the same id
	got := allHistory(t, s, a.ID, 2)
	if blobs(got) != "one two three" {
		t.Fatalf("alice's history %q", blobs(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq || !bytes.Equal(got[i].ID, rec(fmt.Sprint(i+1), "").ID) {
			t.Fatalf("records %+v", got)
		}
	}
	if got := allHistory(t, s, b.ID, 10); blobs(got) != "bob's one" {
		t.Fatalf("bob's history %q", blobs(got))
	}
	page, more := must2(s.History(ctx, a.ID, got[len(got)-1].Seq, 10, 1<<30))
	if len(page) != 0 || more {
		t.Fatalf("after the last: %v %v", page, more)
	}
	// Pages stop at maxBytes, with at least one record.
	page, more = must2(s.History(ctx, a.ID, 0, 10, 4))
	if blobs(page) != "one two" || !more {
		t.Fatalf("page of 4 bytes: %q more %v", blobs(page), more)
	}
	page, more = must2(s.History(ctx, a.ID, 0, 10, 1))
	if blobs(page) != "one" || !more {
		t.Fatalf("page of 1 byte: %q more %v", blobs(page), more)
	}
	// The cap: new records past max are refused, all of them; old ones
	// cost nothing.
	_, err := s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("4", "four"), rec("5", "five")}, 4)
	wantErr(t, err, store.ErrHistoryFull)
	if n := must(s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("1", "x"), rec("4", "four")}, 4)); n != 1 {
		t.Fatalf("deposit to the cap: %d", n)
	}
	_, err = s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("5", "five")}, 4)
	wantErr(t, err, store.ErrHistoryFull)
	if n := must(s.DepositHistory(ctx, a.ID, []store.HistoryRecord{rec("3", "x")}, 4)); n != 0 {
		t.Fatalf("a known record at the cap: %d", n)
	}
	if got := allHistory(t, s, a.ID, 100); blobs(got) != "one two three four" {
		t.Fatalf("after the cap %q", blobs(got))
	}
	// Removing a device leaves the account's history.
	d2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "x", TokenHash: []byte("x")}, 5)).Ref
	ok(t, s.RemoveDevice(ctx, d2))
	if got := allHistory(t, s, a.ID, 100); len(got) != 4 {
		t.Fatalf("after removing a device: %d records", len(got))
	}
	_, err = s.DepositHistory(ctx, 987654, []store.HistoryRecord{rec("1", "x")}, 4)
	wantErr(t, err, store.ErrNotFound)
}

// testConcurrentHistory: devices depositing at once, the same records and
// others: each id is stored once, and a reader following the history
// after the last seq it saw misses none.
func testConcurrentHistory(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	const writers, each = 6, 30
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Records i are deposited by every writer; w-i by one.
				recs := []store.HistoryRecord{rec(fmt.Sprint(i), "shared"), rec(fmt.Sprintf("%d-%d", w, i), "own")}
				if _, err := s.DepositHistory(ctx, a.ID, recs, 1<<20); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	seen := map[string]int{}
	var after int64
	for done := false; !done; {
		select {
		case <-writing:
			done = true
		default:
		}
		page, _, err := s.History(ctx, a.ID, after, 50, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			seen[string(r.ID)]++
			after = r.Seq
		}
	}
	if len(seen) != each+writers*each {
		t.Fatalf("a reader following the history saw %d records, want %d", len(seen), each+writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("record %q seen %d times", id, n)
		}
	}
}

func testFanoutHistory(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, b1, 1, Keys("b1", 1, 1)))
	fan := func(body string, recs ...store.HistoryRecord) store.Fanout {
		return store.Fanout{
			Accounts: []store.FanoutAccount{fanoutAccount(b.ID, 0, map[uint32]uint32{1: 1}), fanoutAccount(a.ID, 1, nil)},
			Messages: []*store.Message{msg(a1, b1, body, 100)},
			MaxQueue: 10, MaxPerSender: 10,
			History: recs, HistoryAccount: a.ID, MaxHistory: 2,
		}
	}
	must(s.EnqueueFanout(ctx, fan("m1", rec("1", "h1"))))
	must(s.EnqueueFanout(ctx, fan("m2", rec("1", "dup"), rec("2", "h2"))))
	if got := allHistory(t, s, a.ID, 10); blobs(got) != "h1 h2" {
		t.Fatalf("history %q", blobs(got))
	}
	// A full history refuses the whole send.
	_, err := s.EnqueueFanout(ctx, fan("m3", rec("3", "h3")))
	wantErr(t, err, store.ErrHistoryFull)
	if got := must(s.Pending(ctx, b1, 0, 100, 10)); len(got) != 2 {
		t.Fatalf("bob has %d messages, want 2", len(got))
	}
	// A refused send deposits nothing.
	f := fan("m4", rec("9", "h9"))
	f.MaxHistory = 10
	f.Accounts[0].Devices[1] = 2 // stale
	_, err = s.EnqueueFanout(ctx, f)
	var me *store.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("stale send: %v", err)
	}
	if got := allHistory(t, s, a.ID, 10); blobs(got) != "h1 h2" {
		t.Fatalf("history after a refused send %q", blobs(got))
	}
}

func testRecovery(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	_, _, err := s.Recovery(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.SetRecovery(ctx, a.ID, 2, []byte("v2")), store.ErrConflict)
	wantErr(t, s.SetRecovery(ctx, a.ID, 0, []byte("v0")), store.ErrConflict)
	ok(t, s.SetRecovery(ctx, a.ID, 1, []byte("v1")))
	wantErr(t, s.SetRecovery(ctx, a.ID, 1, []byte("v1 again")), store.ErrConflict)
	ok(t, s.SetRecovery(ctx, a.ID, 2, []byte("v2")))
	wantErr(t, s.SetRecovery(ctx, a.ID, 4, []byte("v4")), store.ErrConflict)
	if v, b, err := s.Recovery(ctx, a.ID); err != nil || v != 2 || string(b) != "v2" {
		t.Fatalf("Recovery = %d %q %v", v, b, err)
	}
	// Two devices racing for version 3: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.SetRecovery(ctx, a.ID, 3, fmt.Appendf(nil, "v3-%d", i)) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers of version 3 won", wins)
	}
	if v, _, err := s.Recovery(ctx, a.ID); err != nil || v != 3 {
		t.Fatalf("version %d %v", v, err)
	}
}
