package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// Conformance tests of blobs (store.BlobStore, store.BlobData).

func blobID(t *testing.T) []byte {
	t.Helper()
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return id
}

var bigQuota = store.BlobQuota{Bytes: 1 << 40, Count: 1 << 20}

// newBlob creates a blob of size bytes owned by owner, created at 1000,
// open until 5000, lifetime to 100000.
func newBlob(t *testing.T, s store.Store, owner store.DeviceRef, size int64) store.Blob {
	t.Helper()
	b := store.Blob{ID: blobID(t), Owner: owner, Size: size, Created: 1000, ExpiresAt: 5000, Deadline: 100000}
	ok(t, s.CreateBlob(ctx, b, bigQuota))
	return b
}

func complete(t *testing.T, s store.Store, b store.Blob) {
	t.Helper()
	ok(t, s.AdvanceBlob(ctx, b.ID, 0, b.Size))
}

func testBlobs(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	b1 := store.DeviceRef{Account: b.ID, Device: 1}

	bl := newBlob(t, s, a1, 100)
	wantErr(t, s.CreateBlob(ctx, bl, bigQuota), store.ErrConflict)
	got := must(s.Blob(ctx, bl.ID))
	if !bytes.Equal(got.ID, bl.ID) || got.Owner != a1 || got.Size != 100 || got.Received != 0 || got.ExpiresAt != 5000 ||
		got.Deadline != 100000 || got.Created != 1000 || got.Sent || got.Complete() {
		t.Fatalf("Blob = %+v", got)
	}
	_, err := s.Blob(ctx, blobID(t))
	wantErr(t, err, store.ErrNotFound)

	// Received moves only from where it stands, never past the size.
	ok(t, s.AdvanceBlob(ctx, bl.ID, 0, 40))
	wantErr(t, s.AdvanceBlob(ctx, bl.ID, 0, 40), store.ErrConflict)
	wantErr(t, s.AdvanceBlob(ctx, bl.ID, 40, 101), store.ErrConflict)
	wantErr(t, s.AdvanceBlob(ctx, blobID(t), 0, 1), store.ErrNotFound)
	ok(t, s.AdvanceBlob(ctx, bl.ID, 40, 100))
	if got := must(s.Blob(ctx, bl.ID)); !got.Complete() {
		t.Fatalf("after the last chunk: %+v", got)
	}

	// Nobody but the owner deletes an unsent blob; the owner does.
	_, err = s.DeleteBlob(ctx, bl.ID, b1)
	wantErr(t, err, store.ErrNotFound)
	if gone := must(s.DeleteBlob(ctx, bl.ID, a1)); !gone {
		t.Fatal("the owner's delete of an unsent blob left it")
	}
	_, err = s.Blob(ctx, bl.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeleteBlob(ctx, bl.ID, a1)
	wantErr(t, err, store.ErrNotFound)
}

func testBlobQuota(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	a2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref
	q := store.BlobQuota{Bytes: 100, Count: 3}
	mk := func(owner store.DeviceRef, size int64) error {
		return s.CreateBlob(ctx, store.Blob{ID: blobID(t), Owner: owner, Size: size, ExpiresAt: 5000, Deadline: 9000}, q)
	}
	ok(t, mk(a1, 60))
	wantErr(t, mk(a2, 41), store.ErrQuotaExceeded) // per account, whichever device
	ok(t, mk(a2, 40))
	wantErr(t, mk(a1, 1), store.ErrQuotaExceeded)
	ok(t, mk(store.DeviceRef{Account: b.ID, Device: 1}, 100)) // bob has his own
	// The count too.
	c := newAccount(t, s, "carol")
	c1 := store.DeviceRef{Account: c.ID, Device: 1}
	for range 3 {
		ok(t, mk(c1, 1))
	}
	wantErr(t, mk(c1, 1), store.ErrQuotaExceeded)
	// Concurrent creations cannot pass the quota together.
	d := newAccount(t, s, "dave")
	d1 := store.DeviceRef{Account: d.ID, Device: 1}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- mk(d1, 30) })
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if err == nil {
			n++
		} else if !errors.Is(err, store.ErrQuotaExceeded) {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("%d concurrent creations of 30 bytes passed a quota of 100 bytes in 3 blobs, want 3", n)
	}
}

