package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

func TestReadMessage(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	var controls []string
	onControl := func(op byte, p []byte) error {
		controls = append(controls, string(rune('0'+op))+string(p))
		if op == opClose {
			return &CloseError{CloseNormal, ""}
		}
		return nil
	}
	cases := []struct {
		name    string
		in      []byte
		limit   int
		wantOp  byte
		want    []byte
		wantErr int // close code, 0: none, -1: io error
	}{
		{"text", clientFrame(true, OpText, []byte("hello")), 100, OpText, []byte("hello"), 0},
		{"binary 16-bit length", clientFrame(true, OpBinary, big[:300]), 1000, OpBinary, big[:300], 0},
		{"64-bit length", clientFrame(true, OpText, big), 1 << 20, OpText, big, 0},
		{"fragments with a ping between", append(append(clientFrame(false, OpText, []byte("he")), clientFrame(true, opPing, []byte("p"))...),
			clientFrame(true, opContinuation, []byte("llo"))...), 100, OpText, []byte("hello"), 0},
		{"too big", clientFrame(true, OpText, big[:101]), 100, 0, nil, CloseTooBig},
		{"too big in fragments", append(clientFrame(false, OpText, big[:60]), clientFrame(true, opContinuation, big[:60])...), 100, 0, nil, CloseTooBig},
		{"unmasked", []byte{0x81, 0x01, 'x'}, 100, 0, nil, CloseProtocolError},
		{"reserved bits", append([]byte{0xC1}, clientFrame(true, OpText, []byte("x"))[1:]...), 100, 0, nil, CloseProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, []byte("x")), 100, 0, nil, CloseProtocolError},
		{"unknown control opcode", clientFrame(true, 0xB, []byte("x")), 100, 0, nil, CloseProtocolError},
		{"fragmented control", clientFrame(false, opPing, []byte("x")), 100, 0, nil, CloseProtocolError},
		{"long control", clientFrame(true, opPing, big[:126]), 1000, 0, nil, CloseProtocolError},
		{"continuation first", clientFrame(true, opContinuation, []byte("x")), 100, 0, nil, CloseProtocolError},
		{"new message inside fragments", append(clientFrame(false, OpText, []byte("x")), clientFrame(true, OpText, []byte("y"))...), 100, 0, nil, CloseProtocolError},
		{"invalid UTF-8", clientFrame(true, OpText, []byte{0xff, 0xfe}), 100, 0, nil, CloseInvalidData},
		{"close", clientFrame(true, opClose, []byte{0x03, 0xe8}), 100, 0, nil, CloseNormal},
		{"ping between messages", append(clientFrame(true, opPing, []byte("q")), clientFrame(true, OpText, []byte("next"))...), 100, 0, nil, 0},
		{"pong between messages", clientFrame(true, opPong, []byte("r")), 100, 0, nil, 0},
		{"truncated header", []byte{0x81}, 100, 0, nil, -1},
		{"truncated payload", clientFrame(true, OpText, []byte("hello"))[:8], 100, 0, nil, -1},
	}
	for _, tc := range cases {
		op, msg, err := readMessage(bytes.NewReader(tc.in), tc.limit, onControl, nil)
		var ce *CloseError
		switch {
		case tc.wantErr == 0 && (err != nil || op != tc.wantOp || !bytes.Equal(msg, tc.want)):
			t.Errorf("%s: got %d %q %v", tc.name, op, msg, err)
		case tc.wantErr > 0 && (!errors.As(err, &ce) || ce.Code != tc.wantErr):
			t.Errorf("%s: got %v, want close %d", tc.name, err, tc.wantErr)
		case tc.wantErr < 0 && (err == nil || errors.As(err, &ce)):
			t.Errorf("%s: got %v, want an I/O error", tc.name, err)
		}
	}
	if len(controls) != 4 || controls[0] != "9p" || controls[2] != "9q" || controls[3] != ":r" {
		t.Errorf("control frames seen: %q", controls)
	}
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 section 1.3
		t.Errorf("acceptKey = %s", got)
	}
	if h := appendFrameHeader(nil, OpText, 70000); !bytes.Equal(h, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}) {
		t.Errorf("64-bit frame header %x", h)
	}
}

