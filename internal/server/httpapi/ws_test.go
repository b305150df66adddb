package httpapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
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

func TestReadWSMessage(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	var controls []string
	onControl := func(op byte, p []byte) error {
		controls = append(controls, string(rune('0'+op))+string(p))
		if op == opClose {
			return &closeError{closeNormal, ""}
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
		{"text", clientFrame(true, opText, []byte("hello")), 100, opText, []byte("hello"), 0},
		{"binary 16-bit length", clientFrame(true, opBinary, big[:300]), 1000, opBinary, big[:300], 0},
		{"64-bit length", clientFrame(true, opText, big), 1 << 20, opText, big, 0},
		{"fragments with a ping between", append(append(clientFrame(false, opText, []byte("he")), clientFrame(true, opPing, []byte("p"))...),
			clientFrame(true, opContinuation, []byte("llo"))...), 100, opText, []byte("hello"), 0},
		{"too big", clientFrame(true, opText, big[:101]), 100, 0, nil, closeTooBig},
		{"too big in fragments", append(clientFrame(false, opText, big[:60]), clientFrame(true, opContinuation, big[:60])...), 100, 0, nil, closeTooBig},
		{"unmasked", []byte{0x81, 0x01, 'x'}, 100, 0, nil, closeProtocolError},
		{"reserved bits", append([]byte{0xC1}, clientFrame(true, opText, []byte("x"))[1:]...), 100, 0, nil, closeProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, []byte("x")), 100, 0, nil, closeProtocolError},
		{"unknown control opcode", clientFrame(true, 0xB, []byte("x")), 100, 0, nil, closeProtocolError},
		{"fragmented control", clientFrame(false, opPing, []byte("x")), 100, 0, nil, closeProtocolError},
		{"long control", clientFrame(true, opPing, big[:126]), 1000, 0, nil, closeProtocolError},
		{"continuation first", clientFrame(true, opContinuation, []byte("x")), 100, 0, nil, closeProtocolError},
		{"new message inside fragments", append(clientFrame(false, opText, []byte("x")), clientFrame(true, opText, []byte("y"))...), 100, 0, nil, closeProtocolError},
		{"invalid UTF-8", clientFrame(true, opText, []byte{0xff, 0xfe}), 100, 0, nil, closeInvalidData},
		{"close", clientFrame(true, opClose, []byte{0x03, 0xe8}), 100, 0, nil, closeNormal},
		{"truncated header", []byte{0x81}, 100, 0, nil, -1},
		{"truncated payload", clientFrame(true, opText, []byte("hello"))[:8], 100, 0, nil, -1},
	}
	for _, tc := range cases {
		op, msg, err := readWSMessage(bytes.NewReader(tc.in), tc.limit, onControl)
		var ce *closeError
		switch {
		case tc.wantErr == 0 && (err != nil || op != tc.wantOp || !bytes.Equal(msg, tc.want)):
			t.Errorf("%s: got %d %q %v", tc.name, op, msg, err)
		case tc.wantErr > 0 && (!errors.As(err, &ce) || ce.code != tc.wantErr):
			t.Errorf("%s: got %v, want close %d", tc.name, err, tc.wantErr)
		case tc.wantErr < 0 && (err == nil || errors.As(err, &ce)):
			t.Errorf("%s: got %v, want an I/O error", tc.name, err)
		}
	}
	if len(controls) != 2 || controls[0] != "9p" {
		t.Errorf("control frames seen: %q", controls)
	}
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 section 1.3
		t.Errorf("acceptKey = %s", got)
	}
	if h := appendFrameHeader(nil, opText, 70000); !bytes.Equal(h, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}) {
		t.Errorf("64-bit frame header %x", h)
	}
}

// FuzzReadWSMessage feeds arbitrary bytes to the frame reader: it must
// neither panic nor return more than the limit, and a message it returns
// must be what a re-encoding gives back.
func FuzzReadWSMessage(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("hello")))
	f.Add(append(clientFrame(false, opBinary, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add(clientFrame(true, opPing, []byte("x")))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 4096
		op, msg, err := readWSMessage(bytes.NewReader(b), limit, func(byte, []byte) error { return nil })
		if err != nil {
			return
		}
		if len(msg) > limit || (op != opText && op != opBinary) {
			t.Fatalf("returned op %d with %d bytes", op, len(msg))
		}
		op2, msg2, err := readWSMessage(bytes.NewReader(clientFrame(true, op, msg)), limit, func(byte, []byte) error { return nil })
		if err != nil || op2 != op || !bytes.Equal(msg, msg2) {
			t.Fatalf("re-encoded message read back as %d %q %v", op2, msg2, err)
		}
		_ = io.EOF
	})
}