// blobMsg is a message from from to to carrying blobs, at time ts.
func blobMsg(from, to store.DeviceRef, ts, expires int64, blobs ...[]byte) *store.Message {
	return &store.Message{PublicID: ts, From: from, To: to, Type: 1, Content: []byte("m"), Timestamp: ts, ExpiresAt: expires, Blobs: blobs}
}

func testBlobSends(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	a2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	b2 := must(s.AddDevice(ctx, b.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref

	full := newBlob(t, s, a1, 10)
	complete(t, s, full)
	half := newBlob(t, s, a1, 10)
	ok(t, s.AdvanceBlob(ctx, half.ID, 0, 5))
	other := newBlob(t, s, a2, 10) // another device's
	complete(t, s, other)

	// Refused one by one, the good one stored in the same batch.
	res := must(s.EnqueueBatch(ctx, []*store.Message{
		blobMsg(a1, b1, 2000, 50000, half.ID),
		blobMsg(a1, b1, 2000, 50000, other.ID),
		blobMsg(a1, b1, 2000, 50000, blobID(t)),
		blobMsg(a1, b1, 2000, 50000, full.ID, half.ID),
		blobMsg(a1, b1, 6000, 50000, full.ID), // after the blob expired
		blobMsg(a1, b1, 2000, 50000, full.ID),
	}, 100, 100))
	for _, r := range res[:5] {
		wantErr(t, r.Err, store.ErrBlobUnusable)
	}
	ok(t, res[5].Err)
	if depth := must(s.QueueDepth(ctx)); depth != 1 {
		t.Fatalf("queue depth %d after one good message", depth)
	}
	if g := must(s.BlobGranted(ctx, full.ID, b1)); !g {
		t.Fatal("the recipient may not download")
	}
	for _, ref := range []store.DeviceRef{b2, a2, a1} {
		if g := must(s.BlobGranted(ctx, full.ID, ref)); g {
			t.Fatalf("%v may download", ref)
		}
	}
	if g := must(s.BlobGranted(ctx, half.ID, b1)); g {
		t.Fatal("a refused message granted its blob")
	}
	got := must(s.Blob(ctx, full.ID))
	if !got.Sent || got.ExpiresAt != 50000 {
		t.Fatalf("after a send expiring at 50000: %+v", got)
	}
	// A later send expiring sooner brings it down, never up; never past
	// the deadline.
	ok(t, must(s.EnqueueBatch(ctx, []*store.Message{blobMsg(a1, b2, 3000, 40000, full.ID)}, 100, 100))[0].Err)
	ok(t, must(s.EnqueueBatch(ctx, []*store.Message{blobMsg(a1, b2, 3000, 90000, full.ID)}, 100, 100))[0].Err)
	if got := must(s.Blob(ctx, full.ID)); got.ExpiresAt != 40000 {
		t.Fatalf("expiry %d, want 40000", got.ExpiresAt)
	}
	late := newBlob(t, s, a1, 1)
	complete(t, s, late)
	ok(t, must(s.EnqueueBatch(ctx, []*store.Message{blobMsg(a1, b1, 3000, 200000, late.ID)}, 100, 100))[0].Err)
	if got := must(s.Blob(ctx, late.ID)); got.ExpiresAt != 100000 {
		t.Fatalf("expiry %d, want the deadline 100000", got.ExpiresAt)
	}

	// The owner cannot discard a sent blob; recipients confirm one by one.
	_, err := s.DeleteBlob(ctx, full.ID, a1)
	wantErr(t, err, store.ErrConflict)
	_, err = s.DeleteBlob(ctx, full.ID, a2)
	wantErr(t, err, store.ErrNotFound)
	if gone := must(s.DeleteBlob(ctx, full.ID, b1)); gone {
		t.Fatal("gone after one of two recipients")
	}
	_, err = s.DeleteBlob(ctx, full.ID, b1)
	wantErr(t, err, store.ErrNotFound) // confirmed already
	if gone := must(s.DeleteBlob(ctx, full.ID, b2)); !gone {
		t.Fatal("not gone after every recipient confirmed")
	}
	_, err = s.Blob(ctx, full.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testBlobFanout(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, a1, 101, Keys("a1", 1, 1)))
	a2 := ordinaryDevice(t, s, a.ID, 102, "a2", 1)
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, b1, 201, Keys("b1", 1, 1)))
	full := newBlob(t, s, a1, 10)
	complete(t, s, full)
	half := newBlob(t, s, a1, 10)
	f := func(blobs ...[]byte) store.Fanout {
		return store.Fanout{
			Accounts: []store.FanoutAccount{
				fanoutAccount(b.ID, 0, map[uint32]uint32{b1.Device: 201}),
				fanoutAccount(a.ID, a1.Device, map[uint32]uint32{a2.Device: 102}),
			},
			Messages: []*store.Message{blobMsg(a1, b1, 2000, 60000, blobs...), blobMsg(a1, a2, 2000, 60000, blobs...)},
			MaxQueue: 100, MaxPerSender: 100,
		}
	}
	_, err := s.EnqueueFanout(ctx, f(full.ID, half.ID))
	wantErr(t, err, store.ErrBlobUnusable)
	if depth := must(s.QueueDepth(ctx)); depth != 0 {
		t.Fatalf("a refused fanout stored %d messages", depth)
	}
	if g := must(s.BlobGranted(ctx, full.ID, b1)); g {
		t.Fatal("a refused fanout granted a blob")
	}
	must(s.EnqueueFanout(ctx, f(full.ID)))
	for _, ref := range []store.DeviceRef{b1, a2} {
		if g := must(s.BlobGranted(ctx, full.ID, ref)); !g {
			t.Fatalf("%v may not download", ref)
		}
	}
	// A removed device no longer holds the blob: once the other has
	// confirmed, nothing waits for it and the sweep takes it.
	ok(t, s.RemoveDevice(ctx, a2))
	if gone := must(s.DeleteBlob(ctx, full.ID, b1)); !gone {
		t.Fatal("left after its only remaining recipient confirmed")
	}
}

