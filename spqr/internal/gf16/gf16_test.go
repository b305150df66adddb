package gf16

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"
)

func TestGeneratorIsPrimitive(t *testing.T) {
	seen := make([]bool, 1<<16)
	for i := 0; i < Order; i++ {
		v := Exp(uint32(i))
		if v == 0 || seen[v] {
			t.Fatalf("x^%d = %#x repeats or is zero: 0x1100b is not primitive with generator x", i, v)
		}
		seen[v] = true
	}
}

func TestMulMatchesSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		a, b := uint16(r.Uint32()), uint16(r.Uint32())
		if got, want := Mul(a, b), MulSlow(a, b); got != want {
			t.Fatalf("Mul(%#x,%#x) = %#x, want %#x", a, b, got, want)
		}
	}
	for _, a := range []uint16{0, 1, 2, 0x8000, 0xffff} {
		for _, b := range []uint16{0, 1, 2, 0x8000, 0xffff} {
			if Mul(a, b) != MulSlow(a, b) {
				t.Fatalf("Mul(%#x,%#x) mismatch", a, b)
			}
		}
	}
}

func TestInvDiv(t *testing.T) {
	for a := 1; a < 1<<16; a++ {
		if Mul(uint16(a), Inv(uint16(a))) != 1 {
			t.Fatalf("a*Inv(a) != 1 for a=%#x", a)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		a, b := uint16(r.Uint32()), uint16(r.Uint32())
		if b == 0 {
			continue
		}
		if Mul(Div(a, b), b) != a {
			t.Fatalf("Div(%#x,%#x)*b != a", a, b)
		}
	}
	if Div(5, 0) != 0 || Inv(0) != 0 {
		t.Fatal("division by zero must give 0 as in the crate")
	}
}

// TestRustTriples checks products and quotients recorded from the Rust crate
// (testdata copied from ../polycode/testdata/spqr_chunks.json, "gf_triples").
func TestRustTriples(t *testing.T) {
	raw, err := os.ReadFile("../polycode/testdata/spqr_chunks.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Triples []struct {
			A, B, Product, Quotient uint16
		} `json:"gf_triples"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Triples) == 0 {
		t.Fatal("no triples")
	}
	for _, tr := range f.Triples {
		if got := Mul(tr.A, tr.B); got != tr.Product {
			t.Errorf("Mul(%d,%d) = %d, want %d", tr.A, tr.B, got, tr.Product)
		}
		if got := Div(tr.A, tr.B); got != tr.Quotient {
			t.Errorf("Div(%d,%d) = %d, want %d", tr.A, tr.B, got, tr.Quotient)
		}
	}
}

func BenchmarkMul(b *testing.B) {
	x, y := uint16(12345), uint16(54321)
	for b.Loop() {
		x = Mul(x, y) ^ 1
	}
	_ = x
}

// TestTables: the embedded tables are what MakeTables computes (run go
// generate after changing it).
func TestTables(t *testing.T) {
	if tables != string(MakeTables()) {
		t.Fatal("tables.bin is stale: run go generate ./spqr/internal/gf16")
	}
}
