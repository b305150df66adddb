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
	"github.com/hushmsg/hush/spqr",
	"github.com/hushmsg/hush/session",
	"github.com/hushmsg/hush/senderkey",
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

const mod = "github.com/hushmsg/hush/"

// serverPackages are hushd. The server is a blind relay: it never
// decrypts, so it must not reach the protocol's session layer, nor the
// client.
var serverPackages = []string{mod + "cmd/hushd", mod + "internal/server/..."}

// serverForbidden are what the server must never reach. (It may use key,
// to check prekey signatures.)
var serverForbidden = []string{
	mod + "session", mod + "senderkey", mod + "ratchet", mod + "pqxdh", mod + "spqr", mod + "wire", mod + "fingerprint",
	mod + "internal/client", mod + "internal/tui", mod + "cmd/hush",
}

// clientPackages are the hush client and its front ends.
var clientPackages = []string{mod + "internal/client/...", mod + "internal/tui", mod + "cmd/hush"}

// clientForbidden are what the client must never reach: it talks to the
// server over the API (internal/api, internal/apiclient) only.
var clientForbidden = []string{mod + "internal/server", mod + "cmd/hushd"}

// deps lists the packages pkgs reach (themselves included), failing if a
// pattern matches nothing, so that a moved package cannot empty a check.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	for _, p := range pkgs {
		out, err := exec.Command("go", "list", p).Output()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			t.Fatalf("go list %s matches no package (%v): fix the list in deps_test.go", p, err)
		}
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// under reports whether package p is pkg or inside it.
func under(p, pkg string) bool {
	pkg = strings.TrimSuffix(pkg, "/")
	return p == pkg || strings.HasPrefix(p, pkg+"/")
}

func TestServerStaysBlind(t *testing.T) {
	for _, d := range deps(t, serverPackages...) {
		for _, bad := range serverForbidden {
			if under(d, bad) {
				t.Errorf("the server reaches %s", d)
			}
		}
	}
	// The binary must not link the test helpers.
	for _, d := range deps(t, mod+"cmd/hushd") {
		if d == "testing" || strings.HasSuffix(d, "/servertest") || strings.HasSuffix(d, "/storetest") {
			t.Errorf("hushd links %s", d)
		}
	}
}

func TestClientReachesNoServer(t *testing.T) {
	for _, d := range deps(t, clientPackages...) {
		for _, bad := range clientForbidden {
			if under(d, bad) {
				t.Errorf("the client reaches %s", d)
			}
		}
	}
}

func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func TestCoreDependencies(t *testing.T) {
	for _, d := range deps(t, corePackages...) {
		for _, bad := range coreForbidden {
			if under(d, bad) {
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

// purePackages are the client's cryptography of issue 9, the content
// message (docs/multidevice.md) and the group log of issue 10
// (docs/groups.md): pure functions of their inputs, with no
// network, no store and no other process, so that they can be tested and
// fuzzed alone.
var purePackages = []string{mod + "internal/content", mod + "internal/link", mod + "internal/history",
	mod + "internal/secretcode", mod + "internal/strictjson", mod + "internal/grouplog"}

// pureForbidden are what they must never reach ("os" they do, through fmt).
var pureForbidden = []string{
	"net", "net/http", "database/sql", "os/exec",
	mod + "internal/server", mod + "internal/client", mod + "internal/apiclient", mod + "internal/tui", mod + "cmd/",
}

func TestPurePackages(t *testing.T) {
	for _, d := range deps(t, purePackages...) {
		for _, bad := range pureForbidden {
			if under(d, bad) {
				t.Errorf("a pure package reaches %s", d)
			}
		}
	}
}