// FuzzReadMessage feeds arbitrary bytes to the frame reader: it must
// neither panic nor return more than the limit, and a message it returns
// must be what a re-encoding gives back.
func FuzzReadMessage(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte("hello")))
	f.Add(append(clientFrame(false, OpBinary, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add(clientFrame(true, opPing, []byte("x")))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 4096
		op, msg, err := readMessage(bytes.NewReader(b), limit, func(byte, []byte) error { return nil }, nil)
		if err != nil {
			return
		}
		if op == 0 && msg == nil {
			return // a control frame between messages
		}
		if len(msg) > limit || (op != OpText && op != OpBinary) {
			t.Fatalf("returned op %d with %d bytes", op, len(msg))
		}
		op2, msg2, err := readMessage(bytes.NewReader(clientFrame(true, op, msg)), limit, func(byte, []byte) error { return nil }, nil)
		if err != nil || op2 != op || !bytes.Equal(msg, msg2) {
			t.Fatalf("re-encoded message read back as %d %q %v", op2, msg2, err)
		}
		_ = io.EOF
	})
}

// readServerFrame reads one unmasked frame, as a client does.
func readServerFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading the server's frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	if h[1]&0x80 != 0 || n > 125 {
		t.Fatalf("unexpected server frame header %x", h)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0f, p
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// TestCloseHandshake: the server answers a peer's close frame (RFC 6455
// section 5.5.1) by echoing a valid status code, and with 1002 when the
// frame is malformed (a 1-byte body) or carries a code that must not be
// sent (section 7.4: below 1000, 1004-1006, 1015, 1016-2999, 5000 and up),
// and with 1007 when its reason is not UTF-8 (section 8.1).
func TestCloseHandshake(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    int // the code the server answers with
	}{
		{"empty", nil, CloseNormal},
		{"1000", closePayload(1000, "bye"), 1000},
		{"1001", closePayload(1001, ""), 1001},
		{"1011", closePayload(1011, ""), 1011},
		{"1013", closePayload(1013, ""), 1013},
		{"3000", closePayload(3000, ""), 3000},
		{"4999", closePayload(4999, ""), 4999},
		{"one byte", []byte{0x03}, CloseProtocolError},
		{"0", closePayload(0, ""), CloseProtocolError},
		{"999", closePayload(999, ""), CloseProtocolError},
		{"1004", closePayload(1004, ""), CloseProtocolError},
		{"1005", closePayload(1005, ""), CloseProtocolError},
		{"1006", closePayload(1006, ""), CloseProtocolError},
		{"1015", closePayload(1015, ""), CloseProtocolError},
		{"2999", closePayload(2999, ""), CloseProtocolError},
		{"5000", closePayload(5000, ""), CloseProtocolError},
		{"reason not UTF-8", closePayload(1000, "\xff\xfe"), CloseInvalidData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			c := &Conn{conn: server, readLimit: 100}
			defer c.Kill()
			done := make(chan error, 1)
			go func() {
				_, _, err := c.ReadMessage()
				done <- err
			}()
			if _, err := client.Write(clientFrame(true, opClose, tc.payload)); err != nil {
				t.Fatal(err)
			}
			op, p := readServerFrame(t, client)
			if op != opClose || len(p) < 2 {
				t.Fatalf("server answered op %d %x, want a close frame with a code", op, p)
			}
			if got := int(binary.BigEndian.Uint16(p)); got != tc.want {
				t.Errorf("server answered %d %q, want %d", got, p[2:], tc.want)
			}
			if !utf8.Valid(p[2:]) {
				t.Errorf("server's reason is not UTF-8: %q", p[2:])
			}
			var ce *CloseError
			if err := <-done; !errors.As(err, &ce) {
				t.Errorf("ReadMessage = %v, want a *CloseError", err)
			}
		})
	}
}

