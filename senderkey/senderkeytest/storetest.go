// Package senderkeytest is the conformance suite of senderkey.Store: every
// implementation runs it (senderkey.MemoryStore, hushpeer's state file, a
// client's persistent store).
package senderkeytest

import (
	"bytes"
	"testing"

	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// Run checks a Store that newStore returns empty: an absent record loads
// as nil; a stored record loads back with the same encoding, byte for byte;
// records are kept apart by sender name, device and distribution id; a
// store replaces the previous record; a returned record is the caller's
// (changing it changes nothing stored).
func Run(t *testing.T, newStore func(t *testing.T) senderkey.Store) {
	ctx := t.Context()
	group, _ := senderkey.ParseDistributionID("3b9c7d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e")
	other, _ := senderkey.ParseDistributionID("3b9c7d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0f")
	alice := session.Address{Name: "alice", Device: 1}
	// A record with one chain of our own, made through the Cipher.
	own := func(t *testing.T, st senderkey.Store, who session.Address, id senderkey.DistributionID) *senderkey.DistributionMessage {
		t.Helper()
		d, err := (&senderkey.Cipher{Store: st, Local: who}).Distribution(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	encoded := func(t *testing.T, r *senderkey.Record) []byte {
		t.Helper()
		if r == nil {
			return nil
		}
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	load := func(t *testing.T, st senderkey.Store, who session.Address, id senderkey.DistributionID) *senderkey.Record {
		t.Helper()
		r, err := st.LoadSenderKey(ctx, who, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("absent", func(t *testing.T) {
		if r := load(t, newStore(t), alice, group); r != nil {
			t.Fatal("an empty store returned a record")
		}
	})
	t.Run("round-trip", func(t *testing.T) {
		st := newStore(t)
		own(t, st, alice, group)
		r := load(t, st, alice, group)
		if r == nil || r.StateCount() != 1 {
			t.Fatalf("stored record not found (%v)", r)
		}
		// Storing what was loaded keeps the same bytes.
		before := encoded(t, r)
		if err := st.StoreSenderKey(ctx, alice, group, r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(t, load(t, st, alice, group)), before) {
			t.Fatal("the record changed on a store and load")
		}
	})
	t.Run("keys-apart", func(t *testing.T) {
		st := newStore(t)
		own(t, st, alice, group)
		for _, k := range []struct {
			who session.Address
			id  senderkey.DistributionID
		}{
			{session.Address{Name: "alice", Device: 2}, group},
			{session.Address{Name: "alicf", Device: 1}, group},
			{session.Address{Name: "ALICE", Device: 1}, group},
			{alice, other},
		} {
			if r := load(t, st, k.who, k.id); r != nil {
				t.Fatalf("a record for %s/%s was found under alice.1/%s", k.who, k.id, group)
			}
		}
	})
	t.Run("replace", func(t *testing.T) {
		st := newStore(t)
		d := own(t, st, alice, group)
		m, err := (&senderkey.Cipher{Store: st, Local: alice}).Encrypt(ctx, group, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		d2 := own(t, st, alice, group)
		if d2.ChainID() != d.ChainID() || d2.Iteration() != m.Iteration()+1 {
			t.Fatalf("after one message the chain is at %d (chain %d), want %d (chain %d)", d2.Iteration(), d2.ChainID(), m.Iteration()+1, d.ChainID())
		}
	})
	t.Run("caller-owns-loaded-record", func(t *testing.T) {
		st := newStore(t)
		own(t, st, alice, group)
		r := load(t, st, alice, group)
		before := encoded(t, r)
		// Encrypt loads, changes and stores the record: the one loaded
		// before must not change with it.
		if _, err := (&senderkey.Cipher{Store: st, Local: alice}).Encrypt(ctx, group, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(t, r), before) {
			t.Fatal("a loaded record changed when the stored one did")
		}
	})
}
