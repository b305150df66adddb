package apiclient

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/server/tlscert"
)

// resumeNode is a TLS server configured as hushd is: its certificate,
// and the session ticket key derived from it. It answers any request and
// the WebSocket, and counts the connections that resumed a session.
type resumeNode struct {
	*httptest.Server
	full, resumed atomic.Int32
}

func newResumeNode(t *testing.T, cert tls.Certificate) *resumeNode {
	t.Helper()
	n := &resumeNode{}
	n.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/ws" {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer ws.CloseNow()
			_ = ws.Write(r.Context(), websocket.MessageText, []byte(`{"type":"empty"}`))
			_, _, _ = ws.Read(r.Context())
			return
		}
		w.Write([]byte(`{}`))
	}))
	key, err := tlscert.SessionTicketKey(cert)
	if err != nil {
		t.Fatal(err)
	}
	n.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				n.resumed.Add(1)
			} else {
				n.full.Add(1)
			}
			return nil
		}}
	n.TLS.SetSessionTicketKeys([][32]byte{key})
	n.StartTLS()
	t.Cleanup(n.Close)
	return n
}

// TestResume (issue 12): a client resumes its TLS session on the node it
// had it from and on another node of the cluster (same certificate, hence
// same ticket key), over HTTP and WebSocket; a node with another
// certificate cannot resume it and is refused by the pin as before.
func TestResume(t *testing.T) {
	ctx := context.Background()
	certA, fp, err := tlscert.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certB, _, err := tlscert.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b := newResumeNode(t, certA), newResumeNode(t, certA), newResumeNode(t, certB)

	c := cluster(t, Options{Fingerprint: fp}, a1.URL, a2.URL)
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.CloseIdle()
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); err != nil {
		t.Fatal(err)
	}
	if a1.full.Load() != 1 || a1.resumed.Load() != 1 {
		t.Fatalf("node 1: %d full handshakes, %d resumed; want 1 and 1", a1.full.Load(), a1.resumed.Load())
	}

	// Node 1 dies: node 2 resumes the session node 1 made, over HTTP and
	// over the WebSocket.
	a1.Close()
	c.CloseIdle()
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseNow()
	if a2.full.Load() != 0 || a2.resumed.Load() != 2 {
		t.Fatalf("node 2: %d full handshakes, %d resumed; want 0 and 2", a2.full.Load(), a2.resumed.Load())
	}

	// A client of node 2 and of a node with another certificate: node 2
	// dies, the other node gets the session's ticket, cannot resume it,
	// and its certificate is refused.
	c = cluster(t, Options{Fingerprint: fp}, a2.URL, b.URL)
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); err != nil {
		t.Fatal(err)
	}
	a2.Close()
	c.CloseIdle()
	var ce *CertificateError
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); !errors.As(err, &ce) {
		t.Fatalf("HTTP to another certificate: %v, want a certificate error", err)
	}
	if _, err := c.Connect(ctx); !errors.As(err, &ce) {
		t.Fatalf("WebSocket to another certificate: %v, want a certificate error", err)
	}
	if b.resumed.Load() != 0 || b.full.Load() == 0 {
		t.Fatalf("other node: %d full handshakes, %d resumed; want some and 0", b.full.Load(), b.resumed.Load())
	}
}
