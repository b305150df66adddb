package spqr

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestVarint(t *testing.T) {
	// The crate's own cases (serialize.rs tests).
	if got := appendVarint(nil, 0x012c); !bytes.Equal(got, []byte{0xac, 0x02}) {
		t.Fatalf("encode 0x12c = %x", got)
	}
	v, at, err := readVarint([]byte{0xff, 0xac, 0x02, 0xff}, 1)
	if err != nil || v != 0x12c || at != 3 {
		t.Fatalf("decode: %x %d %v", v, at, err)
	}
	if v, at, err := readVarint([]byte{0}, 0); err != nil || v != 0 || at != 1 {
		t.Fatal("decode 0")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		u := r.Uint64() >> (r.IntN(64))
		b := appendVarint(nil, u)
		v, at, err := readVarint(b, 0)
		if err != nil || v != u || at != len(b) || len(b) > maxVarintLen {
			t.Fatalf("round trip %d", u)
		}
	}
	// Truncated, and 10 bytes all with the continuation bit.
	for _, b := range [][]byte{{}, {0x80}, {0xff, 0xff}, bytes.Repeat([]byte{0x80}, 10), bytes.Repeat([]byte{0x80}, 12)} {
		if _, _, err := readVarint(b, 0); err == nil {
			t.Errorf("accepted %x", b)
		}
	}
	// Like the crate: non-minimal encodings are accepted.
	if v, _, err := readVarint([]byte{0x81, 0x80, 0x00}, 0); err != nil || v != 1 {
		t.Error("non-minimal varint")
	}
}

// TestLibsignalMessages parses the SPQR bytes of the libsignal 0.103.0
// recording (shared/vectors/libsignal-0.103.0/msg1.prekey.txt and
// msg2.reply.txt) and checks that they re-serialize to the same bytes.
func TestLibsignalMessages(t *testing.T) {
	msg1, _ := hex.DecodeString("0101010100ff0404fded7b882de7d12673add3d832a059a29b9646f12cd3635c916d893d66")
	m, idx, err := parseMessage(msg1)
	if err != nil {
		t.Fatal(err)
	}
	if m.epoch != 1 || idx != 1 || m.typ != msgHdr || m.chunk.Index != 0 ||
		hex.EncodeToString(m.chunk.Data[:]) != "ff0404fded7b882de7d12673add3d832a059a29b9646f12cd3635c916d893d66" {
		t.Fatalf("msg1 parsed as %+v index %d", m, idx)
	}
	if !bytes.Equal(m.serialize(idx), msg1) {
		t.Fatal("msg1 does not re-serialize")
	}
	msg2, _ := hex.DecodeString("01010100")
	m, idx, err = parseMessage(msg2)
	if err != nil || m.epoch != 1 || idx != 1 || m.typ != msgNone || !bytes.Equal(m.serialize(idx), msg2) {
		t.Fatalf("msg2: %+v %v", m, err)
	}
	// A fresh Bob (any auth key) accepts msg1 as the first header chunk and
	// derives a key for it; Alice's answer is a None message like msg2.
	_, b := newPair(t, "libsignal", V1, V1)
	b2, k, err := b.Recv(msg1)
	if err != nil || k == nil || b2.br.kind != kNoHeaderReceived {
		t.Fatalf("Bob on msg1: %v", err)
	}
	_, out, _ := mustSend(t, b2, shakeRand("b"))
	if !bytes.Equal(out, msg2) {
		t.Fatalf("Bob's reply %x, want %x", out, msg2)
	}
}

// TestHeaderChunkIsSystematic: the first Hdr chunk carries the first 32
// bytes of the header (rho), as in the libsignal recording.
func TestHeaderChunkIsSystematic(t *testing.T) {
	a, _ := newPair(t, "sys", V1, V1)
	a2, m, _ := mustSend(t, a, shakeRand("sys"))
	pm, _, _ := parseMessage(m)
	if !bytes.Equal(pm.chunk.Data[:], a2.br.hmsg[:32]) {
		t.Fatal("Hdr chunk 0 is not hdr[0:32]")
	}
}

func TestParseMessageErrors(t *testing.T) {
	full, _ := hex.DecodeString("0101010100ff0404fded7b882de7d12673add3d832a059a29b9646f12cd3635c916d893d66")
	for n := 0; n < len(full); n++ {
		if _, _, err := parseMessage(full[:n]); !errors.Is(err, ErrMsgDecode) {
			t.Errorf("prefix of %d bytes: %v", n, err)
		}
	}
	// Trailing bytes are ignored.
	m, _, err := parseMessage(append(append([]byte{}, full...), 1, 2, 3))
	if err != nil || m.chunk.Data[0] != 0xff {
		t.Fatal("trailing bytes")
	}
	bad := map[string][]byte{
		"epoch 0":       {1, 0, 1, 0},
		"index > u32":   {1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0},
		"type 7":        {1, 1, 1, 7},
		"chunk > 65535": append([]byte{1, 1, 1, 1, 0x80, 0x80, 0x04}, make([]byte, 32)...),
		"version 0":     {0, 1, 1, 0},
	}
	for name, b := range bad {
		if _, _, err := parseMessage(b); !errors.Is(err, ErrMsgDecode) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if m, idx, err := parseMessage([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 4}); err != nil || idx != 0xffffffff || m.typ != msgCt1Ack {
		t.Errorf("max index: %v", err)
	}
	if m, _, err := parseMessage(append([]byte{1, 1, 1, 6, 0xff, 0xff, 0x03}, make([]byte, 32)...)); err != nil || m.chunk.Index != 0xffff {
		t.Errorf("max chunk index: %v", err)
	}
}
