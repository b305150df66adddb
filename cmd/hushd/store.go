package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/blobfiles"
	"github.com/hushmsg/hush/internal/server/store/pgstore"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
)

// openedStore is the store hushd serves from, with what main needs of its
// backend.
type openedStore struct {
	store.Store
	kind     string // "sqlite" or "postgres"
	onCommit func(func(ops int, d time.Duration))
	// newLimiter makes rate limiters: shared by the nodes on PostgreSQL
	// (rows of rate_buckets), nil (in memory) on SQLite.
	newLimiter func(name string, l ratelimit.Limit) server.Limiter
	// blobs keeps the bytes of blobs: files in the data folder beside
	// SQLite, chunk rows in PostgreSQL, which every node serves from
	// (docs/operations.md, "Blobs").
	blobs store.BlobData
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// openStore opens PostgreSQL when --store is given, else SQLite in the
// data folder.
func openStore(c config, log *slog.Logger) (*openedStore, error) {
	if c.storeURL != "" {
		if !isPostgresURL(c.storeURL) {
			return nil, errors.New("--store wants a postgres:// URL")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := pgstore.Open(ctx, c.storeURL)
		if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		st.Logger = log
		return &openedStore{Store: st, kind: "postgres", onCommit: func(f func(int, time.Duration)) { st.OnCommit = f },
			newLimiter: func(name string, l ratelimit.Limit) server.Limiter { return st.Limiter(name, l, nil) }, blobs: st}, nil
	}
	st, err := sqlitestore.Open(filepath.Join(c.data, "hushd.db"))
	if err != nil {
		return nil, err
	}
	files, err := blobfiles.Open(filepath.Join(c.data, "blobs"), st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &openedStore{Store: st, kind: "sqlite", onCommit: func(f func(int, time.Duration)) { st.OnCommit = f }, blobs: files}, nil
}

// pollOnly is the cluster of nodes sharing PostgreSQL without NATS: they
// cannot wake each other, so sessions find other nodes' messages by the
// server's poll alone.
type pollOnly struct{}

func (pollOnly) Attach(server.Node)                       {}
func (pollOnly) Present(store.DeviceRef)                  {}
func (pollOnly) Absent(store.DeviceRef)                   {}
func (pollOnly) Wake([]store.DeviceRef, []*store.Message) {}
func (pollOnly) Forget(server.Forget)                     {}
