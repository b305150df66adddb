package httpapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/testutil"
)

// TestWebSocketProtocol checks the server's WebSocket against an
// independent implementation (coder/websocket): pings, fragmented
// messages, several frames in one message, binary and oversized messages.
func TestWebSocketProtocol(t *testing.T) {
	ctx := t.Context()
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
	ctx := t.Context()
	if testing.Short() {
		t.Skip("waits for the request timeout")
	}
	env := servertest.StartShort(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	idleFrom := time.Now()
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatal(f)
	}
	if runtime.GOOS == "linux" {
		// Parked once the default linger (2 s) is over.
		testutil.Eventually(t, wait, func() error {
			if n := env.Handler.Parked(); n != 1 {
				return fmt.Errorf("%d connections parked, want 1", n)
			}
			return nil
		})
	}
	// The idle time is what the test is about, not a guess: it ends a
	// second after the server's request deadlines have passed.
	time.Sleep(time.Until(idleFrom.Add(servertest.ShortRequestTimeout + time.Second)))
	r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("still there?")})
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != r.ID {
		t.Fatalf("after idling: %+v", f)
	}
	check(t, conn.Ack(ctx, r.ID))
}

// TestParkedConnections: idle WebSockets are parked (they hold no
// goroutine), are resumed for every message they send, take deliveries
// while parked, and end cleanly when the server closes them.
func TestParkedConnections(t *testing.T) {
	ctx := t.Context()
	const n = 20
	env := servertest.StartWith(t, server.Config{Limits: servertest.Generous}, t.TempDir(), httpapi.Options{Linger: -1})
	alice := env.NewUser(t, "alice", 0)
	conns := make([]*apiclient.Conn, n)
	for i := range conns {
		u := env.NewUser(t, fmt.Sprint("user", i), 0)
		c, err := u.C.Connect(ctx)
		check(t, err)
		defer c.Close()
		if f := servertest.Recv(t, c, wait); f.Type != api.FrameEmpty {
			t.Fatalf("first frame %+v", f)
		}
		conns[i] = c
	}
	waitParked := func(want int) {
		t.Helper()
		if runtime.GOOS != "linux" {
			return // no parking: connections keep their goroutine
		}
		deadline := time.Now().Add(wait)
		for env.Handler.Parked() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections parked, want %d", env.Handler.Parked(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitParked(n)
	for round := range 3 {
		for i, c := range conns {
			r, err := alice.C.Send(ctx, fmt.Sprint("user", i), 1, api.SendMessage{Type: 1, Content: fmt.Appendf(nil, "%d-%d", round, i)})
			check(t, err)
			f := servertest.Recv(t, c, wait)
			if f.Msg == nil || f.Msg.ID != r.ID || string(f.Msg.Content) != fmt.Sprintf("%d-%d", round, i) {
				t.Fatalf("round %d, user %d: %+v", round, i, f)
			}
			// The ack wakes the parked connection; a send over it is
			// answered.
			check(t, c.Ack(ctx, r.ID))
			check(t, c.Send(ctx, uint64(round+1), "alice", 1, api.SendMessage{Type: 1, Content: []byte("back")}))
			ctx, cancel := context.WithTimeout(ctx, wait)
			f, err = c.Next(ctx)
			cancel()
			if err != nil || f.Type != api.FrameSent || f.ReqID != uint64(round+1) {
				t.Fatalf("answer to a send: %+v, %v", f, err)
			}
		}
		waitParked(n)
	}
	// The server's close reaches parked connections: each client sees the
	// close, and every connection's reader finishes.
	env.Server.Close()
	for i, c := range conns {
		ctx, cancel := context.WithTimeout(ctx, wait)
		_, err := c.Next(ctx)
		cancel()
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("conn %d after the server's close: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	check(t, env.Handler.WaitClosed(ctx))
	waitParked(0)
}

// TestParkedSilentPeer: a parked connection whose peer never answers the
// server's close frame is still closed after the closing wait.
func TestParkedSilentPeer(t *testing.T) {
	ctx := t.Context()
	env := servertest.StartWith(t, server.Config{Limits: servertest.Generous}, t.TempDir(), httpapi.Options{Linger: -1})
	u := env.NewUser(t, "silent", 0)
	tr := env.HTTP.Client().Transport.(*http.Transport)
	c, err := tls.Dial("tcp", strings.TrimPrefix(env.URL, "https://"), tr.TLSClientConfig)
	check(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", u.Cred.Credential)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	check(t, err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	if runtime.GOOS == "linux" {
		for deadline := time.Now().Add(wait); env.Handler.Parked() == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the connection was not parked")
			}
		}
	}
	env.Server.Close()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	check(t, env.Handler.WaitClosed(ctx))
}

// TestParkingUnderTraffic parks connections between any two messages
// (Linger -1) while pairs exchange messages as fast as they can, with
// random pauses: every send is answered once, every message delivered
// once and in order, and every connection ends parked.
func TestParkingUnderTraffic(t *testing.T) {
	ctx := t.Context()
	pairs, msgs := 8, 150
	if testing.Short() {
		pairs, msgs = 4, 50
	}
	env := servertest.StartWith(t, server.Config{Limits: servertest.Generous}, t.TempDir(), httpapi.Options{Linger: -1})
	type pair struct{ s, r *apiclient.Conn }
	ps := make([]pair, pairs)
	for i := range ps {
		for j, c := range []**apiclient.Conn{&ps[i].s, &ps[i].r} {
			u := env.NewUser(t, fmt.Sprintf("u%d_%d", i, j), 0)
			conn, err := u.C.Connect(ctx)
			check(t, err)
			t.Cleanup(func() { conn.CloseNow() })
			if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
				t.Fatalf("first frame %+v", f)
			}
			*c = conn
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	errs := make(chan error, 2*pairs)
	for i, p := range ps {
		go func() { // sender: sends, and reads its answers
			answered := make(chan error, 1)
			go func() {
				for n := 0; n < msgs; {
					f, err := p.s.Next(ctx)
					if err != nil {
						answered <- err
						return
					}
					if f.Type != api.FrameSent || f.ReqID != uint64(n+1) {
						answered <- fmt.Errorf("sender %d: answer %d is %+v", i, n, f)
						return
					}
					n++
				}
				answered <- nil
			}()
			for n := range msgs {
				if n%3 == 0 {
					time.Sleep(time.Duration(n%4) * time.Millisecond)
				}
				if err := p.s.Send(ctx, uint64(n+1), fmt.Sprintf("u%d_1", i), 1, api.SendMessage{Type: 1, Content: fmt.Appendf(nil, "%d", n)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- <-answered
		}()
		go func() { // receiver: checks the order, acks each message
			for n := 0; n < msgs; {
				f, err := p.r.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				if f.Type != api.FrameMessage {
					continue
				}
				if string(f.Msg.Content) != fmt.Sprint(n) {
					errs <- fmt.Errorf("receiver %d: message %d is %q", i, n, f.Msg.Content)
					return
				}
				if err := p.r.Ack(ctx, f.Msg.ID); err != nil {
					errs <- err
					return
				}
				n++
			}
			errs <- nil
		}()
	}
	for range 2 * pairs {
		check(t, <-errs)
	}
	if runtime.GOOS == "linux" {
		for deadline := time.Now().Add(wait); env.Handler.Parked() != 2*pairs; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections parked, want %d", env.Handler.Parked(), 2*pairs)
			}
		}
	}
}

// TestPingParked: hushd answers a client's ping on a parked WebSocket (one
// that holds no goroutine while idle), parks it again, and the connection
// still takes deliveries: the keepalive of hush's listening connections
// (apiclient.Conn.KeepAlive) costs an idle connection nothing more.
func TestPingParked(t *testing.T) {
	ctx := t.Context()
	env := servertest.StartWith(t, server.Config{Limits: servertest.Generous}, t.TempDir(), httpapi.Options{Linger: -1})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("first frame %+v", f)
	}
	frames := make(chan api.Frame, 1)
	go func() {
		// The pongs are read here, as in hush's receive loop.
		f, err := conn.Next(ctx)
		if err != nil {
			close(frames)
			return
		}
		frames <- f
	}()
	for range 3 {
		if runtime.GOOS == "linux" {
			testutil.Eventually(t, wait, func() error {
				if n := env.Handler.Parked(); n != 1 {
					return fmt.Errorf("%d connections parked, want 1", n)
				}
				return nil
			})
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		err := conn.Ping(pctx)
		cancel()
		check(t, err)
	}
	r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("after the pings")})
	check(t, err)
	select {
	case f, ok := <-frames:
		if !ok || f.Msg == nil || f.Msg.ID != r.ID {
			t.Fatalf("after the pings: %+v (open %v)", f, ok)
		}
	case <-time.After(wait):
		t.Fatal("no delivery after the pings")
	}
}
