// Package polycode is the erasure code SPQR uses to cut its KEM objects into
// 32-byte chunks (Rust crate spqr, src/encoding/polynomial.rs:
// PolyEncoder::encode_bytes_base, PolyEncoder::chunk_at, PolyDecoder::add_chunk
// and PolyDecoder::decoded_message).
//
// A message of even length is read as big-endian 16-bit symbols s_0, s_1, ...
// Symbol i belongs to polynomial i mod 16 as the point with x-coordinate
// i div 16. Polynomial P_j is the unique polynomial over GF(2^16) of degree
// below n_j (its number of points) through them. Chunk idx carries
// P_0(idx) .. P_15(idx), each as two big-endian bytes, so chunks below
// ceil(len/32) are the message itself (systematic) and later chunks are
// parity. Any ceil(len/32) distinct chunks rebuild the message.
//
// Evaluation uses the barycentric form of the Lagrange interpolation
// polynomial; any correct interpolation yields the same bytes as the crate.
package polycode

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync"

	"github.com/hushmsg/hush/spqr/internal/gf16"
)

// ChunkSize is the number of data bytes in one chunk.
const ChunkSize = 32

// NumPolys is the number of interleaved polynomials (symbols per chunk).
const NumPolys = ChunkSize / 2

// MaxMessageLen is the longest message the code can carry: 65536 chunk
// positions of 16 symbols (the crate's MessageLengthTooLong bound).
const MaxMessageLen = (1 << 16) * NumPolys

var (
	// ErrOddLength means the message length is not a multiple of 2.
	ErrOddLength = errors.New("polycode: message length must be even")
	// ErrTooLong means the message is longer than MaxMessageLen.
	ErrTooLong = errors.New("polycode: message too long")
	// ErrMalformed means a serialized decoder is invalid.
	ErrMalformed = errors.New("polycode: malformed decoder encoding")
)

// Chunk is one coded piece of a message: its index and 16 symbols.
type Chunk struct {
	Index uint16
	Data  [ChunkSize]byte
}

// pointsFor returns n_j, the number of symbols of polynomial j in a message of
// nsym symbols (PolyDecoder::necessary_points).
func pointsFor(nsym, j int) int {
	n := nsym / NumPolys
	if j < nsym%NumPolys {
		n++
	}
	return n
}

// ---------------------------------------------------------------------------
// Encoder

// Encoder produces the chunks of one message. Its zero value is not usable;
// make one with NewEncoder or RestoreEncoder. An Encoder is a small value:
// copying it copies the position, and the message bytes are never modified,
// so copies may share them.
type Encoder struct {
	msg []byte
	idx uint32
}

// NewEncoder starts encoding msg at chunk index 0 (encode_bytes_base). msg
// is retained and must not be modified afterwards.
func NewEncoder(msg []byte) (Encoder, error) {
	return RestoreEncoder(msg, 0)
}

// RestoreEncoder rebuilds an encoder for msg whose next chunk index is idx.
func RestoreEncoder(msg []byte, idx uint32) (Encoder, error) {
	if len(msg)%2 != 0 {
		return Encoder{}, ErrOddLength
	}
	if len(msg) > MaxMessageLen {
		return Encoder{}, ErrTooLong
	}
	return Encoder{msg: msg, idx: idx}, nil
}

// Message returns the encoded message. It must not be modified.
func (e *Encoder) Message() []byte { return e.msg }

// NextIndex returns the counter of the next chunk (the crate's u32 idx; the
// chunk index is its low 16 bits).
func (e *Encoder) NextIndex() uint32 { return e.idx }

// Next returns the chunk at the current index and advances the index by one,
// wrapping as a uint32 (Encoder::next_chunk).
func (e *Encoder) Next() Chunk {
	c := e.ChunkAt(uint16(e.idx))
	e.idx++
	return c
}

// ChunkAt returns chunk idx of the message (PolyEncoder::chunk_at).
func (e *Encoder) ChunkAt(idx uint16) Chunk {
	out := Chunk{Index: idx}
	nsym := len(e.msg) / 2
	x := int(idx)
	// Coefficients for the (at most two) distinct point counts, lazily made.
	var coefN [2]int
	var coef [2][]uint16
	for j := 0; j < NumPolys; j++ {
		n := pointsFor(nsym, j)
		var v uint16
		switch {
		case x < n:
			s := x*NumPolys + j
			v = binary.BigEndian.Uint16(e.msg[2*s:])
		case n == 0:
			v = 0
		default:
			k := 0
			if coef[0] != nil && coefN[0] != n {
				k = 1
			}
			if coef[k] == nil {
				coefN[k] = n
				coef[k] = evalCoefficients(seqNodes(n), seqWeights(n), uint16(x))
			}
			c := coef[k]
			for i := 0; i < n; i++ {
				s := i*NumPolys + j
				v ^= gf16.Mul(binary.BigEndian.Uint16(e.msg[2*s:]), c[i])
			}
		}
		binary.BigEndian.PutUint16(out.Data[2*j:], v)
	}
	return out
}

