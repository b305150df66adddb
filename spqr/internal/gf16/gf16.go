// Package gf16 implements arithmetic in GF(2^16) with the reduction
// polynomial x^16 + x^12 + x^3 + x + 1 (0x1100b), the field used by the SPQR
// erasure code (Rust crate spqr, src/encoding/gf.rs, constant POLY).
//
// Addition and subtraction are XOR. Multiplication and division use
// logarithm and antilogarithm tables built on first use (not at program
// start: most messages need no field arithmetic, since the first chunks of
// the erasure code are the data itself, and every hush command would
// otherwise pay for the tables).
// Table lookups are not constant time; that is acceptable here because every
// value this field is used on (erasure-code chunks) is public wire data.
package gf16

import "sync"

// Poly is the reduction polynomial x^16 + x^12 + x^3 + x + 1.
const Poly = 0x1100b

// order is the size of the multiplicative group, 2^16 - 1.
const order = 1<<16 - 1

type tables struct {
	// exp[i] = g^i for i in [0, 2*order); doubled so that
	// exp[log a + log b] needs no modular reduction.
	exp [2 * order]uint16
	// log[a] = i with g^i = a, for a != 0. log[0] is unused.
	log [1 << 16]uint32
}

var (
	once sync.Once
	tabs *tables
)

// tab returns the tables, building them the first time.
func tab() *tables {
	once.Do(build)
	return tabs
}

func build() {
	t := new(tables)
	expTab, logTab := &t.exp, &t.log
	// x (= 2) generates the multiplicative group because 0x1100b is primitive;
	// TestGeneratorIsPrimitive checks that every non-zero element is reached.
	v := uint32(1)
	for i := 0; i < order; i++ {
		expTab[i] = uint16(v)
		expTab[i+order] = uint16(v)
		logTab[v] = uint32(i)
		v <<= 1
		if v&0x10000 != 0 {
			v ^= Poly
		}
	}
	tabs = t
}

// Add returns a + b (equal to a - b in characteristic 2).
func Add(a, b uint16) uint16 { return a ^ b }

// Mul returns a * b.
func Mul(a, b uint16) uint16 {
	if a == 0 || b == 0 {
		return 0
	}
	t := tab()
	return t.exp[t.log[a]+t.log[b]]
}

// Inv returns the multiplicative inverse of a, and 0 for a == 0 (the same
// convention as the crate, which computes a^(2^16-2)).
func Inv(a uint16) uint16 {
	if a == 0 {
		return 0
	}
	t := tab()
	return t.exp[order-t.log[a]]
}

// Div returns a / b, and 0 when b == 0 (a * b^(2^16-2), as in the crate).
func Div(a, b uint16) uint16 {
	if a == 0 || b == 0 {
		return 0
	}
	t := tab()
	return t.exp[t.log[a]+order-t.log[b]]
}

// Log returns the discrete logarithm of a != 0 to the base x. It lets callers
// that multiply one value by many others work in the log domain.
func Log(a uint16) uint32 { return tab().log[a] }

// Exp returns x^e for e < 2*(2^16-1).
func Exp(e uint32) uint16 { return tab().exp[e] }

// Order is the order of the multiplicative group, 2^16 - 1.
const Order = order

// MulSlow multiplies by carry-less multiplication and bitwise reduction. It
// exists as an independent reference for the table-driven Mul in tests.
func MulSlow(a, b uint16) uint16 {
	var p uint32
	for i := 0; i < 16; i++ {
		if b&(1<<i) != 0 {
			p ^= uint32(a) << i
		}
	}
	for i := 31; i >= 16; i-- {
		if p&(1<<i) != 0 {
			p ^= Poly << (i - 16)
		}
	}
	return uint16(p)
}
