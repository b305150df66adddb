package polycode

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/hushmsg/hush/spqr/internal/gf16"
)

func chunksNeeded(n int) int { return (n + ChunkSize - 1) / ChunkSize }

func randMsg(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// evalNaive evaluates at x the polynomial through (i, ys[i]) with the
// textbook Lagrange formula, as an independent reference for parity chunks.
func evalNaive(ys []uint16, x uint16) uint16 {
	var acc uint16
	for i := range ys {
		num, den := uint16(1), uint16(1)
		for j := range ys {
			if i == j {
				continue
			}
			num = gf16.Mul(num, x^uint16(j))
			den = gf16.Mul(den, uint16(i)^uint16(j))
		}
		acc ^= gf16.Mul(ys[i], gf16.Div(num, den))
	}
	return acc
}

func TestSystematicAndParity(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{0, 2, 10, 30, 32, 34, 96, 160, 960, 1152, 1000} {
		msg := randMsg(r, n)
		e, err := NewEncoder(msg)
		if err != nil {
			t.Fatal(err)
		}
		nsym := n / 2
		for idx := 0; idx < chunksNeeded(n)+5; idx++ {
			c := e.ChunkAt(uint16(idx))
			for j := 0; j < NumPolys; j++ {
				var ys []uint16
				for s := j; s < nsym; s += NumPolys {
					ys = append(ys, uint16(msg[2*s])<<8|uint16(msg[2*s+1]))
				}
				var want uint16
				switch {
				case idx < len(ys):
					want = ys[idx]
				case len(ys) > 0:
					want = evalNaive(ys, uint16(idx))
				}
				got := uint16(c.Data[2*j])<<8 | uint16(c.Data[2*j+1])
				if got != want {
					t.Fatalf("n=%d idx=%d poly=%d: got %#x want %#x", n, idx, j, got, want)
				}
			}
			if (idx+1)*ChunkSize <= n && !bytes.Equal(c.Data[:], msg[idx*ChunkSize:(idx+1)*ChunkSize]) {
				t.Fatalf("n=%d: chunk %d is not the message slice", n, idx)
			}
		}
	}
}

func TestNextWrapsAndCounts(t *testing.T) {
	e, _ := NewEncoder(make([]byte, 96))
	for i := 0; i < 5; i++ {
		if c := e.Next(); c.Index != uint16(i) {
			t.Fatalf("chunk %d has index %d", i, c.Index)
		}
	}
	e2, _ := RestoreEncoder(e.Message(), 0xffff)
	if c := e2.Next(); c.Index != 0xffff {
		t.Fatal("index 0xffff")
	}
	if c := e2.Next(); c.Index != 0 || e2.NextIndex() != 0x10001 {
		t.Fatalf("wrap: index %d counter %d", c.Index, e2.NextIndex())
	}
}

func decodeFrom(t *testing.T, n int, chunks []Chunk) ([]byte, int) {
	t.Helper()
	d, err := NewDecoder(n)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		d.Add(c)
		if m, ok := d.Decoded(); ok {
			return m, i + 1
		}
	}
	return nil, -1
}

func TestAnyNChunksRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 13))
	for _, n := range []int{2, 10, 34, 62, 64, 96, 160, 960, 1152, 1000, 1088} {
		for trial := 0; trial < 20; trial++ {
			msg := randMsg(r, n)
			e, _ := NewEncoder(msg)
			need := chunksNeeded(n)
			// Pick `need` distinct indices out of a window; some trials use
			// parity chunks only.
			lo := 0
			if trial%3 == 0 {
				lo = need
			}
			perm := r.Perm(need * 3)
			var chunks []Chunk
			for _, p := range perm[:need] {
				chunks = append(chunks, e.ChunkAt(uint16(lo+p)))
			}
			got, used := decodeFrom(t, n, chunks)
			if used != need || !bytes.Equal(got, msg) {
				t.Fatalf("n=%d trial=%d: decoded after %d chunks (want %d), equal=%v",
					n, trial, used, need, bytes.Equal(got, msg))
			}
		}
	}
}

func TestDuplicatesDoNotCount(t *testing.T) {
	msg := randMsg(rand.New(rand.NewPCG(1, 1)), 96)
	e, _ := NewEncoder(msg)
	d, _ := NewDecoder(96)
	for i := 0; i < 5; i++ {
		d.Add(e.ChunkAt(7))
		d.Add(e.ChunkAt(1))
	}
	if _, ok := d.Decoded(); ok {
		t.Fatal("two distinct chunks decoded a 3-chunk message")
	}
	d.Add(e.ChunkAt(40000))
	m, ok := d.Decoded()
	if !ok || !bytes.Equal(m, msg) {
		t.Fatal("third distinct chunk did not rebuild the message")
	}
}

// TestLaterDuplicateReplaces pins the crate's SortedSet::push semantics: a
// chunk at an index already held replaces the held values.
func TestLaterDuplicateReplaces(t *testing.T) {
	msg := randMsg(rand.New(rand.NewPCG(2, 2)), 64)
	e, _ := NewEncoder(msg)
	d, _ := NewDecoder(64)
	bad := e.ChunkAt(0)
	bad.Data[0] ^= 1
	d.Add(bad)
	d.Add(e.ChunkAt(0))
	d.Add(e.ChunkAt(1))
	m, ok := d.Decoded()
	if !ok || !bytes.Equal(m, msg) {
		t.Fatal("the later chunk 0 should have replaced the earlier one")
	}
}

