package server_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
)

// racingStore runs a hook once, right after one of the reads the server's
// caches are filled from, so that a change lands between that read and the
// cache fill: the window a concurrent RemoveDevice, Login or Block hits.
type racingStore struct {
	store.Store
	mu   sync.Mutex
	hook map[string]func() // by method name; each runs once
}

func (r *racingStore) arm(method string, f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook[method] = f
}

func (r *racingStore) fire(method string) {
	r.mu.Lock()
	f := r.hook[method]
	delete(r.hook, method)
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

func (r *racingStore) Device(ctx context.Context, ref store.DeviceRef) (store.Device, error) {
	d, err := r.Store.Device(ctx, ref)
	r.fire("Device")
	return d, err
}

func (r *racingStore) Devices(ctx context.Context, account int64) ([]store.Device, error) {
	ds, err := r.Store.Devices(ctx, account)
	r.fire("Devices")
	return ds, err
}

func (r *racingStore) Blocked(ctx context.Context, blocker int64) ([]int64, error) {
	ids, err := r.Store.Blocked(ctx, blocker)
	r.fire("Blocked")
	return ids, err
}

func newRacing(t *testing.T) (*server.Server, *racingStore) {
	t.Helper()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := &racingStore{Store: st, hook: map[string]func(){}}
	srv := server.New(rs, server.Config{Limits: servertest.NoLimits, Argon2Time: 1, Argon2MemoryKiB: 1024, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(srv.Close)
	return srv, rs
}

const racePassword = "correct horse battery"

func register(t *testing.T, srv *server.Server, name string) (api.DeviceCredential, server.Principal) {
	t.Helper()
	c, err := srv.Register(t.Context(), "127.0.0.1", api.Register{Username: name, Password: racePassword})
	if err != nil {
		t.Fatal(err)
	}
	p, err := srv.Authenticate(t.Context(), c.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// TestCacheRevocationRaces: a credential revoked, a device added or a
// block made while another request is between its store read and its
// cache fill must not be undone by that fill.
func TestCacheRevocationRaces(t *testing.T) {
	t.Run("RemoveDevice during Authenticate", func(t *testing.T) {
		ctx := t.Context()
		srv, rs := newRacing(t)
		_, owner := register(t, srv, "alice")
		dev, err := srv.AddDevice(ctx, "127.0.0.1", api.AddDevice{Username: "alice", Password: racePassword})
		if err != nil {
			t.Fatal(err)
		}
		rs.arm("Device", func() {
			if err := srv.RemoveDevice(ctx, owner, dev.DeviceID); err != nil {
				t.Errorf("RemoveDevice: %v", err)
			}
		})
		// This one may pass: it began before the removal.
		_, _ = srv.Authenticate(ctx, dev.Credential)
		if _, err := srv.Authenticate(ctx, dev.Credential); err == nil {
			t.Fatal("a removed device's credential still authenticates")
		}
	})
	t.Run("Login during Authenticate", func(t *testing.T) {
		ctx := t.Context()
		srv, rs := newRacing(t)
		reg, err := srv.Register(ctx, "127.0.0.1", api.Register{Username: "alice", Password: racePassword})
		if err != nil {
			t.Fatal(err)
		}
		var fresh api.DeviceCredential
		rs.arm("Device", func() {
			fresh, err = srv.Login(ctx, "127.0.0.1", api.Login{Username: "alice", Password: racePassword, DeviceID: reg.DeviceID})
			if err != nil {
				t.Errorf("Login: %v", err)
			}
		})
		_, _ = srv.Authenticate(ctx, reg.Credential)
		if _, err := srv.Authenticate(ctx, reg.Credential); err == nil {
			t.Fatal("a replaced credential still authenticates")
		}
		if _, err := srv.Authenticate(ctx, fresh.Credential); err != nil {
			t.Fatalf("the new credential: %v", err)
		}
	})
	t.Run("AddDevice during lookupUser", func(t *testing.T) {
		ctx := t.Context()
		srv, rs := newRacing(t)
		_, alice := register(t, srv, "alice")
		register(t, srv, "bob")
		var added api.DeviceCredential
		rs.arm("Devices", func() {
			var err error
			added, err = srv.AddDevice(ctx, "127.0.0.1", api.AddDevice{Username: "bob", Password: racePassword})
			if err != nil {
				t.Errorf("AddDevice: %v", err)
			}
		})
		msg := api.SendMessage{Type: 1, Content: []byte("x")}
		srv.Send(ctx, alice, []server.Outgoing{{To: "bob", Device: 1, Msg: msg}})
		out := srv.Send(ctx, alice, []server.Outgoing{{To: "bob", Device: added.DeviceID, Msg: msg}})
		if out[0].Err != nil {
			t.Fatalf("sending to bob's new device: %v", out[0].Err)
		}
	})
	t.Run("Block during blockedBy", func(t *testing.T) {
		ctx := t.Context()
		srv, rs := newRacing(t)
		_, alice := register(t, srv, "alice")
		_, bob := register(t, srv, "bob")
		rs.arm("Blocked", func() {
			if err := srv.Block(ctx, bob, "alice", true); err != nil {
				t.Errorf("Block: %v", err)
			}
		})
		msg := api.SendMessage{Type: 1, Content: []byte("x")}
		srv.Send(ctx, alice, []server.Outgoing{{To: "bob", Device: 1, Msg: msg}})
		before, err := rs.Pending(ctx, bob.DeviceRef, 0, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		srv.Send(ctx, alice, []server.Outgoing{{To: "bob", Device: 1, Msg: msg}})
		after, err := rs.Pending(ctx, bob.DeviceRef, 0, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("a message from a blocked sender was queued (%d queued, then %d)", len(before), len(after))
		}
	})
}