func testBlobExpiry(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	b2 := must(s.AddDevice(ctx, b.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref
	unfinished := newBlob(t, s, a1, 10) // expires at 5000
	sent := newBlob(t, s, a1, 10)
	complete(t, s, sent)
	ok(t, must(s.EnqueueBatch(ctx, []*store.Message{blobMsg(a1, b2, 2000, 8000, sent.ID)}, 100, 100))[0].Err)
	orphan := newBlob(t, s, a1, 10)
	complete(t, s, orphan)
	ok(t, must(s.EnqueueBatch(ctx, []*store.Message{blobMsg(a1, b1, 2000, 9000, orphan.ID)}, 100, 100))[0].Err)
	ok(t, s.RemoveDevice(ctx, b1)) // orphan now waits for nobody

	ids := must(s.DeleteExpiredBlobs(ctx, 4999, 100))
	if len(ids) != 1 || !bytes.Equal(ids[0], orphan.ID) {
		t.Fatalf("at 4999 swept %x, want only the blob nobody waits for", ids)
	}
	ids = must(s.DeleteExpiredBlobs(ctx, 5000, 100))
	if len(ids) != 1 || !bytes.Equal(ids[0], unfinished.ID) {
		t.Fatalf("at 5000 swept %x, want the unfinished upload", ids)
	}
	ids = must(s.DeleteExpiredBlobs(ctx, 8000, 1))
	if len(ids) != 1 || !bytes.Equal(ids[0], sent.ID) {
		t.Fatalf("at 8000 swept %x, want the sent blob", ids)
	}
	if ids := must(s.DeleteExpiredBlobs(ctx, 1<<50, 100)); len(ids) != 0 {
		t.Fatalf("swept %x from nothing", ids)
	}
	for _, id := range [][]byte{unfinished.ID, sent.ID, orphan.ID} {
		_, err := s.Blob(ctx, id)
		wantErr(t, err, store.ErrNotFound)
	}
}

// RunBlobData runs the conformance tests of a store.BlobData, each on a
// fresh store (and its BlobData) from open.
func RunBlobData(t *testing.T, open func(t *testing.T) (store.Store, store.BlobData)) {
	t.Run("WriteRead", func(t *testing.T) {
		s, d := open(t)
		defer s.Close()
		a := newAccount(t, s, "alice")
		b := newBlob(t, s, store.DeviceRef{Account: a.ID, Device: 1}, 3000)
		data := make([]byte, 3000)
		_, _ = rand.Read(data)
		ok(t, d.WriteBlob(ctx, b, 0, 1000, bytes.NewReader(data[:1000])))
		// A chunk at the wrong offset, or cut short, changes nothing.
		wantErr(t, d.WriteBlob(ctx, b, 0, 1000, bytes.NewReader(data[:1000])), store.ErrConflict)
		if err := d.WriteBlob(ctx, b, 1000, 1000, bytes.NewReader(data[1000:1500])); err == nil {
			t.Fatal("a chunk cut short was taken")
		}
		b = must(s.Blob(ctx, b.ID))
		if b.Received != 1000 {
			t.Fatalf("received %d, want 1000", b.Received)
		}
		ok(t, d.WriteBlob(ctx, b, 1000, 2000, bytes.NewReader(data[1000:])))
		b = must(s.Blob(ctx, b.ID))
		if !b.Complete() {
			t.Fatalf("after every chunk: %+v", b)
		}
		r := must(d.OpenBlob(ctx, b))
		got := must(io.ReadAll(r))
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes back, not what was written", len(got))
		}
		// Seeking, across chunk boundaries.
		must(r.Seek(900, io.SeekStart))
		part := make([]byte, 300)
		must(io.ReadFull(r, part))
		if !bytes.Equal(part, data[900:1200]) {
			t.Fatal("seek and read across chunks gave other bytes")
		}
		if n := must(r.Seek(0, io.SeekEnd)); n != 3000 {
			t.Fatalf("end at %d", n)
		}
		ok(t, r.Close())
		gone := must(s.DeleteBlob(ctx, b.ID, b.Owner))
		if !gone {
			t.Fatal("not gone")
		}
		ok(t, d.RemoveBlob(ctx, b.ID))
		ok(t, d.RemoveBlob(ctx, b.ID)) // nothing left: no error
	})
	t.Run("ConcurrentChunks", func(t *testing.T) {
		s, d := open(t)
		defer s.Close()
		a := newAccount(t, s, "alice")
		b := newBlob(t, s, store.DeviceRef{Account: a.ID, Device: 1}, 4096)
		// Eight writers send different bytes for the same offset: one
		// wins, whole, and the others change nothing.
		var wg sync.WaitGroup
		wins := make(chan byte, 8)
		for i := range 8 {
			wg.Go(func() {
				if d.WriteBlob(ctx, b, 0, 4096, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 4096))) == nil {
					wins <- byte(i)
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d writers won the same offset", len(wins))
		}
		w := <-wins
		b = must(s.Blob(ctx, b.ID))
		got := must(io.ReadAll(must(d.OpenBlob(ctx, b))))
		if !bytes.Equal(got, bytes.Repeat([]byte{w}, 4096)) {
			t.Fatal("the stored chunk mixes writers")
		}
	})
}
