package apiclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsNode is a TLS test server whose WebSocket sends {"type":"empty"} and
// then either keeps reading (answering pings, counted) or, silent, never
// reads again: a peer that is gone without closing.
func wsNode(t *testing.T, silent bool, pings *atomic.Int32) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OnPingReceived: func(context.Context, []byte) bool {
			pings.Add(1)
			return true
		}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		_ = ws.Write(r.Context(), websocket.MessageText, []byte(`{"type":"empty"}`))
		if silent {
			<-r.Context().Done()
			return
		}
		for {
			if _, _, err := ws.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func keepAliveConn(t *testing.T, s *httptest.Server) (*Conn, context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := cluster(t, Options{Fingerprint: fingerprintOf(s)}, s.URL)
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if f, err := conn.Next(ctx); err != nil || f.Type != "empty" {
		t.Fatalf("first frame %+v, %v", f, err)
	}
	go conn.KeepAlive(ctx, 20*time.Millisecond, 2*time.Second)
	return conn, ctx
}

// TestKeepAlivePings: a quiet connection is pinged, and stays up while
// the server answers.
func TestKeepAlivePings(t *testing.T) {
	var pings atomic.Int32
	conn, ctx := keepAliveConn(t, wsNode(t, false, &pings))
	next := make(chan error, 1)
	go func() { _, err := conn.Next(ctx); next <- err }()
	for pings.Load() < 3 {
		select {
		case err := <-next:
			t.Fatalf("the connection ended after %d pings: %v", pings.Load(), err)
		case <-ctx.Done():
			t.Fatalf("%d pings before the deadline", pings.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case err := <-next:
		t.Fatalf("the connection ended although every ping was answered: %v", err)
	default:
	}
}

// TestKeepAliveDeadPeer: a server that stops answering is found by the
// missing pong, and the pending Next fails (so the caller reconnects)
// instead of waiting for ever.
func TestKeepAliveDeadPeer(t *testing.T) {
	var pings atomic.Int32
	conn, ctx := keepAliveConn(t, wsNode(t, true, &pings))
	_, err := conn.Next(ctx)
	if err == nil {
		t.Fatal("Next returned a frame from a silent server")
	}
	if ctx.Err() != nil {
		t.Fatalf("Next waited until the test's deadline: %v", err)
	}
}
