package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

func openTestStore(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), filepath.Join(tb.TempDir(), "h"), Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestBlocked(t *testing.T) {
	ctx := t.Context()
	st := openTestStore(t)
	if names, err := st.Read().Blocked(ctx); err != nil || len(names) != 0 {
		t.Fatalf("new store blocks %q, %v", names, err)
	}
	if b, err := st.Read().IsBlocked(ctx, "bob"); err != nil || b {
		t.Fatalf("IsBlocked on a new store: %v, %v", b, err)
	}
	check(t, st.Update(ctx, func(tx *Tx) error {
		return tx.SetBlocked(ctx, []string{"mallory", "bob", "bob", "", "eve\nmallory2"})
	}))
	names, err := st.Read().Blocked(ctx)
	check(t, err)
	if !slices.Equal(names, []string{"bob", "mallory"}) {
		t.Fatalf("Blocked = %q", names)
	}
	for name, want := range map[string]bool{"bob": true, "mallory": true, "bo": false, "ob": false, "mallory2": false,
		"eve": false, "": false, "bob\nmallory": false, "%": false, "_ob": false} {
		if got, err := st.Read().IsBlocked(ctx, name); err != nil || got != want {
			t.Errorf("IsBlocked(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	check(t, st.Update(ctx, func(tx *Tx) error { return tx.SetBlocked(ctx, nil) }))
	if b, err := st.Read().IsBlocked(ctx, "bob"); err != nil || b {
		t.Fatalf("IsBlocked after clearing: %v, %v", b, err)
	}
}

// BenchmarkIsBlocked: the check every received message makes, with
// nobody and with 1,000 people blocked.
func BenchmarkIsBlocked(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("blocked=%d", n), func(b *testing.B) {
			ctx := b.Context()
			st := openTestStore(b)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("user%05d", i)
			}
			if err := st.Update(ctx, func(tx *Tx) error { return tx.SetBlocked(ctx, names) }); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := st.Read().IsBlocked(ctx, "zed"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The floor: the smallest read of the store, one meta row.
	b.Run("floor=MetaInt", func(b *testing.B) {
		ctx := b.Context()
		st := openTestStore(b)
		for b.Loop() {
			if _, err := st.Read().MetaInt(ctx, "receipts_off", 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
