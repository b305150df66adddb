package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestMain lets the test binary be the hush command: tests run "hush" as
// a separate process, the way people and scripts do.
func TestMain(m *testing.M) {
	slog.SetLogLoggerLevel(slog.LevelWarn) // the in-process server's logs
	testscript.Main(m, map[string]func(){"hush": main})
}

// hushd starts a server in this process, with its database in a folder of
// its own; the hush processes reach it over TLS on loopback.
type hushd struct {
	*servertest.Env
	Dir string
}

func startServer(t testing.TB) *hushd {
	t.Helper()
	dir := t.TempDir()
	return &hushd{Env: servertest.StartIn(t, server.Config{Limits: servertest.Generous}, dir), Dir: dir}
}

// home is one client's home folder.
type home struct {
	t    testing.TB
	dir  string
	name string
}

func newHome(t testing.TB, name string) *home {
	return &home{t: t, dir: filepath.Join(t.TempDir(), name), name: name}
}

func hushCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("hush", append([]string{"--home", dir}, args...)...)
	cmd.Env = append(os.Environ(), "HUSH_PASSWORD=password-for-tests")
	return cmd
}

// run runs hush in this home and returns its output and exit code.
func (h *home) run(args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	cmd := hushCmd(h.dir, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("running hush: %v", err)
	}
	return o.String(), e.String(), code
}

// must runs hush and fails the test unless it succeeds.
func (h *home) must(args ...string) string {
	h.t.Helper()
	o, e, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("hush %s (%s): exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), h.name, code, o, e)
	}
	return o
}

func (h *home) register(s *hushd) {
	h.t.Helper()
	h.must("register", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", h.name)
}

// lines parses JSON lines.
func lines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var ms []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		ms = append(ms, m)
	}
	return ms
}

// texts lists the "text" of the messages (not notices) among ms.
func texts(ms []map[string]any) []string {
	var out []string
	for _, m := range ms {
		if m["kind"] == "message" {
			out = append(out, m["text"].(string))
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSendTooLong: a message too long on standard input is reported with
// the limit, not with how much of it hush read (it said "1048576 bytes"
// for 10 MB). Nothing is read beyond the limit, and nothing is opened.
func TestSendTooLong(t *testing.T) {
	t.Parallel()
	h := newHome(t, "alice")
	for _, n := range []int{10 << 20, 1 << 20, 64<<10 + 2} {
		cmd := hushCmd(h.dir, "send", "--secret", "--to", "bob", "-")
		cmd.Stdin = bytes.NewReader(bytes.Repeat([]byte("x"), n))
		var e bytes.Buffer
		cmd.Stderr = &e
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%d bytes: %v, want exit status 2\n%s", n, err, e.String())
		}
		if !strings.Contains(e.String(), "standard input holds more than 65536 bytes; a message is at most 65536 bytes") {
			t.Errorf("%d bytes: %s", n, e.String())
		}
	}
	// Short of the read limit, the real size.
	cmd := hushCmd(h.dir, "send", "--secret", "--to", "bob", "-")
	cmd.Stdin = bytes.NewReader(bytes.Repeat([]byte("x"), 64<<10+1))
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "the message is 65537 bytes; the most is 65536") {
		t.Errorf("65537 bytes: %s", out)
	}
	// The most that fits, with its final newline, is not refused for its size.
	cmd = hushCmd(h.dir, "send", "--secret", "--to", "bob", "-")
	cmd.Stdin = bytes.NewReader(append(bytes.Repeat([]byte("x"), 64<<10), '\n'))
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "run hush register") {
		t.Errorf("64 KiB and a newline: %s", out)
	}
}
