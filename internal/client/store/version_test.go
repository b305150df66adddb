package store

import (
	"path/filepath"
	"testing"
)

// TestVersion: the version changes with a commit in this Store and with a
// commit by another one on the same home (another hush process), and not
// with reads.
func TestVersion(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	other := open(t, home, Options{})
	v0, err := s.Version(t.Context())
	check(t, err)
	if _, err := s.Read().Conversations(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Version(t.Context()); err != nil || v != v0 {
		t.Fatalf("a read changed the version: %v %v, %v", v0, v, err)
	}
	check(t, s.Update(t.Context(), func(tx *Tx) error { return tx.SetMetaInt(t.Context(), "x", 1) }))
	v1, err := s.Version(t.Context())
	check(t, err)
	if v1 == v0 {
		t.Fatal("a commit here left the version unchanged")
	}
	check(t, other.Update(t.Context(), func(tx *Tx) error { return tx.SetMetaInt(t.Context(), "x", 2) }))
	v2, err := s.Version(t.Context())
	check(t, err)
	if v2 == v1 {
		t.Fatal("a commit by another Store left the version unchanged")
	}
}
