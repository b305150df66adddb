package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestWebSocketProtocol checks the server's WebSocket against an
// independent implementation (coder/websocket): pings, fragmented
// messages, several frames in one message, binary and oversized messages.
func TestWebSocketProtocol(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	env.NewUser(t, "bob", 0)
	dial := func(h http.Header) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return websocket.Dial(ctx, "wss"+strings.TrimPrefix(env.URL, "https")+"/v1/ws",
			&websocket.DialOptions{HTTPClient: env.HTTP.Client(), HTTPHeader: h})
	}
	if _, resp, err := dial(nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without credential: %v", err)
	}
	h := http.Header{"Authorization": {"Bearer " + alice.Cred.Credential}}
	if _, resp, err := dial(http.Header{"Authorization": h["Authorization"], "Origin": {"https://evil.example"}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-origin dial: %v", err)
	}
	c, _, err := dial(h)
	check(t, err)
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c.SetReadLimit(1 << 22)
	read := func() string {
		_, b, err := c.Read(ctx)
		check(t, err)
		return string(b)
	}
	if got := read(); got != `{"type":"empty"}` {
		t.Fatalf("first frame %s", got)
	}
	// Ping needs a reader running: do it while the next read waits.
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(ctx) }()
	// A fragmented message holding two frames.
	w, err := c.Writer(ctx, websocket.MessageText)
	check(t, err)
	for _, part := range []string{`{"type":"send","reqId":1,"to":"bob","device":1,`, `"send":{"type":1,"content":"aGk="}}`,
		"\n", `{"type":"send","reqId":2,"to":"bob","device":1,"send":{"type":1,"content":"aGk="}}`} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	check(t, w.Close())
	var frames []string
	for len(frames) < 2 {
		frames = append(frames, strings.Split(read(), "\n")...)
	}
	if len(frames) != 2 || !strings.Contains(frames[0], `"reqId":1`) || !strings.Contains(frames[1], `"reqId":2`) || !strings.Contains(frames[1], `"type":"sent"`) {
		t.Fatalf("answers %q", frames)
	}
	select {
	case err := <-pinged:
		check(t, err)
	case <-time.After(wait):
		t.Fatal("no pong")
	}
	// A bad frame gets an error frame; the connection stays.
	check(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"bogus"}`)))
	if got := read(); !strings.Contains(got, `"`+api.CodeBadRequest+`"`) {
		t.Fatalf("answer to a bad frame: %s", got)
	}
	// Binary and oversized messages end the connection with the right code.
	check(t, c.Write(ctx, websocket.MessageBinary, []byte("x")))
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("after a binary message: %v", err)
	}
	c2, _, err := dial(h)
	check(t, err)
	defer c2.CloseNow()
	c2.Write(ctx, websocket.MessageText, make([]byte, 1<<20+1))
	for {
		if _, _, err := c2.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("after an oversized message: %v", err)
			}
			break
		}
	}
}

// TestIdleWebSocketOutlivesRequestTimeouts keeps a WebSocket idle for longer
// than the HTTP server's request deadlines, then uses it.
func TestIdleWebSocketOutlivesRequestTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the request timeout")
	}
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatal(f)
	}
	time.Sleep(servertest.RequestTimeout + time.Second)
	r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("still there?")})
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != r.ID {
		t.Fatalf("after idling: %+v", f)
	}
	check(t, conn.Ack(ctx, r.ID))
}
