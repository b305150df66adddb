package sqlitestore

import (
	"path/filepath"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "hush.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks that what a returned call wrote is there after the
// store is closed and opened again.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hush.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	res, err := s.EnqueueBatch(ctx, []*store.Message{{To: to, From: to, Content: []byte("x"), ExpiresAt: 1 << 50}}, 10)
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueBatch(ctx, nil, 1); err != store.ErrClosed {
		t.Fatalf("write after Close: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.Pending(ctx, to, 0, 0, 10)
	if err != nil || len(ms) != 1 || ms[0].ID != res[0].ID || string(ms[0].Content) != "x" {
		t.Fatalf("after reopen: %v %v", ms, err)
	}
}

func BenchmarkEnqueueParallel(b *testing.B) {
	ctx := b.Context()
	s, err := Open(filepath.Join(b.TempDir(), "hush.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, _, _ := s.CreateAccount(ctx, store.NewAccount{Username: "a", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	to := store.DeviceRef{Account: a.ID, Device: 1}
	content := make([]byte, 256)
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.EnqueueBatch(ctx, []*store.Message{{To: to, From: to, Content: content, ExpiresAt: 1 << 50}}, 1<<30); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
