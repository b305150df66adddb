package connlimit_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/connlimit"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// serveTLS runs an HTTPS server as hushd does (cmd/hushd): connection
// limits under a TLS listener with h's handshake slots, /v1/x and /healthz
// served; headerTimeout is the server's ReadHeaderTimeout.
func serveTLS(t *testing.T, lim connlimit.Limits, h connlimit.Handshakes, headerTimeout time.Duration) (*connlimit.Listener, string) {
	t.Helper()
	cert, _, err := tlscert.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := connlimit.Wrap(raw, lim)
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/v1/x"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	hs := &http.Server{Handler: connlimit.Guard(mux, "/healthz"), ConnContext: connlimit.ConnContext, ReadHeaderTimeout: headerTimeout}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	go hs.Serve(connlimit.NewTLSListener(ln, cfg, h))
	t.Cleanup(func() { hs.Close() })
	return ln, raw.Addr().String()
}

// getTLS makes one HTTPS request on a new connection.
func getTLS(t *testing.T, addr, path string) (int, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+addr+path, nil)
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// clientHello returns the bytes of a TLS 1.3 ClientHello, as a client
// sends them first.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}).Handshake()
	rec := make([]byte, 5)
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	rec = append(rec, make([]byte, int(rec[3])<<8|int(rec[4]))...)
	if _, err := io.ReadFull(b, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestHandshakeFlood (issue 12): with one handshake slot, connections that
// send nothing, part of a ClientHello, or a ClientHello and then nothing
// more do not keep a client from connecting: a slot is taken only once a
// ClientHello is in, and given back once the server's side of the
// handshake is sent.
func TestHandshakeFlood(t *testing.T) {
	ln, addr := serveTLS(t, connlimit.Limits{}, connlimit.Handshakes{Slots: 1, Wait: 20 * time.Second}, time.Minute)
	hello := clientHello(t)
	for range 20 {
		dialFrom(t, "127.0.0.1", addr) // nothing
		c := dialFrom(t, "127.0.0.1", addr)
		if _, err := c.Write(hello[:len(hello)/2]); err != nil { // part of a ClientHello
			t.Fatal(err)
		}
	}
	for range 5 { // a ClientHello, the server's answer read, and nothing more
		c := dialFrom(t, "127.0.0.1", addr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatalf("no ServerHello for a ClientHello: %v", err)
		}
	}
	waitCount(t, ln, 45)
	for range 3 {
		if code, err := getTLS(t, addr, "/v1/x"); err != nil || code != 200 {
			t.Fatalf("a client beside the flood got %d %v", code, err)
		}
	}
}

// TestHandshakeIdleClosed: a connection that never sends its ClientHello
// is closed by the server's header deadline, which the TLS listener leaves
// in force, and gives its place back.
func TestHandshakeIdleClosed(t *testing.T) {
	ln, addr := serveTLS(t, connlimit.Limits{}, connlimit.Handshakes{Slots: 1}, 100*time.Millisecond)
	c := dialFrom(t, "127.0.0.1", addr)
	if _, err := c.Write(clientHello(t)[:3]); err != nil {
		t.Fatal(err)
	}
	if !refused(t, c) {
		t.Fatal("a connection with part of a ClientHello was kept past the deadline")
	}
	waitCount(t, ln, 0)
}

// TestHandshakeReserve: behind the TLS listener, connections beyond the
// limit are still recognized as taken from the reserve (ConnContext looks
// through it).
func TestHandshakeReserve(t *testing.T) {
	ln, addr := serveTLS(t, connlimit.Limits{Total: 2, Reserve: 2}, connlimit.Handshakes{}, time.Minute)
	dialFrom(t, "127.0.0.2", addr)
	dialFrom(t, "127.0.0.3", addr)
	waitCount(t, ln, 2)
	if code, err := getTLS(t, addr, "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz on a full server: %d %v", code, err)
	}
	if code, err := getTLS(t, addr, "/v1/x"); err != nil || code != 503 {
		t.Fatalf("/v1/x on a reserve connection: %d %v, want 503", code, err)
	}
}
