// Package ws is hushd's server side of the WebSocket protocol (RFC 6455):
// the opening handshake, framing and the closing handshake, made for many
// idle connections: an idle connection holds no buffer, and no goroutine
// where it can be parked (see Conn.Await and package netpark). (A
// general-purpose library keeps a 4 KiB read and a 4 KiB write buffer per
// connection for its whole life, which alone is most of the 10 KiB per
// connection hushd aims for.) Extensions and subprotocols are not offered;
// clients must mask, as the RFC requires.
package ws

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/server/netpark"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes (RFC 6455 section 7.4.1, and 1013 from the IANA
// registry of section 11.7).
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	CloseUnsupported   = 1003
	CloseInvalidData   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseTryAgainLater = 1013
)

// wsGUID is the fixed string of the opening handshake (section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// CloseError is how a read ends with a close: sent by the peer, or by us
// because of a protocol error.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket: closed %d %s", e.Code, e.Reason) }

// Conn is a server-side WebSocket. One goroutine reads (Await,
// ReadMessage); any may write and close.
type Conn struct {
	conn      net.Conn
	pre       []byte // read from conn but not consumed: what the HTTP server buffered, or Await's probe
	probe     [1]byte
	readLimit int
	// messageTimeout bounds the time from a frame's first byte to the end
	// of its message; 0 means MessageTimeout.
	messageTimeout time.Duration

	wmu       sync.Mutex // serializes writes
	closeMu   sync.Mutex
	closed    bool
	parked    netpark.Ticket // while parked (under closeMu), else 0
	inMessage bool           // a message is being read, under its deadline (under closeMu)
}

// MessageTimeout is how long a peer has to finish a message (or a control
// frame) once it started it. A peer that stops halfway would otherwise
// hold the connection and the message's buffer (up to the read limit)
// forever; it gets a close frame with 1008 (policy violation) instead.
// An idle connection, between messages, has no deadline.
const MessageTimeout = 30 * time.Second

var errMessageTimeout = &CloseError{ClosePolicy, "message not finished in time"}

// Read reads the connection, after what was read ahead of the reader.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil // let the HTTP server's leftover go
		}
		return n, nil
	}
	return c.conn.Read(p)
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Upgrade answers the opening handshake (RFC 6455 section 4.2.2) and
// takes over the connection; readLimit bounds a message. On error it has
// written an HTTP error answer.
func Upgrade(w http.ResponseWriter, r *http.Request, readLimit int) (*Conn, error) {
	fail := func(status int, msg string) (*Conn, error) {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, msg, status)
		return nil, errors.New("websocket: " + msg)
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return fail(http.StatusUpgradeRequired, "this endpoint is a WebSocket")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return fail(http.StatusBadRequest, "unsupported WebSocket version")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return fail(http.StatusBadRequest, "bad Sec-WebSocket-Key")
	}
	// A browser page of another origin must not use the connection (the
	// credential is not ambient, but refuse anyway).
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return fail(http.StatusForbidden, "cross-origin WebSocket refused")
		}
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fail(http.StatusInternalServerError, "cannot take over the connection")
	}
	// The HTTP server's request deadlines must not end an idle WebSocket
	// (net/http clears them on hijack; so do we, not to rest on that).
	conn.SetDeadline(time.Time{})
	c := &Conn{conn: conn, readLimit: readLimit}
	// Keep what the HTTP server read past the request (a client may send
	// its first frame at once), then let its buffers go.
	if n := brw.Reader.Buffered(); n > 0 {
		pre, _ := brw.Reader.Peek(n)
		c.pre = bytes.Clone(pre)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(key) + "\r\n\r\n"
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, resp); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetWriteDeadline(time.Time{})
	return c, nil
}

// ReadMessage returns the next text or binary message, answering pings
// and reassembling fragments. A control frame between messages (a ping,
// answered, or a pong) ends the read with opcode 0 and no message, so
// that the caller may park the connection again (see Await). It returns a *CloseError when the connection
// was closed by a close frame or for a protocol error (after starting the
// closing handshake), or another error when the connection failed. After
// Close, the caller keeps reading (and dropping what it reads) until an
// error: that is the wait for the peer's answer.
func (c *Conn) ReadMessage() (opcode byte, msg []byte, err error) {
	op, msg, err := readMessage(c, c.readLimit, c.control, c.busy)
	if c.busy(false) && errors.Is(err, os.ErrDeadlineExceeded) {
		err = errMessageTimeout
	}
	if ce, ok := err.(*CloseError); ok {
		c.Close(ce.Code, ce.Reason)
	}
	return op, msg, err
}

