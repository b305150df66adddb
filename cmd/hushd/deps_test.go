package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerStaysBlind checks the import graph: hushd and the server
// packages must not reach the session, ratchet or key agreement packages
// (the relay never decrypts), nor the testing helpers.
func TestServerStaysBlind(t *testing.T) {
	const mod = "github.com/hushmsg/hush/"
	forbidden := []string{"ratchet", "pqxdh", "session", "spqr", "wire", "internal/client"}
	pkgs := []string{mod + "cmd/hushd", mod + "internal/server/...", mod + "internal/api"}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, pkgs...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, _, _ := strings.Cut(line, " ")
		n++
		rel, ours := strings.CutPrefix(path, mod)
		if !ours {
			continue
		}
		for _, f := range forbidden {
			if rel == f || strings.HasPrefix(rel, f+"/") {
				t.Errorf("the server depends on %s", path)
			}
		}
	}
	if n < 50 {
		t.Fatalf("go list found only %d packages: the check is not looking", n)
	}
	// The binary itself must not link the test helpers.
	out, err = exec.Command("go", "list", "-deps", mod+"cmd/hushd").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "testing" || strings.HasSuffix(p, "/servertest") || strings.HasSuffix(p, "/storetest") {
			t.Errorf("hushd links %s", p)
		}
	}
}
