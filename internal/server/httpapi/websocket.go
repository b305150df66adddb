package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

const (
	maxFrame    = 512 << 10 // a 256 KiB message in base64 plus its envelope
	maxInflight = 1024      // unanswered sends per connection
)

// wsConn is one device's WebSocket. Its reader goroutine is the only one it
// keeps while idle; sends are processed by a goroutine started on demand.
type wsConn struct {
	h  *Handler
	c  *websocket.Conn
	p  server.Principal
	se *server.Session

	mu      sync.Mutex
	pending []api.Frame // send frames not yet processed
	running bool
}

func (h *Handler) websocket(w http.ResponseWriter, r *http.Request, p server.Principal) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(maxFrame)
	wc := &wsConn{h: h, c: c, p: p}
	se, err := h.srv.Connect(p, wc)
	if err != nil {
		c.Close(websocket.StatusTryAgainLater, "server is shutting down")
		return
	}
	wc.se = se
	defer se.Close()
	wc.readLoop()
}

func (wc *wsConn) readLoop() {
	ctx := context.Background()
	for {
		typ, data, err := wc.c.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			wc.c.Close(websocket.StatusUnsupportedData, "frames are JSON text")
			return
		}
		f, err := Decode[api.Frame](data)
		if err != nil {
			wc.writeError(0, err)
			continue
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
		wc.writeError(f.ReqID, &server.Error{Status: 503, Code: api.CodeUnavailable, Message: "server is shutting down"})
		return
	}
	wc.mu.Lock()
	if len(wc.pending) >= maxInflight {
		wc.mu.Unlock()
		wc.h.inflight.Done()
		wc.writeError(f.ReqID, &server.Error{Status: 429, Code: api.CodeRateLimited, Message: "too many unanswered sends"})
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
		for i, r := range res {
			if r.Err != nil {
				wc.writeError(batch[i].ReqID, r.Err)
			} else {
				result := r.Result
				wc.write(api.Frame{Type: api.FrameSent, ReqID: batch[i].ReqID, Result: &result})
			}
		}
		wc.h.inflight.Add(-len(batch))
	}
}

func (wc *wsConn) write(f api.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return wc.c.Write(ctx, websocket.MessageText, b)
}

func (wc *wsConn) writeError(reqID uint64, err error) {
	var e *server.Error
	if !errors.As(err, &e) {
		e = &server.Error{Status: 500, Code: api.CodeInternal, Message: "internal error"}
	}
	wc.write(api.Frame{Type: api.FrameError, ReqID: reqID, Error: &api.ErrorBody{Code: e.Code, Message: e.Message}})
}

// Deliver implements server.Sink.
func (wc *wsConn) Deliver(ctx context.Context, msgs []api.Message) error {
	for i := range msgs {
		b, err := json.Marshal(api.Frame{Type: api.FrameMessage, Msg: &msgs[i]})
		if err != nil {
			return err
		}
		if err := wc.c.Write(ctx, websocket.MessageText, b); err != nil {
			return err
		}
	}
	return nil
}

// Empty implements server.Sink.
func (wc *wsConn) Empty(ctx context.Context) error {
	return wc.c.Write(ctx, websocket.MessageText, []byte(`{"type":"empty"}`))
}

// Close implements server.Sink.
func (wc *wsConn) Close(reason string) {
	go wc.c.Close(websocket.StatusGoingAway, reason)
}
