package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// TestBackup backs up a running hushd's SQLite database with `hushd
// backup` while a sender keeps sending, restores the copy into a new data
// folder (with the certificate, as docs/operations.md says), and starts
// hushd on it: every message acknowledged before the backup began is
// delivered, once each, in order, with the credentials of before.
func TestBackup(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	p := start(t, "--addr", "127.0.0.1:0", "--data", data, "--limit-register", "0",
		"--limit-messages", "0", "--limit-messages-pair", "0", "--limit-bytes", "0")
	client := func(p *proc, cred string) *apiclient.Client {
		c, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint, Credential: cred, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	creds := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		c, err := client(p, "").Register(ctx, api.Register{Username: name, Password: "password1"})
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = c.Credential
	}

	// Alice sends without pause, in order, until told to stop.
	var mu sync.Mutex
	var acked []string
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		alice := client(p, creds["alice"])
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				sendErr <- nil
				return
			default:
			}
			content := fmt.Sprintf("m%05d", seq)
			if _, err := alice.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte(content)}); err != nil {
				sendErr <- err
				return
			}
			mu.Lock()
			acked = append(acked, content)
			mu.Unlock()
		}
	}()
	waitAcked := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ackedN() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d sends acknowledged, waiting for %d", ackedN(), n)
			}
		}
	}
	waitAcked(100)
	mu.Lock()
	before := append([]string(nil), acked...) // acknowledged before the backup began
	mu.Unlock()
	backupFile := filepath.Join(t.TempDir(), "hushd-backup.db")
	out, err := exec.Command(hushdBin, "backup", "--data", data, "--to", backupFile).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "backup: "+backupFile) {
		t.Fatalf("hushd backup: %v %s", err, out)
	}
	waitAcked(len(before) + 50) // the server went on meanwhile
	close(stop)
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	p.stop(t)

	// Bad input: clear error, nothing written, nothing created.
	orig, _ := os.ReadFile(backupFile)
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--data", data, "--to", backupFile}, "exists already", 1},
		{[]string{"--data", empty, "--to", filepath.Join(empty, "b.db")}, "no such file", 1},
		{[]string{"--data", data, "--to", filepath.Join(empty, "no", "b.db")}, "no such file", 1},
		{[]string{"--data", data}, "needs --to", 2},
	} {
		out, err := exec.Command(hushdBin, append([]string{"backup"}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("hushd backup %q: %v %s (want exit %d, %q)", tc.args, err, out, tc.code, tc.want)
		}
	}
	if left, _ := os.ReadDir(empty); len(left) != 0 {
		t.Errorf("a failed backup left %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(backupFile), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if now, _ := os.ReadFile(backupFile); !bytes.Equal(now, orig) {
		t.Error("a refused backup changed the existing file")
	}

	// How many messages the copy holds: at least those acknowledged
	// before it began.
	db, err := sql.Open("sqlite", "file:"+backupFile+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var inCopy int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&inCopy); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if inCopy < len(before) {
		t.Fatalf("the copy holds %d messages, %d were acknowledged before the backup began", inCopy, len(before))
	}

	// Restore: the copy becomes hushd.db of a new data folder, beside the
	// certificate and key, so that clients' pinned fingerprint still holds.
	restored := t.TempDir()
	for from, to := range map[string]string{
		backupFile: "hushd.db", filepath.Join(data, tlscert.CertFile): tlscert.CertFile, filepath.Join(data, tlscert.KeyFile): tlscert.KeyFile,
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(restored, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p2 := start(t, "--addr", "127.0.0.1:0", "--data", restored)
	if p2.fingerprint != p.fingerprint {
		t.Errorf("restored hushd presents %s, not %s", p2.fingerprint, p.fingerprint)
	}
	conn, err := client(p2, creds["bob"]).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ids := map[int64]bool{}
	var got []string
	for len(got) < inCopy {
		f, err := conn.Next(rctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), inCopy, err)
		}
		if f.Type != api.FrameMessage {
			continue
		}
		if ids[f.Msg.ID] {
			t.Fatalf("id %d delivered twice", f.Msg.ID)
		}
		ids[f.Msg.ID] = true
		got = append(got, string(f.Msg.Content))
		if err := conn.Ack(rctx, f.Msg.ID); err != nil {
			t.Fatal(err)
		}
	}
	// In order, and a prefix of what was acknowledged: before, then some
	// of what was sent during the backup.
	for i, c := range got {
		if want := fmt.Sprintf("m%05d", i); c != want {
			t.Fatalf("message %d of the restored mailbox is %s, want %s", i, c, want)
		}
	}
	t.Logf("%d acknowledged before the backup, %d in the copy", len(before), inCopy)
}