func TestRustChunks(t *testing.T) {
	raw, err := os.ReadFile("testdata/spqr_chunks.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Message string
			Chunks  []struct {
				Data  string
				Index uint16
			}
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	total := 0
	for ci, c := range f.Cases {
		msg, _ := hex.DecodeString(c.Message)
		e, err := NewEncoder(msg)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := NewDecoder(len(msg))
		for _, ch := range c.Chunks {
			got := e.ChunkAt(ch.Index)
			if hex.EncodeToString(got.Data[:]) != ch.Data {
				t.Errorf("case %d chunk %d: got %x want %s", ci, ch.Index, got.Data, ch.Data)
			}
			total++
			var rc Chunk
			rc.Index = ch.Index
			b, _ := hex.DecodeString(ch.Data)
			copy(rc.Data[:], b)
			if ch.Index >= uint16(chunksNeeded(len(msg))) {
				d.Add(rc)
			}
		}
		// The parity chunks recorded for each case rebuild it on their own
		// when there are enough of them.
		if m, ok := d.Decoded(); ok && !bytes.Equal(m, msg) {
			t.Errorf("case %d: parity-only decode mismatch", ci)
		}
	}
	if total != 91 {
		t.Fatalf("checked %d chunks, want 91", total)
	}
}

func TestDecoderSerializationRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{96, 160, 960, 1152, 34, 1000} {
		msg := randMsg(r, n)
		e, _ := NewEncoder(msg)
		d, _ := NewDecoder(n)
		for k := 0; k < chunksNeeded(n)-1; k++ {
			d.Add(e.ChunkAt(uint16(r.IntN(3 * chunksNeeded(n)))))
			enc := d.AppendBinary(nil)
			d2, rest, err := ParseDecoder(n, append(enc, 9))
			if err != nil || len(rest) != 1 {
				t.Fatalf("parse: %v rest=%d", err, len(rest))
			}
			if !bytes.Equal(d2.AppendBinary(nil), enc) || d2.counts != d.counts {
				t.Fatal("round trip changed the decoder")
			}
		}
	}
}

func TestParseDecoderRejects(t *testing.T) {
	good := func() []byte {
		e, _ := NewEncoder(make([]byte, 96))
		d, _ := NewDecoder(96)
		d.Add(e.ChunkAt(2))
		d.Add(e.ChunkAt(9))
		return d.AppendBinary(nil)
	}
	cases := map[string]func([]byte) []byte{
		"truncated":  func(b []byte) []byte { return b[:len(b)-1] },
		"empty":      func(b []byte) []byte { return nil },
		"zero mask":  func(b []byte) []byte { b[4], b[5] = 0, 0; return b },
		"unsorted":   func(b []byte) []byte { b[2+36+1] = 1; return b },
		"count high": func(b []byte) []byte { b[1] = 3; return b },
	}
	for name, f := range cases {
		if _, _, err := ParseDecoder(96, f(good())); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Four parity points for a 3-point polynomial cannot be reached.
	var b []byte
	b = append(b, 0, 4)
	for x := 10; x < 14; x++ {
		b = append(b, 0, byte(x), 0xff, 0xff)
		b = append(b, make([]byte, 32)...)
	}
	if _, _, err := ParseDecoder(96, b); err == nil {
		t.Error("too many parity points accepted")
	}
	if _, _, err := ParseDecoder(97, nil); err == nil {
		t.Error("odd length accepted")
	}
}

func FuzzParseDecoder(f *testing.F) {
	e, _ := NewEncoder(make([]byte, 160))
	d, _ := NewDecoder(160)
	d.Add(e.ChunkAt(3))
	d.Add(e.ChunkAt(8))
	f.Add(d.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, rest, err := ParseDecoder(160, b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.AppendBinary(nil), b[:len(b)-len(rest)]) {
			t.Fatal("not canonical")
		}
		d.Add(e.ChunkAt(1))
		d.Decoded()
	})
}

func BenchmarkErasureEncode(b *testing.B) {
	msg := randMsg(rand.New(rand.NewPCG(1, 2)), 1152)
	e, _ := NewEncoder(msg)
	b.Run("systematic", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e.ChunkAt(uint16(i % 36))
		}
	})
	b.Run("parity", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e.ChunkAt(uint16(36 + i%36))
		}
	})
}

func BenchmarkErasureDecode(b *testing.B) {
	msg := randMsg(rand.New(rand.NewPCG(1, 2)), 1152)
	e, _ := NewEncoder(msg)
	var chunks []Chunk
	for i := 0; i < 36; i++ {
		if i%4 == 0 {
			chunks = append(chunks, e.ChunkAt(uint16(100+i)))
		} else {
			chunks = append(chunks, e.ChunkAt(uint16(i)))
		}
	}
	b.Run("ek-quarter-parity", func(b *testing.B) {
		for b.Loop() {
			d, _ := NewDecoder(1152)
			for _, c := range chunks {
				d.Add(c)
			}
			if _, ok := d.Decoded(); !ok {
				b.Fatal("not decoded")
			}
		}
	})
}
