// Package gf16 implements arithmetic in GF(2^16) with the reduction
// polynomial x^16 + x^12 + x^3 + x + 1 (0x1100b), the field used by the SPQR
// erasure code (Rust crate spqr, src/encoding/gf.rs, constant POLY).
//
// Addition and subtraction are XOR. Multiplication and division use
// logarithm and antilogarithm tables, generated into tables.bin and embedded
// (read-only data of the binary, so that no program pays for building them
// at start-up; gentables.go writes them, MakeTables computes them, and
// TestTables checks the two agree). Table lookups are not constant time;
// that is acceptable here because every value this field is used on
// (erasure-code chunks) is public wire data.
package gf16

import (
	_ "embed"
	"encoding/binary"
)

//go:generate go run gentables.go

// Poly is the reduction polynomial x^16 + x^12 + x^3 + x + 1.
const Poly = 0x1100b

// order is the size of the multiplicative group, 2^16 - 1.
const order = 1<<16 - 1

// tables holds, big-endian, exp[i] = g^i for i in [0, 2*order) (doubled so
// that exp[log a + log b] needs no reduction) and then log[a] for every a
// (log[0] unused), each a uint16.
//
//go:embed tables.bin
var tables string

const logOffset = 2 * 2 * order

func exp(i uint32) uint16 { return uint16(tables[2*i])<<8 | uint16(tables[2*i+1]) }
func lg(a uint16) uint32 {
	return uint32(tables[logOffset+2*uint32(a)])<<8 | uint32(tables[logOffset+2*uint32(a)+1])
}

// MakeTables computes the contents of tables.bin. x (= 2) generates the
// multiplicative group because 0x1100b is primitive; TestGeneratorIsPrimitive
// checks that every non-zero element is reached.
func MakeTables() []byte {
	b := make([]byte, logOffset+2*(1<<16))
	v := uint32(1)
	for i := uint32(0); i < order; i++ {
		binary.BigEndian.PutUint16(b[2*i:], uint16(v))
		binary.BigEndian.PutUint16(b[2*(i+order):], uint16(v))
		binary.BigEndian.PutUint16(b[logOffset+2*v:], uint16(i))
		v <<= 1
		if v&0x10000 != 0 {
			v ^= Poly
		}
	}
	return b
}

// Add returns a + b (equal to a - b in characteristic 2).
func Add(a, b uint16) uint16 { return a ^ b }

// Mul returns a * b.
func Mul(a, b uint16) uint16 {
	if a == 0 || b == 0 {
		return 0
	}
	return exp(lg(a) + lg(b))
}

// Inv returns the multiplicative inverse of a, and 0 for a == 0 (the same
// convention as the crate, which computes a^(2^16-2)).
func Inv(a uint16) uint16 {
	if a == 0 {
		return 0
	}
	return exp(order - lg(a))
}

// Div returns a / b, and 0 when b == 0 (a * b^(2^16-2), as in the crate).
func Div(a, b uint16) uint16 {
	if a == 0 || b == 0 {
		return 0
	}
	return exp(lg(a) + order - lg(b))
}

// Log returns the discrete logarithm of a != 0 to the base x. It lets callers
// that multiply one value by many others work in the log domain.
func Log(a uint16) uint32 { return lg(a) }

// Exp returns x^e for e < 2*(2^16-1).
func Exp(e uint32) uint16 { return exp(e) }

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
