package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deadURL is the URL of a node that is gone: nothing listens there.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "https://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestSeveralServers: a home registered with a dead node's URL before a
// live one works, shows both and goes on through the live one; mistakes in
// the list are refused whole, before anything is made; 'settings servers'
// changes the list, refuses a node that presents another certificate, and
// keeps one that cannot be reached with a warning.
func TestSeveralServers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dead := deadURL(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.must("register", "--server", dead+","+s.URL+"/", "--server-fingerprint", s.Fingerprint, "--user", "alice")
	bob.register(s)
	alice.must("send", "--to", "bob", "through the live node")
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"through the live node"}) {
		t.Fatalf("bob got %q", got)
	}
	st := lines(t, alice.must("--json", "status"))[0]
	if st["server"] != s.URL || len(st["servers"].([]any)) != 2 || st["servers"].([]any)[0] != dead || st["servers"].([]any)[1] != s.URL {
		t.Fatalf("status: %v", st)
	}
	if o := alice.must("status"); !strings.Contains(o, "alice, device 1 on "+dead+", "+s.URL) || !strings.Contains(o, "Through "+s.URL) {
		t.Fatalf("status: %s", o)
	}
	// The hint remembers the live node for the next command.
	if b, err := os.ReadFile(filepath.Join(alice.dir, "server")); err != nil || !strings.HasPrefix(string(b), s.URL+"\n") {
		t.Fatalf("hint %q %v", b, err)
	}

	// Mistakes: refused as usage (exit 2), and no home is made.
	other := startCertServer(t)
	for _, c := range []struct{ list, want string }{
		{"http://" + strings.TrimPrefix(s.URL, "https://"), "plain http"},
		{s.URL + "," + s.URL, "given twice"},
		{s.URL + ",", "is empty"},
		{s.URL + ",https://a:1/v1", "without a path"},
		{s.URL + ",https://a:1\x1b[2J", "control characters"},
		{"not a url", "https://HOST:PORT"},
		{strings.TrimSuffix(strings.Repeat(s.URL+",", 9), ","), "at most 8"},
	} {
		h := newHome(t, "carol")
		o, e, code := h.run("register", "--server", c.list, "--server-fingerprint", s.Fingerprint, "--user", "carol")
		if code != 2 || !strings.Contains(e, c.want) || strings.Contains(e, "\x1b") {
			t.Errorf("register --server %q: exit %d, want 2 and %q\nstdout: %s\nstderr: %q", c.list, code, c.want, o, e)
		}
		if _, err := os.Stat(h.dir); !os.IsNotExist(err) {
			t.Errorf("register --server %q made the home: %v", c.list, err)
		}
	}
	// Nodes presenting two certificates cannot be confirmed as one.
	o, e, code := newHome(t, "carol").run("register", "--server", s.URL+","+other.URL, "--user", "carol")
	if code != 1 || !strings.Contains(e, "the servers present different certificates") {
		t.Fatalf("register with two certificates: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}

	// settings servers: another certificate refuses the list; nothing changes.
	if o, e, code := alice.run("settings", "servers", s.URL+","+other.URL); code != 1 || !strings.Contains(e, "presents the certificate "+other.fps[0]+", not "+s.Fingerprint) {
		t.Fatalf("settings servers with another certificate: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
	if _, e, code := alice.run("settings", "servers", "http://a:1"); code != 2 || !strings.Contains(e, "plain http") {
		t.Fatalf("settings servers http: exit %d %s", code, e)
	}
	if _, e, code := alice.run("settings", "servers", deadURL(t)); code != 1 || !strings.Contains(e, "none of the servers could be reached") {
		t.Fatalf("settings servers, all dead: exit %d %s", code, e)
	}
	if got := lines(t, alice.must("--json", "settings"))[0]["servers"].([]any); len(got) != 2 || got[0] != dead {
		t.Fatalf("servers after refused changes: %v", got)
	}
	dead2 := deadURL(t)
	o, e = alice.mustErr("settings", "servers", s.URL+", "+dead2)
	if !strings.Contains(o, "servers: "+s.URL+", "+dead2) || !strings.Contains(e, dead2+" could not be reached; it is kept") {
		t.Fatalf("settings servers: %s\n%s", o, e)
	}
	alice.must("send", "--to", "bob", "after the change")
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"after the change"}) {
		t.Fatalf("bob got %q", got)
	}
	if o := alice.must("status", "--json"); !strings.Contains(o, `"servers":["`+s.URL+`","`+dead2+`"]`) {
		t.Fatalf("status: %s", o)
	}
	// repin checks each node reached: the dead one is skipped, the live one
	// must present the new certificate.
	if o := alice.must("server", "repin", "--server-fingerprint", s.Fingerprint); !strings.Contains(o, s.URL+", "+dead2+" present (each one reached) the pinned certificate") {
		t.Fatalf("repin: %s", o)
	}
	if _, e, code := alice.run("server", "repin", "--server-fingerprint", other.fps[0]); code != 1 || !strings.Contains(e, "the server "+s.URL+" presents the certificate "+s.Fingerprint+", not "+other.fps[0]) {
		t.Fatalf("repin to a certificate no node presents: exit %d %s", code, e)
	}
}

// mustErr is must, also returning standard error.
func (h *home) mustErr(args ...string) (stdout, stderr string) {
	h.t.Helper()
	o, e, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("hush %s (%s): exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), h.name, code, o, e)
	}
	return o, e
}
