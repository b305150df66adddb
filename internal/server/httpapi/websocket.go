package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ws"
)

const (
	// maxWSMessage bounds one WebSocket message (in either direction),
	// which holds one or more frames separated by '\n'. A 256 KiB content
	// in base64 with its envelope takes about 350 KiB.
	maxWSMessage = 1 << 20
	// batchBytes is where the server starts a new WebSocket message when it
	// batches frames.
	batchBytes  = 512 << 10
	maxInflight = 1024 // unanswered sends per connection
	// defaultLinger is how long a connection waits for its next message,
	// holding a goroutine, before it is parked: busy connections keep
	// theirs (a park and resume for every message would cost a quarter of
	// the throughput), idle ones let it go.
	defaultLinger = 2 * time.Second
)

// wsConn is one device's WebSocket. While idle it keeps no goroutine (it
// is parked, see serve); sends are processed by a goroutine started on
// demand.
type wsConn struct {
	h  *Handler
	c  *ws.Conn
	p  server.Principal
	se *server.Session

	mu      sync.Mutex
	pending []api.Frame // send frames not yet processed
	running bool
}

func (h *Handler) websocket(w http.ResponseWriter, r *http.Request, p server.Principal) {
	// Counted before the upgrade, under h.mu: http.Server.Shutdown does not
	// wait for handlers that took over their connection, so WaitClosed
	// must not miss one that is still starting.
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.conns.Add(1)
	}
	h.mu.Unlock()
	if closing {
		writeError(w, &server.Error{Code: api.CodeUnavailable, Message: "server is shutting down"})
		return
	}
	c, err := ws.Upgrade(w, r, maxWSMessage)
	if err != nil {
		h.conns.Done()
		return // wsUpgrade has answered
	}
	wc := &wsConn{h: h, c: c, p: p}
	se, err := h.srv.Connect(p, wc)
	if err != nil {
		c.Close(ws.CloseTryAgainLater, "server is shutting down")
		c.Kill()
		h.conns.Done()
		return
	}
	wc.se = se
	// Serve on another goroutine (or none, once parked) and let the handler
	// return: the handler's stack grew during the TLS handshake and the
	// HTTP parsing, and an idle connection should not keep it (nor the
	// request) alive.
	go wc.serve()
}

// serve reads and handles messages until the connection has had nothing
// to read for the linger time; then it parks the connection and returns,
// and the connection is served again on a new goroutine when there is
// something (resume).
// Where parking is not available it keeps reading. When the connection
// ends, it closes the session.
func (wc *wsConn) serve() {
	for {
		parked, err := wc.c.Await(wc.h.linger, wc.resume)
		if parked {
			wc.h.parked.Add(1)
			return
		}
		if err == nil {
			err = wc.readOne()
		}
		if err != nil {
			wc.end()
			return
		}
	}
}

// resume serves a connection that was parked: there is something to read
// (or the connection was closed, which the read will find).
func (wc *wsConn) resume() {
	wc.h.parked.Add(-1)
	if err := wc.readOne(); err != nil {
		wc.end()
		return
	}
	wc.serve()
}

func (wc *wsConn) end() {
	wc.se.Close()
	wc.c.Kill()
	wc.h.conns.Done()
}

// readOne reads one WebSocket message and handles its frames.
func (wc *wsConn) readOne() error {
	typ, data, err := wc.c.ReadMessage()
	if err != nil {
		return err
	}
	if wc.c.Closing() {
		return nil // draining until the peer answers our close
	}
	if typ == 0 {
		return nil // a ping (answered) or a pong: nothing to handle
	}
	if typ != ws.OpText {
		wc.c.Close(ws.CloseUnsupported, "frames are JSON text")
		return errors.New("binary message")
	}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		wc.handleFrame(line)
	}
	return nil
}

func (wc *wsConn) handleFrame(b []byte) {
	f, err := decodeFrame(b)
	if err != nil {
		wc.writeError(0, err)
		return
	}
	switch f.Type {
	case api.FrameAck:
		if err := wc.se.Ack(f.IDs); err != nil {
			wc.writeError(f.ReqID, err)
		}
	case api.FrameSend:
		wc.enqueueSend(f)
	default:
		wc.writeError(f.ReqID, badRequest("unknown frame type %q", f.Type))
	}
}

