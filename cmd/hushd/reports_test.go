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
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/pgstore"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
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

// TestReportsOnPostgres: `hushd reports` reads a cluster's reports from
// --store, as hushd migrate finds its database.
func TestReportsOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	st, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	a, d, err := st.CreateAccount(ctx, store.NewAccount{Username: "bob", PasswordHash: "h", Created: 1}, store.NewDevice{TokenHash: []byte("t"), Created: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"reporter":"bob","reporterDevice":1,"reason":"spam \u001b[2J","messages":[{"from":"mallory","fromDevice":1,"toDevice":1,"timestamp":1,"franking":{"commitment":null,"tag":null,"keyId":1},"frankingKey":null,"content":null}]}`
	if _, err := st.AddReport(ctx, store.Report{Reporter: d.Ref, Created: a.Created, Tag: []byte("tag"), Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	if err := run([]string{"reports", "list", "--store", url}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "bob reported mallory (1 message)") || strings.Contains(s, "\x1b") {
		t.Fatalf("hushd reports list --store: %q", s)
	}
	out.Reset()
	if err := run([]string{"reports", "show", "1", "--store", url, "--json"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, `"reporter":"bob"`) || strings.Contains(s, "\x1b") {
		t.Fatalf("hushd reports show --store --json: %q", s)
	}
}
