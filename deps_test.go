package hush

import (
	"os/exec"
	"strings"
	"testing"
)

// This is a statement of policy, as Go's own go/build/deps_test.go: the
// protocol core must stay a small library that imports no application code,
// no network or database code, and only the few modules chosen for it. Do
// not change this list to fix a build; change the import.

// corePackages are hush's Signal Protocol library.
var corePackages = []string{
	"github.com/hushmsg/hush/key",
	"github.com/hushmsg/hush/wire",
	"github.com/hushmsg/hush/pqxdh",
	"github.com/hushmsg/hush/ratchet",
	"github.com/hushmsg/hush/session",
	"github.com/hushmsg/hush/fingerprint",
}

// coreModules are the only modules outside the standard library that the
// core may reach.
var coreModules = []string{
	"github.com/hushmsg/hush/",     // itself, within the limits below
	"filippo.io/edwards25519",      // XEdDSA
	"github.com/cloudflare/circl/", // round-3 Kyber1024, and K-PKE for SPQR
	"golang.org/x/sys/",            // circl's CPU feature detection
	"google.golang.org/protobuf/",  // wire and storage formats
}

// coreForbidden are packages the core must never reach.
var coreForbidden = []string{
	"net/http", "net", "database/sql", "os/exec",
	"github.com/hushmsg/hush/internal/server",
	"github.com/hushmsg/hush/internal/client",
	"github.com/hushmsg/hush/cmd/",
}

func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func TestCoreDependencies(t *testing.T) {
	for _, d := range deps(t, corePackages...) {
		for _, bad := range coreForbidden {
			if d == bad || strings.HasPrefix(d, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("the protocol core imports %s", d)
			}
		}
		if isStd(d) {
			continue
		}
		ok := false
		for _, m := range coreModules {
			if strings.HasPrefix(d, m) || d == strings.TrimSuffix(m, "/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the protocol core imports %s, which is not an allowed module", d)
		}
	}
}