// ---------------------------------------------------------------------------
// Barycentric interpolation

// weights returns w_i = 1 / prod_{j != i} (x_i - x_j) for distinct nodes xs.
func weights(xs []uint16) []uint16 {
	w := make([]uint16, len(xs))
	for i, xi := range xs {
		d := uint16(1)
		for j, xj := range xs {
			if i != j {
				d = gf16.Mul(d, xi^xj)
			}
		}
		w[i] = gf16.Inv(d)
	}
	return w
}

// evalCoefficients returns c_i with P(x) = sum_i y_i c_i for the polynomial P
// of degree < len(xs) through (xs[i], y_i); x must not be a node.
// c_i = l(x) w_i / (x - x_i) with l(x) = prod_j (x - x_j).
func evalCoefficients(xs, w []uint16, x uint16) []uint16 {
	l := uint16(1)
	for _, xj := range xs {
		l = gf16.Mul(l, x^xj)
	}
	c := make([]uint16, len(xs))
	for i, xi := range xs {
		c[i] = gf16.Mul(l, gf16.Div(w[i], x^xi))
	}
	return c
}

var (
	seqMu    sync.Mutex
	seqCache = map[int][]uint16{}
)

// seqNodes returns the nodes 0, 1, ..., n-1.
func seqNodes(n int) []uint16 {
	xs := make([]uint16, n)
	for i := range xs {
		xs[i] = uint16(i)
	}
	return xs
}

// seqWeights returns the barycentric weights of the nodes 0..n-1, cached
// because every SPQR payload uses one of four sizes.
func seqWeights(n int) []uint16 {
	seqMu.Lock()
	defer seqMu.Unlock()
	if w, ok := seqCache[n]; ok {
		return w
	}
	w := weights(seqNodes(n))
	if len(seqCache) < 64 {
		seqCache[n] = w
	}
	return w
}

// ---------------------------------------------------------------------------
// Decoder

// point is one received chunk position as the decoder keeps it: which of the
// 16 polynomials kept a point at x (bit j of mask), and those points' values.
// Values of polynomials whose bit is clear are zero.
type point struct {
	x    uint16
	mask uint16
	y    [NumPolys]uint16
}

// Decoder collects chunks until a message of known length can be rebuilt.
// Use Clone before changing a Decoder shared with another state.
type Decoder struct {
	nsym   int
	pts    []point // sorted by x, strictly increasing
	counts [NumPolys]int
}

// NewDecoder makes a decoder for a message of lenBytes bytes (PolyDecoder::new).
func NewDecoder(lenBytes int) (Decoder, error) {
	if lenBytes%2 != 0 {
		return Decoder{}, ErrOddLength
	}
	if lenBytes < 0 || lenBytes > MaxMessageLen {
		return Decoder{}, ErrTooLong
	}
	return Decoder{nsym: lenBytes / 2}, nil
}

// Clone returns an independent copy.
func (d *Decoder) Clone() Decoder {
	c := *d
	c.pts = append([]point(nil), d.pts...)
	return c
}

// MessageLen returns the length in bytes of the message being decoded.
func (d *Decoder) MessageLen() int { return 2 * d.nsym }

// find returns the position of x in d.pts and whether it is there.
func (d *Decoder) find(x uint16) (int, bool) {
	i := sort.Search(len(d.pts), func(i int) bool { return d.pts[i].x >= x })
	return i, i < len(d.pts) && d.pts[i].x == x
}

// Add records a chunk (PolyDecoder::add_chunk). For each polynomial j the
// point at x = chunk index is kept if x is one of the first n_j positions or
// if fewer than n_j points are held; a point whose x is already held
// replaces the held one, as sorted_vec's SortedSet::push does.
func (d *Decoder) Add(c Chunk) {
	x := c.Index
	for j := 0; j < NumPolys; j++ {
		need := pointsFor(d.nsym, j)
		if !(int(x) < need || d.counts[j] < need) {
			continue
		}
		y := binary.BigEndian.Uint16(c.Data[2*j:])
		i, ok := d.find(x)
		if !ok {
			d.pts = append(d.pts, point{})
			copy(d.pts[i+1:], d.pts[i:])
			d.pts[i] = point{x: x}
		}
		p := &d.pts[i]
		if p.mask&(1<<j) == 0 {
			p.mask |= 1 << j
			d.counts[j]++
		}
		p.y[j] = y
	}
}

// Complete reports whether every polynomial has enough points.
func (d *Decoder) Complete() bool {
	for j := 0; j < NumPolys; j++ {
		if d.counts[j] < pointsFor(d.nsym, j) {
			return false
		}
	}
	return true
}

