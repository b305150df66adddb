//go:build ignore

// gentables writes tables.bin, the logarithm and antilogarithm tables of
// GF(2^16) that package gf16 embeds. Run with go generate; TestTables
// checks that tables.bin is what this program writes.
package main

import (
	"log"
	"os"

	"github.com/hushmsg/hush/spqr/internal/gf16"
)

func main() {
	if err := os.WriteFile("tables.bin", gf16.MakeTables(), 0o644); err != nil {
		log.Fatal(err)
	}
}
