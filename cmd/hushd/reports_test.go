package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/franking"
)

// TestFrankingKeyRotate: each rotation adds a key after the others, which
// stay; the file is the data folder's unless --franking-keys names one.
func TestFrankingKeyRotate(t *testing.T) {
	dir := t.TempDir()
	for want := uint32(1); want <= 3; want++ {
		var out, errb bytes.Buffer
		if err := run([]string{"franking-key", "rotate", "--data", dir}, &out, &errb); err != nil {
			t.Fatalf("rotate: %v %s", err, errb.String())
		}
		r, err := franking.Load(filepath.Join(dir, franking.KeyringFile))
		if err != nil || r.Current().ID != want || len(r.Keys()) != int(want) {
			t.Fatalf("after rotation %d: %v %v", want, r, err)
		}
		if !strings.Contains(out.String(), "franking key") {
			t.Fatalf("output %q", out.String())
		}
	}
	other := filepath.Join(t.TempDir(), "keys")
	if err := run([]string{"franking-key", "rotate", "--data", dir, "--franking-keys", other}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if r, err := franking.Load(other); err != nil || r.Current().ID != 1 {
		t.Fatalf("--franking-keys: %v %v", r, err)
	}
	if err := run([]string{"franking-key", "spin"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("franking-key spin ran")
	}
	if err := run([]string{"reports", "list", "--data", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "no hushd database") {
		t.Fatalf("reports in an empty folder: %v", err)
	}
	if err := run([]string{"reports", "show", "x", "--data", dir}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("reports show x ran")
	}
}

// TestFrankingKeyReload: hushd makes its keyring in the data folder at
// the first start, and after `hushd franking-key rotate` and SIGHUP tags
// new messages with the new key.
func TestFrankingKeyReload(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	p := start(t, "--addr", "127.0.0.1:0", "--data", data, "--limit-register", "0")
	keys := filepath.Join(data, franking.KeyringFile)
	if r, err := franking.Load(keys); err != nil || r.Current().ID != 1 {
		t.Fatalf("keyring after the first start: %v %v", r, err)
	}
	client := func(cred string) *apiclient.Client {
		c, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint, Credential: cred, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	creds := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		c, err := client("").Register(ctx, api.Register{Username: name, Password: "password1"})
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = c.Credential
	}
	alice, bob := client(creds["alice"]), client(creds["bob"])
	// keyID sends a franked message to bob and returns the key id it is
	// delivered with.
	keyID := func() uint32 {
		t.Helper()
		if _, err := alice.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Commitment: make([]byte, 32)}); err != nil {
			t.Fatal(err)
		}
		conn, err := bob.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for {
			f, err := conn.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Msg != nil {
				if err := conn.Ack(ctx, f.Msg.ID); err != nil {
					t.Fatal(err)
				}
				if f.Msg.Franking == nil {
					t.Fatal("delivered without franking")
				}
				return f.Msg.Franking.KeyID
			}
		}
	}
	if id := keyID(); id != 1 {
		t.Fatalf("key id %d", id)
	}
	if err := run([]string{"franking-key", "rotate", "--data", data}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload is asynchronous: poll, with a deadline, until new
	// messages carry key 2 (each poll a message; acknowledged ones may
	// come again on a new connection, so ids 1 and 2 only).
	deadline := time.Now().Add(30 * time.Second)
	for {
		id := keyID()
		if id == 2 {
			break
		}
		if id != 1 || time.Now().After(deadline) {
			t.Fatalf("after rotate and SIGHUP, key id %d", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
