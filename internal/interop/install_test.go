package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallShared installs one peer from four processes at once into an
// empty cache, as two go test runs at once do: npm runs once, and every
// process gets the same complete folder.
func TestInstallShared(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("needs npm (not found)")
	}
	// A package without dependencies (npm needs no network), whose
	// postinstall counts the installs.
	src, cache, count := t.TempDir(), filepath.Join(t.TempDir(), "cache"), filepath.Join(t.TempDir(), "count")
	for f, s := range map[string]string{
		"package.json": `{"name": "fake-peer", "version": "1.0.0", "private": true,
  "scripts": {"postinstall": "node -e \"require('fs').appendFileSync(process.env.HUSH_INSTALL_COUNT, 'x')\""}}`,
		"package-lock.json": `{"name": "fake-peer", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {"": {"name": "fake-peer", "version": "1.0.0", "hasInstallScript": true}}}`,
		"peer.mjs": "console.log('{}');\n",
	} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 4 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestInstallSharedChild$")
		cmd.Env = append(os.Environ(), "HUSH_INSTALL_CACHE="+cache, "HUSH_INSTALL_SRC="+src, "HUSH_INSTALL_COUNT="+count)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	var dirs []string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
		_, dir, ok := strings.Cut(outs[i].String(), "installed in ")
		if !ok {
			t.Fatalf("process %d said:\n%s", i, outs[i])
		}
		dirs = append(dirs, strings.TrimSpace(strings.SplitN(dir, "\n", 2)[0]))
	}
	for i, d := range dirs {
		if d != dirs[0] {
			t.Errorf("process %d installed in %s, process 0 in %s", i, d, dirs[0])
		}
	}
	for _, f := range peerFiles {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Error(err)
		}
	}
	if b, err := os.ReadFile(count); err != nil || string(b) != "x" {
		t.Errorf("npm installed %q times (%v), want once", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".install-*")); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestInstallSharedChild is one of TestInstallShared's processes.
func TestInstallSharedChild(t *testing.T) {
	cache := os.Getenv("HUSH_INSTALL_CACHE")
	if cache == "" {
		t.Skip("run by TestInstallShared")
	}
	dir, out, err := installPeer(cache, os.Getenv("HUSH_INSTALL_SRC"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fmt.Printf("installed in %s\n", dir)
}