// busy puts the read under the message deadline when a frame starts
// (true), and lifts it between messages (false). It reports whether the
// deadline was on. Once Close was called, Close owns the deadline.
func (c *Conn) busy(b bool) bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	was := c.inMessage
	if c.closed || b == was {
		return was && !c.closed
	}
	c.inMessage = b
	if b {
		d := c.messageTimeout
		if d == 0 {
			d = MessageTimeout
		}
		c.conn.SetReadDeadline(time.Now().Add(d))
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	return was
}

// Await waits up to linger for the next message to start; if none does,
// it parks the connection, so that it holds no goroutine, and reports
// true: resume then runs on a new goroutine when there is something to
// read (or when the connection is closed, see Kill and Close). If it
// reports false, the caller reads the next message. Only the reading
// goroutine calls it.
//
// Read deadlines: while the connection is open the reader sets them
// (here); once Close was called, only Close does.
func (c *Conn) Await(linger time.Duration, resume func()) (bool, error) {
	if len(c.pre) > 0 {
		return false, nil
	}
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return false, nil // the reader waits for the peer's answer
	}
	// A deadline in the past makes the read take only what is buffered in
	// user space (a TLS record already read), without a system call;
	// crypto/tls keeps its state across the timeout.
	deadline := time.Unix(1, 0)
	if linger > 0 {
		deadline = time.Now().Add(linger)
	}
	c.conn.SetReadDeadline(deadline)
	c.closeMu.Unlock()
	n, err := c.conn.Read(c.probe[:])
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if n > 0 {
		c.pre = c.probe[:n]
		err = nil
	}
	if c.closed {
		return false, nil // Close has set the deadline
	}
	c.conn.SetReadDeadline(time.Time{})
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, err
	}
	// Nothing came: park. What the kernel holds, the poller sees.
	t, err := netpark.Park(c.conn, func() {
		c.closeMu.Lock()
		c.parked = 0
		c.closeMu.Unlock()
		resume()
	})
	if err != nil {
		return false, nil // not on this system: keep the goroutine
	}
	c.parked = t
	return true, nil
}

// wake resumes the reader if it is parked.
func (c *Conn) wake() {
	c.closeMu.Lock()
	t := c.parked
	c.closeMu.Unlock()
	if t != 0 {
		netpark.Wake(t)
	}
}

// Kill closes the connection at once; a parked reader is woken to see it.
func (c *Conn) Kill() {
	c.conn.Close()
	c.wake()
}

// control handles a control frame received between data frames.
func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		return c.writeFrame(context.Background(), opPong, payload)
	case opPong:
		return nil
	case opClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			return err // ReadMessage sends it
		}
		// Section 5.5.1: answer with a close frame, echoing the code.
		answer := code
		if code == closeNoStatus {
			answer = CloseNormal
		}
		c.Close(answer, "")
		return &CloseError{code, reason}
	}
	return nil
}

// closeNoStatus stands for a close frame without a body (section 7.4.1:
// never sent in a frame).
const closeNoStatus = 1005

// parseClose reads a close frame's body (section 5.5.1): empty, or a
// status code that may be sent (section 7.4) followed by a UTF-8 reason.
func parseClose(p []byte) (code int, reason string, err *CloseError) {
	switch {
	case len(p) == 0:
		return closeNoStatus, "", nil
	case len(p) == 1:
		return 0, "", &CloseError{CloseProtocolError, "close frame body of 1 byte"}
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", &CloseError{CloseProtocolError, "invalid close code"}
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &CloseError{CloseInvalidData, "close reason is not UTF-8"}
	}
	return code, string(p[2:]), nil
}

// validCloseCode reports whether code may appear in a close frame
// (section 7.4): the defined codes except 1004 (reserved) and 1005, 1006
// and 1015 (never sent), the IANA-registered 1012-1014, and 3000-4999 for
// libraries and applications. Codes below 1000 are unused, and the rest
// of 1000-2999 is reserved for the protocol.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}

// maxCloseReason is what a close frame has room for after the code: a
// control frame's body is at most 125 bytes (section 5.5).
const maxCloseReason = 123

