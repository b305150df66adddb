package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDependencies checks the import graph: the hush binary links
// no server code (it speaks the API through internal/apiclient), and the
// engine and its store know nothing of presentation.
func TestClientDependencies(t *testing.T) {
	const mod = "github.com/hushmsg/hush/"
	deps := func(pkgs ...string) []string {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		return strings.Fields(string(out))
	}
	check := func(what string, got []string, forbidden ...string) {
		if len(got) < 30 {
			t.Fatalf("go list found only %d packages for %s: the check is not looking", len(got), what)
		}
		for _, d := range got {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", what, d)
				}
			}
		}
	}
	check("hush", deps(mod+"cmd/hush"), mod+"internal/server", mod+"internal/interop", "testing")
	check("the client engine", deps(mod+"internal/client/...", mod+"internal/content"),
		mod+"internal/server", mod+"internal/tui", "github.com/charmbracelet")
}