// Decoded returns the message once enough chunks have been added
// (PolyDecoder::decoded_message): held systematic points are used as they
// are, and the others are interpolated from the polynomial's n_j points of
// smallest x.
func (d *Decoder) Decoded() ([]byte, bool) {
	if !d.Complete() {
		return nil, false
	}
	out := make([]byte, 2*d.nsym)
	var lastXs, lastW []uint16
	// Coefficient vectors per missing position, valid while the node set
	// (lastXs) stays the same; with whole chunks it is the same for all 16
	// polynomials.
	var coefs [][]uint16
	for j := 0; j < NumPolys; j++ {
		need := pointsFor(d.nsym, j)
		if need == 0 {
			continue
		}
		// Nodes and values: the first `need` points of polynomial j, and
		// the systematic positions (x < need) it holds directly.
		xs := make([]uint16, 0, need)
		ys := make([]uint16, 0, need)
		vals := make([]uint16, need)
		have := make([]bool, need)
		nheld := 0
		for k := range d.pts {
			p := &d.pts[k]
			if p.mask&(1<<j) == 0 {
				continue
			}
			if int(p.x) < need {
				vals[p.x] = p.y[j]
				have[p.x] = true
				nheld++
			}
			if len(xs) < need {
				xs = append(xs, p.x)
				ys = append(ys, p.y[j])
			}
		}
		var w []uint16
		if nheld < need {
			if lastXs != nil && equalU16(lastXs, xs) {
				w = lastW
			} else {
				w = weights(xs)
				lastXs, lastW = xs, w
				coefs = make([][]uint16, need)
			}
		}
		for pos := 0; pos < need; pos++ {
			v := vals[pos]
			if !have[pos] {
				if len(coefs) != need {
					coefs = make([][]uint16, need)
				}
				c := coefs[pos]
				if c == nil {
					c = evalCoefficients(xs, w, uint16(pos))
					coefs[pos] = c
				}
				for i := range xs {
					v ^= gf16.Mul(ys[i], c[i])
				}
			}
			s := pos*NumPolys + j
			binary.BigEndian.PutUint16(out[2*s:], v)
		}
	}
	return out, true
}

func equalU16(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// AppendBinary appends the decoder's points in a canonical form:
// count (u16 BE), then per point x (u16), mask (u16) and the values of the
// polynomials named in mask, in order. The message length is not included;
// the caller knows it from context.
func (d *Decoder) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.pts)))
	for k := range d.pts {
		p := &d.pts[k]
		b = binary.BigEndian.AppendUint16(b, p.x)
		b = binary.BigEndian.AppendUint16(b, p.mask)
		for j := 0; j < NumPolys; j++ {
			if p.mask&(1<<j) != 0 {
				b = binary.BigEndian.AppendUint16(b, p.y[j])
			}
		}
	}
	return b
}

// ParseDecoder reads what AppendBinary wrote for a decoder of a lenBytes-byte
// message and returns the rest of b. It rejects anything AppendBinary could
// not have written for a decoder reachable through Add: unsorted or repeated
// x, empty masks, points for polynomials that have none, and more points of
// x >= n_j than n_j.
func ParseDecoder(lenBytes int, b []byte) (Decoder, []byte, error) {
	d, err := NewDecoder(lenBytes)
	if err != nil {
		return Decoder{}, nil, err
	}
	if len(b) < 2 {
		return Decoder{}, nil, ErrMalformed
	}
	cnt := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	var large [NumPolys]int
	var allowed uint16
	for j := 0; j < NumPolys; j++ {
		if pointsFor(d.nsym, j) > 0 {
			allowed |= 1 << j
		}
	}
	if cnt > 0 {
		d.pts = make([]point, 0, cnt)
	}
	for k := 0; k < cnt; k++ {
		if len(b) < 4 {
			return Decoder{}, nil, ErrMalformed
		}
		p := point{x: binary.BigEndian.Uint16(b), mask: binary.BigEndian.Uint16(b[2:])}
		b = b[4:]
		if p.mask == 0 || p.mask&^allowed != 0 {
			return Decoder{}, nil, ErrMalformed
		}
		if k > 0 && p.x <= d.pts[k-1].x {
			return Decoder{}, nil, ErrMalformed
		}
		for j := 0; j < NumPolys; j++ {
			if p.mask&(1<<j) == 0 {
				continue
			}
			if len(b) < 2 {
				return Decoder{}, nil, ErrMalformed
			}
			p.y[j] = binary.BigEndian.Uint16(b)
			b = b[2:]
			d.counts[j]++
			if int(p.x) >= pointsFor(d.nsym, j) {
				large[j]++
				if large[j] > pointsFor(d.nsym, j) {
					return Decoder{}, nil, ErrMalformed
				}
			}
		}
		d.pts = append(d.pts, p)
	}
	return d, b, nil
}
