package blobfiles_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/blobfiles"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
	"github.com/hushmsg/hush/internal/server/store/storetest"
)

func open(t *testing.T) (*sqlitestore.Store, *blobfiles.Files) {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlitestore.Open(filepath.Join(dir, "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := blobfiles.Open(filepath.Join(dir, "blobs"), s)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

func TestConformance(t *testing.T) {
	storetest.RunBlobData(t, func(t *testing.T) (store.Store, store.BlobData) { return open(t) })
}

// newBlob makes a blob of size bytes for a new account's device 1.
func newBlob(t *testing.T, s *sqlitestore.Store, size int64) store.Blob {
	t.Helper()
	a, _, err := s.CreateAccount(context.Background(), store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	b := store.Blob{ID: id, Owner: store.DeviceRef{Account: a.ID, Device: 1}, Size: size, ExpiresAt: 1 << 50, Deadline: 1 << 50}
	if err := s.CreateBlob(context.Background(), b, store.BlobQuota{Bytes: 1 << 30, Count: 10}); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCutShortThenResumed: a chunk cut short leaves bytes in the file past
// Received (as a process killed mid-chunk does); they are never read, and
// the next chunk at Received replaces them.
func TestCutShortThenResumed(t *testing.T) {
	ctx := t.Context()
	s, f := open(t)
	defer s.Close()
	b := newBlob(t, s, 200)
	data := bytes.Repeat([]byte("a"), 200)
	if err := f.WriteBlob(ctx, b, 0, 100, bytes.NewReader(data[:100])); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteBlob(ctx, b, 100, 100, bytes.NewReader(bytes.Repeat([]byte("X"), 60))); err == nil {
		t.Fatal("a short chunk was taken")
	}
	fi, err := os.Stat(filepath.Join(f.Dir(), blobPath(b.ID)))
	if err != nil || fi.Size() != 160 {
		t.Fatalf("file after a cut chunk: %v %v, want 160 bytes", fi, err)
	}
	b, _ = s.Blob(ctx, b.ID)
	if b.Received != 100 {
		t.Fatalf("received %d", b.Received)
	}
	if err := f.WriteBlob(ctx, b, 100, 100, bytes.NewReader(data[100:])); err != nil {
		t.Fatal(err)
	}
	b, _ = s.Blob(ctx, b.ID)
	r, err := f.OpenBlob(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read back %q, %v", got.Bytes(), err)
	}
}

func blobPath(id []byte) string {
	const hx = "0123456789abcdef"
	h := make([]byte, 0, 32)
	for _, c := range id {
		h = append(h, hx[c>>4], hx[c&15])
	}
	return filepath.Join(string(h[:2]), string(h))
}

// TestRemoveOverwrites: removing a blob leaves no file, and the bytes it
// held were overwritten first (checked through a hard link, which keeps
// the inode readable after the unlink).
func TestRemoveOverwrites(t *testing.T) {
	ctx := t.Context()
	s, f := open(t)
	defer s.Close()
	b := newBlob(t, s, 3<<20)
	data := bytes.Repeat([]byte("secret!!"), 3<<20/8)
	if err := f.WriteBlob(ctx, b, 0, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.Dir(), blobPath(b.ID))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(p, link); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	// Watch the overwrite through a descriptor opened before it.
	h, err := os.Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := f.RemoveBlob(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	if fi, err := os.Stat(link); err != nil || fi.Size() != 0 {
		t.Fatalf("the inode after removal: %v %v, want 0 bytes", fi, err)
	}
}

// TestRemoveOrphans: a file whose blob has no metadata is removed, a
// file with metadata is kept.
func TestRemoveOrphans(t *testing.T) {
	ctx := t.Context()
	s, f := open(t)
	defer s.Close()
	b := newBlob(t, s, 10)
	if err := f.WriteBlob(ctx, b, 0, 10, bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatal(err)
	}
	orphan := make([]byte, 16)
	orphan[0] = 0xab
	op := filepath.Join(f.Dir(), blobPath(orphan))
	if err := os.MkdirAll(filepath.Dir(op), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(op, []byte("left behind"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := f.RemoveOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RemoveOrphans = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(op); !os.IsNotExist(err) {
		t.Fatal("orphan still there")
	}
	if _, err := os.Stat(filepath.Join(f.Dir(), blobPath(b.ID))); err != nil {
		t.Fatalf("a live blob's file was removed: %v", err)
	}
}

// hookReader calls hook on its first Read.
type hookReader struct {
	r    *bytes.Reader
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return h.r.Read(p)
}

// TestDeletedWhileWritten: a blob deleted (expired, discarded) while a
// chunk of it is being written: the write fails with ErrNotFound and
// leaves no file (and does not deadlock on the blob's lock).
func TestDeletedWhileWritten(t *testing.T) {
	ctx := t.Context()
	s, f := open(t)
	defer s.Close()
	b := newBlob(t, s, 100)
	r := &hookReader{r: bytes.NewReader(make([]byte, 100)), hook: func() {
		if _, err := s.DeleteBlob(ctx, b.ID, b.Owner); err != nil {
			t.Error(err)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- f.WriteBlob(ctx, b, 0, 100, r) }()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("write of a deleted blob: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write of a deleted blob hangs")
	}
	if _, err := os.Stat(filepath.Join(f.Dir(), blobPath(b.ID))); !os.IsNotExist(err) {
		t.Fatalf("file left: %v", err)
	}
}
