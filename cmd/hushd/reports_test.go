package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/franking"
)

// TestFrankingKeyRotate: each rotation adds a key after the others, which
// stay; the file is the data folder's unless --franking-keys names one.
func TestFrankingKeyRotate(t *testing.T) {
	dir := t.TempDir()
	for want := uint32(1); want <= 3; want++ {
		var out, errb bytes.Buffer
		if err := run([]string{"franking-key", "rotate", "--data", dir}, &out, &errb); err != nil {
			t.Fatalf("rotate: %v %s", err, errb.String())
		}
		r, err := franking.Load(filepath.Join(dir, franking.KeyringFile))
		if err != nil || r.Current().ID != want || len(r.Keys()) != int(want) {
			t.Fatalf("after rotation %d: %v %v", want, r, err)
		}
		if !strings.Contains(out.String(), "franking key") {
			t.Fatalf("output %q", out.String())
		}
	}
	other := filepath.Join(t.TempDir(), "keys")
	if err := run([]string{"franking-key", "rotate", "--data", dir, "--franking-keys", other}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if r, err := franking.Load(other); err != nil || r.Current().ID != 1 {
		t.Fatalf("--franking-keys: %v %v", r, err)
	}
	if err := run([]string{"franking-key", "spin"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("franking-key spin ran")
	}
	if err := run([]string{"reports", "list", "--data", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "no hushd database") {
		t.Fatalf("reports in an empty folder: %v", err)
	}
	if err := run([]string{"reports", "show", "x", "--data", dir}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("reports show x ran")
	}
}