// TestCloseReason: a reason longer than a close frame holds (123 bytes
// after the code) is cut at a character boundary, and one that is not
// UTF-8 is made so; a code that must not be sent becomes 1011 (internal
// error) rather than a frame the peer must reject.
func TestCloseReason(t *testing.T) {
	long := strings.Repeat("a", 122) + "é" // 124 bytes, the é across byte 123
	cases := []struct {
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{CloseGoingAway, long, CloseGoingAway, strings.Repeat("a", 122)},
		{CloseGoingAway, strings.Repeat("€", 50), CloseGoingAway, strings.Repeat("€", 41)},
		{CloseNormal, "bad \xff byte", CloseNormal, "bad \uFFFD byte"},
		{1005, "x", 1011, "x"},
		{1006, "x", 1011, "x"},
		{999, "x", 1011, "x"},
	}
	for _, tc := range cases {
		client, server := net.Pipe()
		c := &Conn{conn: server}
		go c.Close(tc.code, tc.reason)
		op, p := readServerFrame(t, client)
		if op != opClose || len(p) < 2 {
			t.Fatalf("op %d %x, want a close frame", op, p)
		}
		code, reason := int(binary.BigEndian.Uint16(p)), string(p[2:])
		if code != tc.wantCode || reason != tc.wantReason || len(p) > 125 {
			t.Errorf("Close(%d, %q) sent %d %q (%d bytes), want %d %q", tc.code, tc.reason, code, reason, len(p), tc.wantCode, tc.wantReason)
		}
		client.Close()
		c.Kill()
	}
}

// FuzzParseClose: a close body is either refused with 1002 or 1007, or
// has a code that may be sent and a UTF-8 reason, which closeBody gives
// back unchanged.
func FuzzParseClose(f *testing.F) {
	for _, p := range [][]byte{nil, {3}, closePayload(1000, "bye"), closePayload(1005, ""), closePayload(4000, "\xff")} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := parseClose(p)
		if err != nil {
			if err.Code != CloseProtocolError && err.Code != CloseInvalidData {
				t.Fatalf("refused with %d", err.Code)
			}
			return
		}
		if len(p) == 0 {
			return
		}
		if !validCloseCode(code) || !utf8.ValidString(reason) {
			t.Fatalf("accepted %d %q", code, reason)
		}
		if len(p) <= 125 && !bytes.Equal(closeBody(code, reason), p) {
			t.Fatalf("closeBody(%d, %q) = %x, want %x", code, reason, closeBody(code, reason), p)
		}
	})
}

// TestHalfSentMessage (issue 14, finding 9): a peer that sends most of a
// message and then nothing is closed with 1008 once MessageTimeout has
// passed, and its buffer goes with it; a peer idle between messages, or
// after a ping, is not.
func TestHalfSentMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		c := &Conn{conn: server, readLimit: 2 << 20}
		defer c.Kill()
		done := make(chan error, 1)
		go func() {
			// As the server's loop does: a ping between messages ends a
			// read with no message; read on.
			for {
				op, _, err := c.ReadMessage()
				if err != nil || op != 0 {
					done <- err
					return
				}
			}
		}()
		// Idle, then a ping: no deadline yet.
		time.Sleep(10 * MessageTimeout)
		if _, err := client.Write(clientFrame(true, opPing, []byte("p"))); err != nil {
			t.Fatal(err)
		}
		if op, _ := readServerFrame(t, client); op != opPong {
			t.Fatalf("got op %d, want a pong", op)
		}
		time.Sleep(10 * MessageTimeout)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("an idle connection was ended: %v", err)
		default:
		}
		// A 1 MiB fragment, then silence.
		if _, err := client.Write(clientFrame(false, OpBinary, make([]byte, 1<<20))); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		op, p := readServerFrame(t, client)
		if op != opClose || len(p) < 2 || binary.BigEndian.Uint16(p) != ClosePolicy {
			t.Fatalf("server sent op %d %q, want close 1008", op, p)
		}
		if d := time.Since(start); d != MessageTimeout {
			t.Errorf("closed after %v, want %v", d, MessageTimeout)
		}
		var ce *CloseError
		if err := <-done; !errors.As(err, &ce) || ce.Code != ClosePolicy {
			t.Fatalf("ReadMessage = %v, want close 1008", err)
		}
	})
}
