package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hushdProc is the real hushd binary, running.
type hushdProc struct {
	cmd     *exec.Cmd
	url, fp string
	done    chan struct{}
}

var (
	fpLine     = regexp.MustCompile(`^fingerprint: ([0-9a-f]{64})$`)
	listenLine = regexp.MustCompile(`^listening: (https://\S+)$`)
)

func startHushd(t testing.TB, bin, data, addr string) *hushdProc {
	t.Helper()
	return startHushdArgs(t, bin, "--addr", addr, "--data", data)
}

// startHushdArgs runs hushd with args, fast password hashing and no
// registration limit, and waits until it listens.
func startHushdArgs(t testing.TB, bin string, args ...string) *hushdProc {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--log-level", "warn",
		"--limit-register", "0", "--argon2-time", "1", "--argon2-memory", "1024")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &hushdProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	sc := bufio.NewScanner(out)
	deadline := time.After(30 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for p.url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("hushd exited before listening")
			}
			if m := fpLine.FindStringSubmatch(l); m != nil {
				p.fp = m[1]
			}
			if m := listenLine.FindStringSubmatch(l); m != nil {
				p.url = m[1]
			}
		case <-deadline:
			t.Fatal("hushd did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

func (p *hushdProc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("hushd did not stop")
	}
}

// TestWithHushd runs the conversation against the hushd binary itself,
// stopped and started again while a backlog waits for bob.
func TestWithHushd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds hushd")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build hushd")
	}
	bin := filepath.Join(t.TempDir(), "hushd")
	if out, err := exec.Command("go", "build", "-o", bin, "../hushd").CombinedOutput(); err != nil {
		t.Fatalf("building hushd: %v\n%s", err, out)
	}
	data := t.TempDir()
	p := startHushd(t, bin, data, "127.0.0.1:0")
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	for _, h := range []*home{alice, bob} {
		h.must("register", "--server", p.url, "--server-fingerprint", p.fp, "--user", h.name)
	}
	alice.must("send", "--secret", "--to", "bob", "before the restart")
	bob.must("recv")
	bob.must("send", "--secret", "--to", "alice", "answer")
	alice.must("recv")
	alice.must("send", "--secret", "--to", "bob", "waiting through a restart")
	p.stop(t)
	if _, e, code := alice.run("send", "--secret", "--to", "bob", "while it is down"); code != 1 || !strings.Contains(e, "queued") {
		t.Fatalf("send while hushd is down: %d %s", code, e)
	}
	p = startHushd(t, bin, data, strings.TrimPrefix(p.url, "https://"))
	alice.must("send", "--secret", "--to", "bob", "after the restart") // sends the queued one first
	got := texts(lines(t, bob.must("recv", "--json")))
	if want := []string{"waiting through a restart", "while it is down", "after the restart"}; !equal(got, want) {
		t.Fatalf("bob got %q, want %q", got, want)
	}
}
