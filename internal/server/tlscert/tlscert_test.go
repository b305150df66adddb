package tlscert

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c1, fp1, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(c1.Certificate[0])
	if fp1 != hex.EncodeToString(h[:]) || len(fp1) != 64 {
		t.Fatalf("fingerprint %q is not the SHA-256 of the certificate", fp1)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	_, fp2, err := LoadOrCreate(dir)
	if err != nil || fp2 != fp1 {
		t.Fatalf("second start made another certificate: %s vs %s (%v)", fp2, fp1, err)
	}
	_, fp3, err := Load(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil || fp3 != fp1 {
		t.Fatalf("Load: %s, %v", fp3, err)
	}
	if _, _, err := Load(filepath.Join(dir, "nope"), filepath.Join(dir, KeyFile)); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// TestSessionTicketKey: nodes with one certificate derive one ticket key,
// a node with another certificate another key.
func TestSessionTicketKey(t *testing.T) {
	dir := t.TempDir()
	c1, _, err := LoadOrCreate(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := Load(filepath.Join(dir, "a", CertFile), filepath.Join(dir, "a", KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := LoadOrCreate(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	k1, err1 := SessionTicketKey(c1)
	k2, err2 := SessionTicketKey(c2)
	k3, err3 := SessionTicketKey(other)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if k1 != k2 {
		t.Error("one certificate, two ticket keys")
	}
	if k1 == k3 {
		t.Error("two certificates, one ticket key")
	}
}
