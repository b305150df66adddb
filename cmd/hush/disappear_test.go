package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/hushmsg/hush/internal/testutil"
)

// follower is a running "hush recv --follow --json".
type follower struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func follow(t *testing.T, h *home) *follower {
	t.Helper()
	cmd := hushCmd(h.dir, "recv", "--follow", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
	}()
	go func() { cmd.Wait(); close(f.done) }()
	t.Cleanup(func() { f.cmd.Process.Kill(); <-f.done })
	return f
}

// next waits for the next line.
func (f *follower) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			t.Fatal("hush recv --follow ended")
		}
		return l
	case <-time.After(d):
		t.Fatalf("no line from hush recv --follow in %v", d)
	}
	return ""
}

func (f *follower) stop(t *testing.T) {
	t.Helper()
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("hush recv --follow did not stop on SIGTERM")
	}
	if c := f.cmd.ProcessState.ExitCode(); c != 0 {
		t.Fatalf("hush recv --follow exited %d after SIGTERM", c)
	}
}

// sealedBody reads a message's body as stored (sealed) in a home's
// database, found by its message id.
func sealedBody(t *testing.T, dir, id string) []byte {
	t.Helper()
	mid, err := hex.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "hush.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b []byte
	if err := db.QueryRow("SELECT body FROM messages WHERE msg_id = ?", mid).Scan(&b); err != nil {
		t.Fatalf("reading the sealed body in %s: %v", dir, err)
	}
	return b
}

// filesContaining lists the files under the dirs that contain any of the
// needles, reading every byte.
func filesContaining(t *testing.T, needles [][]byte, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					found = append(found, p)
					break
				}
			}
			return nil
		})
	}
	return found
}

// TestDisappearing: a message with a 5 s timer is deleted on both sides
// when its time is up, and then neither its text nor its sealed form is in
// any file of either home (database, WAL, anything), nor its text in the
// server's folder.
func TestDisappearing(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	alice.must("send", "--secret", "--to", "bob", "warm-up")
	bob.must("recv")
	bob.must("send", "--secret", "--to", "alice", "warm-up reply")
	alice.must("recv")

	secret := "disappearing-" + hex.EncodeToString([]byte(time.Now().String()))[:16]
	fb := follow(t, bob)
	fa := follow(t, alice)
	sent := lines(t, alice.must("send", "--secret", "--to", "bob", "--timer", "5s", "--json", secret))[0]
	sentExp := int64(sent["expires_at"].(float64))
	got := lines(t, fb.next(t, 10*time.Second))[0]
	if got["text"] != secret || got["timer"].(float64) != 5 {
		t.Fatalf("bob got %v", got)
	}
	// Bob's countdown started when recv printed the message, after alice's.
	recvExp := int64(got["expires_at"].(float64))
	if d := time.Until(time.UnixMilli(recvExp)); recvExp < sentExp || d > 5*time.Second {
		t.Fatalf("bob's countdown ends at %d (in %v), alice's at %d", recvExp, d, sentExp)
	}
	// It is stored (sealed) on both sides, and the test can see it.
	needles := [][]byte{[]byte(secret), sealedBody(t, alice.dir, sent["id"].(string)), sealedBody(t, bob.dir, got["id"].(string))}
	if f := filesContaining(t, needles[1:], alice.dir, bob.dir); len(f) == 0 {
		t.Fatal("the sealed bodies are not found in the homes before expiry: the search is broken")
	}
	if f := filesContaining(t, needles[:1], alice.dir, bob.dir); len(f) != 0 {
		t.Fatalf("the text is stored in the clear in %v", f)
	}
	hist := lines(t, alice.must("history", "--json", "bob"))
	if texts(hist)[len(texts(hist))-1] != secret {
		t.Fatalf("alice's history before expiry: %v", hist)
	}

	// Both followers delete it when its time is up (they look every
	// second; a loaded machine gets some slack).
	last := time.UnixMilli(max(sentExp, recvExp))
	time.Sleep(time.Until(last)) // not a guess: the moment it is due
	testutil.Eventually(t, 10*time.Second, func() error {
		if f := filesContaining(t, needles, alice.dir, bob.dir); len(f) != 0 {
			return fmt.Errorf("with hush running, the message is still in %v since its time was up", f)
		}
		return nil
	})
	t.Logf("gone from every file %v after its time was up", time.Since(last).Round(time.Millisecond))
	fa.stop(t)
	fb.stop(t)
	if f := filesContaining(t, needles, alice.dir, bob.dir); len(f) != 0 {
		t.Fatalf("after expiry and exit, the message is still in %v", f)
	}
	if f := filesContaining(t, needles[:1], s.Dir); len(f) != 0 {
		t.Fatalf("the text is in the server's files %v", f)
	}
	for _, h := range []*home{alice, bob} {
		for _, m := range lines(t, h.must("history", "--json", map[string]string{"alice": "bob", "bob": "alice"}[h.name])) {
			if m["text"] == secret {
				t.Fatalf("%s's history still shows it", h.name)
			}
		}
	}
}

// TestExpiryWhileStopped: a message whose time runs out while no hush runs
// is deleted by the next command, before it does anything else.
func TestExpiryWhileStopped(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	secret := "short-lived-" + hex.EncodeToString([]byte(time.Now().String()))[:12]
	sent := lines(t, alice.must("send", "--secret", "--to", "bob", "--timer", "5s", "--json", secret))[0]
	sealed := sealedBody(t, alice.dir, sent["id"].(string))
	got := lines(t, bob.must("recv", "--json"))[0]
	bsealed := sealedBody(t, bob.dir, got["id"].(string))
	time.Sleep(time.Until(time.UnixMilli(int64(got["expires_at"].(float64))))) // not a guess: the moment it is due
	// From then on, any command deletes it (the millisecond of the
	// deadline itself may still see it).
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, h := range []*home{alice, bob} {
			if out := h.must("list"); !strings.Contains(out, "secret") {
				t.Fatalf("list: %s", out)
			}
		}
		if f := filesContaining(t, [][]byte{[]byte(secret), sealed, bsealed}, alice.dir, bob.dir); len(f) != 0 {
			return fmt.Errorf("after expiry and a command, the message is still in %v", f)
		}
		return nil
	})
}
