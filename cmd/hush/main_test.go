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
