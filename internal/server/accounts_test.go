package server_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
)

// countingStore counts credential rewrites.
type countingStore struct {
	store.Store
	setToken atomic.Int32
}

func (c *countingStore) SetDeviceToken(ctx context.Context, ref store.DeviceRef, h []byte) error {
	c.setToken.Add(1)
	return c.Store.SetDeviceToken(ctx, ref, h)
}

// TestCredentialsInOneCommit: registering and adding a device write the
// device with its real credential hash at once (a crash cannot leave a
// device whose credential was never stored); login replaces it.
func TestCredentialsInOneCommit(t *testing.T) {
	ctx := t.Context()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	srv := server.New(cs, server.Config{Limits: servertest.NoLimits, Argon2Time: 1, Argon2MemoryKiB: 1024})
	defer srv.Close()
	authOK := func(cred string, want bool) {
		t.Helper()
		if _, err := srv.Authenticate(ctx, cred); (err == nil) != want {
			t.Fatalf("Authenticate = %v, want success %v", err, want)
		}
	}
	reg, err := srv.Register(ctx, "127.0.0.1", api.Register{Username: "alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := srv.AddDevice(ctx, "127.0.0.1", api.AddDevice{Username: "alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.setToken.Load(); n != 0 {
		t.Fatalf("register and add-device rewrote a credential %d times", n)
	}
	authOK(reg.Credential, true)
	authOK(dev.Credential, true)
	li, err := srv.Login(ctx, "127.0.0.1", api.Login{Username: "alice", Password: "correct horse battery", DeviceID: reg.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.setToken.Load(); n != 1 {
		t.Fatalf("login rewrote the credential %d times, want 1", n)
	}
	authOK(li.Credential, true)
	authOK(reg.Credential, false)
	authOK(dev.Credential, true)
}