func (wc *wsConn) enqueueSend(f api.Frame) {
	if f.Send == nil {
		wc.writeError(f.ReqID, badRequest("send frame without send"))
		return
	}
	wc.h.mu.Lock()
	closing := wc.h.closing
	if !closing {
		wc.h.inflight.Add(1)
	}
	wc.h.mu.Unlock()
	if closing {
		wc.writeError(f.ReqID, &server.Error{Code: api.CodeUnavailable, Message: "server is shutting down"})
		return
	}
	wc.mu.Lock()
	if len(wc.pending) >= maxInflight {
		wc.mu.Unlock()
		wc.h.inflight.Done()
		wc.writeError(f.ReqID, &server.Error{Code: api.CodeRateLimited, Message: "too many unanswered sends"})
		return
	}
	wc.pending = append(wc.pending, f)
	if !wc.running {
		wc.running = true
		go wc.processSends()
	}
	wc.mu.Unlock()
}

// processSends hands every waiting send to the server as one batch, in
// order, answers each once it is durable, and repeats until none is left.
func (wc *wsConn) processSends() {
	for {
		wc.mu.Lock()
		batch := wc.pending
		wc.pending = nil
		if len(batch) == 0 {
			wc.running = false
			wc.mu.Unlock()
			return
		}
		wc.mu.Unlock()
		out := make([]server.Outgoing, len(batch))
		for i, f := range batch {
			out[i] = server.Outgoing{To: f.To, Device: f.Device, Msg: *f.Send}
		}
		res := wc.h.srv.Send(context.Background(), wc.p, out)
		frames := make([]api.Frame, len(res))
		for i, r := range res {
			if r.Err != nil {
				frames[i] = errorFrame(batch[i].ReqID, r.Err)
			} else {
				result := r.Result
				frames[i] = api.Frame{Type: api.FrameSent, ReqID: batch[i].ReqID, Result: &result}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		wc.writeFrames(ctx, frames)
		cancel()
		wc.h.inflight.Add(-len(batch))
	}
}

// writeFrames writes frames, as few WebSocket messages as batchBytes
// allows: one write (and one system call) carries many frames under load.
func (wc *wsConn) writeFrames(ctx context.Context, frames []api.Frame) error {
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			writeBufs.Put(bp)
		}
	}()
	buf := append((*bp)[:0], make([]byte, ws.HeaderRoom)...)
	for i := range frames {
		if len(buf) > ws.HeaderRoom {
			buf = append(buf, '\n')
		}
		var err error
		if buf, err = api.AppendFrame(buf, &frames[i]); err != nil {
			*bp = buf
			return err
		}
		if len(buf)-ws.HeaderRoom >= batchBytes || i == len(frames)-1 {
			if err := wc.c.WriteTextRoom(ctx, buf); err != nil {
				*bp = buf
				return err
			}
			buf = buf[:ws.HeaderRoom]
		}
	}
	*bp = buf
	return nil
}

// writeBufs holds the buffers writeFrames encodes into (up to
// maxPooledBuf: a rare large message does not stay).
var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuf = 64 << 10

// decodeFrame decodes a frame from a client: api.ParseFrame, or
// encoding/json for what it does not take.
func decodeFrame(b []byte) (api.Frame, error) {
	if f, ok := api.ParseFrame(b); ok {
		return f, nil
	}
	return Decode[api.Frame](b)
}

func errorFrame(reqID uint64, err error) api.Frame {
	_, e := apiError(err)
	body := errorBody(e)
	return api.Frame{Type: api.FrameError, ReqID: reqID, Error: &body}
}

func (wc *wsConn) writeError(reqID uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wc.writeFrames(ctx, []api.Frame{errorFrame(reqID, err)})
}

// Deliver implements server.Sink.
func (wc *wsConn) Deliver(ctx context.Context, msgs []api.Message) error {
	frames := make([]api.Frame, len(msgs))
	for i := range msgs {
		frames[i] = api.Frame{Type: api.FrameMessage, Msg: &msgs[i]}
	}
	return wc.writeFrames(ctx, frames)
}

// Empty implements server.Sink.
func (wc *wsConn) Empty(ctx context.Context) error {
	return wc.c.WriteText(ctx, []byte(`{"type":"empty"}`))
}

// KeysLow implements server.Sink.
func (wc *wsConn) KeysLow(ctx context.Context) error {
	return wc.c.WriteText(ctx, []byte(`{"type":"keys_low"}`))
}

// Close implements server.Sink.
func (wc *wsConn) Close(reason string) {
	go wc.c.Close(ws.CloseGoingAway, reason)
}
