package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// certServer is a server whose certificate the test can replace, at the
// same address.
type certServer struct {
	URL   string
	certs [2]tls.Certificate
	fps   [2]string
	cur   atomic.Int32
}

func startCertServer(t *testing.T) *certServer {
	t.Helper()
	dir := t.TempDir()
	s := &certServer{}
	for i := range s.certs {
		var err error
		if s.certs[i], s.fps[i], err = tlscert.LoadOrCreate(filepath.Join(dir, "cert"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if s.fps[0] == s.fps[1] {
		t.Fatal("two certificates with one fingerprint")
	}
	st, err := sqlitestore.Open(filepath.Join(dir, "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, server.Config{Limits: servertest.Generous, Argon2Time: 1, Argon2MemoryKiB: 1024})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: httpapi.New(srv, httpapi.Options{}), TLSConfig: &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &s.certs[s.cur.Load()], nil }}}
	done := make(chan struct{})
	go func() { defer close(done); hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		hs.Close()
		<-done
		srv.Close()
		st.Close()
	})
	s.URL = "https://" + ln.Addr().String()
	return s
}

// TestCertificateChanged: when the server presents another certificate,
// every command says so plainly (not "cannot reach the server", not
// "queued"), and 'hush server repin' pins the new one only once the server
// presents it; the message sent meanwhile waited in the outbox and goes.
func TestCertificateChanged(t *testing.T) {
	t.Parallel()
	s := startCertServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	for _, h := range []*home{alice, bob} {
		h.must("register", "--server", s.URL, "--server-fingerprint", s.fps[0], "--user", h.name)
	}
	alice.must("send", "--secret", "--to", "bob", "before")
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"before"}) {
		t.Fatalf("bob got %q", got)
	}

	s.cur.Store(1) // the operator replaces the certificate, or someone intercepts
	for _, args := range [][]string{{"send", "--secret", "--to", "bob", "while it changed"}, {"recv"}, {"status"},
		{"device", "list"}, {"recv", "--follow"}} {
		o, e, code := alice.run(args...)
		if code != 1 || !strings.Contains(e, "the server presented a different certificate (fingerprint "+s.fps[1]+") from the one pinned for it ("+s.fps[0]+")") ||
			!strings.Contains(e, "the connection may be intercepted") || !strings.Contains(e, "hush server repin --server-fingerprint") ||
			strings.Contains(e, "cannot reach") || strings.Contains(e, "queued") || strings.Contains(o, "queued") {
			t.Errorf("hush %s with a changed certificate: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, o, e)
		}
	}

	// Mistakes: no fingerprint, a bad one (usage, 2); the old one, which
	// the server no longer presents (1). Nothing changes.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"server", "repin"}, 2, "--server-fingerprint HEX is required"},
		{[]string{"server", "repin", "--server-fingerprint", "abc"}, 2, "a certificate fingerprint is 64 hex digits"},
		{[]string{"server", "--server-fingerprint", s.fps[1]}, 2, "give repin"},
		{[]string{"server", "repin", "--server-fingerprint", s.fps[0]}, 1, "presents the certificate " + s.fps[1] + ", not " + s.fps[0] + ": nothing was changed"},
	} {
		if o, e, code := alice.run(c.args...); code != c.code || !strings.Contains(e, c.want) {
			t.Errorf("hush %s: exit %d, want %d and %q\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), code, c.code, c.want, o, e)
		}
	}
	if _, _, code := alice.run("status"); code != 1 {
		t.Fatalf("status after a refused repin: exit %d", code)
	}

	// The new fingerprint, with colons and in capitals as people copy it.
	colons := strings.ToUpper(s.fps[1][:2])
	for i := 2; i < len(s.fps[1]); i += 2 {
		colons += ":" + strings.ToUpper(s.fps[1][i:i+2])
	}
	if o := alice.must("server", "repin", "--server-fingerprint", colons); !strings.Contains(o, "it is pinned now (it was "+s.fps[0]+")") {
		t.Fatalf("repin: %s", o)
	}
	if o := alice.must("status", "--json"); !strings.Contains(o, `"server_fingerprint":"`+s.fps[1]+`"`) {
		t.Fatalf("status after repin: %s", o)
	}
	// Bob has not repinned yet; once he has, he gets what waited.
	if _, e, code := bob.run("recv"); code != 1 || !strings.Contains(e, "different certificate") {
		t.Fatalf("bob before his repin: %d %s", code, e)
	}
	bob.must("server", "repin", "--server-fingerprint", s.fps[1])
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"while it changed"}) {
		t.Fatalf("bob got %q after both repinned", got)
	}
}
