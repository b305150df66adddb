package connlimit_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/connlimit"
)

func TestKey(t *testing.T) {
	key := func(s string) netip.Prefix {
		p, ok := connlimit.Key(&net.TCPAddr{IP: net.ParseIP(s), Port: 1})
		if !ok {
			t.Fatalf("no key for %s", s)
		}
		return p
	}
	if key("2001:db8::1") != key("2001:db8::ffff:1:2") {
		t.Error("two addresses of one IPv6 /64 count apart")
	}
	if key("2001:db8::1") == key("2001:db8:0:1::1") {
		t.Error("two IPv6 /64s count as one")
	}
	if key("192.0.2.1") == key("192.0.2.2") {
		t.Error("two IPv4 addresses count as one")
	}
	if key("::ffff:192.0.2.1") != key("192.0.2.1") {
		t.Error("an IPv4-mapped address counts apart from its IPv4 address")
	}
}

// serve runs an HTTP server on a limited listener with /healthz, /metrics
// and /v1/x, and returns its address.
func serve(t *testing.T, lim connlimit.Limits) (*connlimit.Listener, string) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := connlimit.Wrap(raw, lim)
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/metrics", "/v1/x"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	hs := &http.Server{Handler: connlimit.Guard(mux, "/healthz", "/metrics"), ConnContext: connlimit.ConnContext}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln, raw.Addr().String()
}

// dialFrom opens an idle TCP connection from the local address from.
func dialFrom(t *testing.T, from, to string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.DialContext(t.Context(), "tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused reports whether the server closes c (within a generous
// deadline), without sending a byte.
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// waitCount polls until the listener counts want connections in all.
func waitCount(t *testing.T, ln *connlimit.Listener, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n := ln.Count(netip.Prefix{}); n == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("listener counts %d connections, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, from, addr, path string) (int, error) {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+path, nil)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestPerAddress (issue 14, finding 9): one address cannot hold more than
// its share of connections; another address is not affected, and a
// closed connection gives its place back.
func TestPerAddress(t *testing.T) {
	ln, addr := serve(t, connlimit.Limits{PerAddr: 3})
	var held []net.Conn
	for range 3 {
		held = append(held, dialFrom(t, "127.0.0.1", addr))
	}
	waitCount(t, ln, 3)
	for range 20 { // a flood from the same address
		if c := dialFrom(t, "127.0.0.1", addr); !refused(t, c) {
			t.Fatal("a connection over the per-address limit was kept")
		}
	}
	dialFrom(t, "127.0.0.2", addr)
	waitCount(t, ln, 4) // another address is taken; the first three stay
	held[0].Close()
	waitCount(t, ln, 3) // 127.0.0.1: 2, 127.0.0.2: 1
	if code, err := get(t, "127.0.0.1", addr, "/v1/x"); err != nil || code != 200 {
		t.Fatalf("after a close, a new connection got %d %v", code, err)
	}
}

// TestReserve (issue 14, finding 9): when the server is full, health and
// metrics requests still get through on the reserve, and nothing else.
func TestReserve(t *testing.T) {
	ln, addr := serve(t, connlimit.Limits{Total: 10, Reserve: 2})
	for i := range 10 { // idle connections from many addresses fill it
		dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}).String(), addr)
	}
	waitCount(t, ln, 10)
	for _, p := range []string{"/healthz", "/metrics"} {
		if code, err := get(t, "127.0.0.1", addr, p); err != nil || code != 200 {
			t.Fatalf("%s on a full server: %d %v", p, code, err)
		}
	}
	if code, err := get(t, "127.0.0.1", addr, "/v1/x"); err != nil || code != 503 {
		t.Fatalf("/v1/x on a reserve connection: %d %v, want 503", code, err)
	}
	waitCount(t, ln, 10) // reserve connections are closed after their answer
	// The reserve itself is bounded.
	dialFrom(t, "127.0.0.1", addr)
	dialFrom(t, "127.0.0.1", addr)
	waitCount(t, ln, 12)
	if c := dialFrom(t, "127.0.0.1", addr); !refused(t, c) {
		t.Fatal("a connection beyond the reserve was kept")
	}
}
