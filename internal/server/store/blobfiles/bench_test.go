package blobfiles

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
)

// BenchmarkWriteBlob stores a 100 MiB blob in 8 MiB chunks as hushd does
// (write, fsync, record in SQLite), from memory: the store's share of an
// upload, without the network.
func BenchmarkWriteBlob(b *testing.B) {
	const size, chunk = 100 << 20, 8 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	dir := b.TempDir()
	s, err := sqlitestore.Open(filepath.Join(dir, "hushd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		b.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "blobs"), s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		bl := store.Blob{ID: id, Owner: store.DeviceRef{Account: a.ID, Device: 1}, Size: size, ExpiresAt: 1 << 50, Deadline: 1 << 50}
		if err := s.CreateBlob(ctx, bl, store.BlobQuota{Bytes: 1 << 40, Count: 1 << 20}); err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += chunk {
			n := min(chunk, size-off)
			if err := f.WriteBlob(ctx, bl, off, n, bytes.NewReader(data[off:off+n])); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if _, err := s.DeleteBlob(ctx, id, bl.Owner); err != nil {
			b.Fatal(err)
		}
		if err := f.RemoveBlob(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