// closeBody makes a close frame's body: a code that may not be sent
// becomes 1011 (internal error), and the reason is made UTF-8 and cut, at
// a character boundary, to fit.
func closeBody(code int, reason string) []byte {
	if !validCloseCode(code) {
		code = 1011
	}
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) > maxCloseReason {
		n := maxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// readMessage is the frame reader, separate from the connection so that
// it can be fuzzed. onControl gets each control frame; onFrame, if not
// nil, is told when a frame has started (true) and when a control frame
// outside a message has ended (false), for the message deadline.
func readMessage(r io.Reader, limit int, onControl func(op byte, payload []byte) error, onFrame func(busy bool) bool) (byte, []byte, error) {
	var msg []byte
	var msgOp byte
	fragmented := false
	for {
		var hdr [14]byte
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return 0, nil, err
		}
		if onFrame != nil {
			onFrame(true)
		}
		fin, rsv, op := hdr[0]&0x80 != 0, hdr[0]&0x70, hdr[0]&0x0f
		masked, n := hdr[1]&0x80 != 0, uint64(hdr[1]&0x7f)
		if rsv != 0 {
			return 0, nil, &CloseError{CloseProtocolError, "reserved bits set"}
		}
		if !masked {
			return 0, nil, &CloseError{CloseProtocolError, "client frames must be masked"}
		}
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if _, err := io.ReadFull(r, hdr[2:2+ext+4]); err != nil {
			return 0, nil, err
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(hdr[2:]))
		case 8:
			n = binary.BigEndian.Uint64(hdr[2:])
		}
		mask := hdr[2+ext : 2+ext+4]
		control := op&0x8 != 0
		switch {
		case control && (!fin || n > 125):
			return 0, nil, &CloseError{CloseProtocolError, "bad control frame"}
		case control && op != opClose && op != opPing && op != opPong,
			!control && op != opContinuation && op != OpText && op != OpBinary:
			return 0, nil, &CloseError{CloseProtocolError, "unknown opcode"}
		case op == opContinuation && !fragmented, (op == OpText || op == OpBinary) && fragmented:
			return 0, nil, &CloseError{CloseProtocolError, "bad fragmentation"}
		case !control && n > uint64(limit-len(msg)):
			return 0, nil, &CloseError{CloseTooBig, "message too big"}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, nil, err
		}
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		if control {
			if err := onControl(op, payload); err != nil {
				return 0, nil, err
			}
			if fragmented {
				continue
			}
			// Between messages: idle again. Return, so that a connection
			// pinged while parked is parked again rather than held by a
			// goroutine waiting for its next message.
			if onFrame != nil {
				onFrame(false)
			}
			return 0, nil, nil
		}
		if op != opContinuation {
			msgOp = op
		}
		if msg == nil && fin {
			msg = payload // the usual case: one frame, no copy
		} else {
			msg = append(msg, payload...)
		}
		if !fin {
			fragmented = true
			continue
		}
		if msgOp == OpText && !utf8.Valid(msg) {
			return 0, nil, &CloseError{CloseInvalidData, "text is not UTF-8"}
		}
		return msgOp, msg, nil
	}
}

// appendFrameHeader appends an unmasked (server) frame header.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b
}

// writeFrame writes one unfragmented frame with one system call.
func (c *Conn) writeFrame(ctx context.Context, op byte, payload []byte) error {
	buf := make([]byte, HeaderRoom, HeaderRoom+len(payload))
	return c.writeRoom(ctx, op, append(buf, payload...))
}

// HeaderRoom is the room for a frame header that WriteTextRoom needs
// before the payload.
const HeaderRoom = 10

// writeRoom writes buf[HeaderRoom:] as one unfragmented frame with one
// system call, putting the header into buf[:HeaderRoom].
func (c *Conn) writeRoom(ctx context.Context, op byte, buf []byte) error {
	n := len(buf) - HeaderRoom
	var hdr [HeaderRoom]byte
	h := appendFrameHeader(hdr[:0], op, n)
	start := HeaderRoom - len(h)
	copy(buf[start:], h)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(dl)
	} else {
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	}
	_, err := c.conn.Write(buf[start:])
	if err != nil {
		c.Kill()
	}
	return err
}

// WriteText sends a text message.
func (c *Conn) WriteText(ctx context.Context, msg []byte) error {
	return c.writeFrame(ctx, OpText, msg)
}

// WriteTextRoom sends buf[HeaderRoom:] as a text message, without a copy:
// the frame header is written into buf[:HeaderRoom].
func (c *Conn) WriteTextRoom(ctx context.Context, buf []byte) error {
	return c.writeRoom(ctx, OpText, buf)
}

// Close starts the closing handshake: it sends a close frame (once) and
// gives the peer closeWait to answer. The reading goroutine, which ignores
// data from then on, closes the connection when the answer comes, when the
// time is up, or when the connection fails; so that data the server wrote
// just before (answers to sends) is not lost to a reset.
func (c *Conn) Close(code int, reason string) {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return
	}
	c.closed = true
	c.closeMu.Unlock()
	p := closeBody(code, reason)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.writeFrame(ctx, opClose, p)
	cancel()
	c.closeMu.Lock()
	c.conn.SetReadDeadline(time.Now().Add(closeWait))
	t := c.parked
	c.closeMu.Unlock()
	if t != 0 {
		netpark.Wake(t) // the reader waits for the answer
	}
}

// closeWait is how long the peer has to answer a close frame.
const closeWait = 2 * time.Second

// Closing reports whether Close was called.
func (c *Conn) Closing() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closed
}
