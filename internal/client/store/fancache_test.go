package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// fanWrap is the ordinary store of a fan-out, as the client's: sessions
// from FanOutSessions, changes written by StoreFanOut.
type fanWrap struct {
	*OrdinaryStore
	recs, dirty map[session.Address]*session.Record
}

func (f *fanWrap) LoadSession(_ context.Context, a session.Address) (*session.Record, error) {
	return f.recs[a], nil
}

func (f *fanWrap) StoreSession(_ context.Context, a session.Address, r *session.Record) error {
	f.recs[a], f.dirty[a] = r, r
	return nil
}

// fanOnce encrypts one message to bob's device through the fan-out cache
// of s, checking first that what FanOutSessions gives is what the database
// holds (the cache is never stale). It returns the ciphertext, the record
// used, and whether it was the one kept from the last fan-out (a hit).
// With fail, the transaction fails after the ratchet step.
func fanOnce(t *testing.T, s *Store, last *session.Record, fail bool) (*session.Ciphertext, *session.Record, bool, error) {
	t.Helper()
	ctx := t.Context()
	bobAddr := session.Address{Name: "bob", Device: 2}
	var ct *session.Ciphertext
	var rec *session.Record
	err := s.Update(ctx, func(tx *Tx) error {
		o := tx.Ordinary()
		got, err := o.FanOutSessions(ctx, "bob", "alice")
		if err != nil {
			return err
		}
		want, err := o.LoadSessions(ctx, "bob", "alice")
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			t.Errorf("the cache has %d sessions, the database %d", len(got), len(want))
		}
		for a, w := range want {
			wb, _ := w.MarshalBinary()
			gb, _ := got[a].MarshalBinary()
			if !bytes.Equal(wb, gb) {
				t.Errorf("the cache's session with %v differs from the database's", a)
			}
		}
		rec = got[bobAddr]
		f := &fanWrap{OrdinaryStore: o, recs: got, dirty: map[session.Address]*session.Record{}}
		c := &session.Cipher{Store: f, Local: session.Address{Name: "alice", Device: 1}}
		if ct, err = c.Encrypt(ctx, bobAddr, []byte("hello")); err != nil {
			return err
		}
		if err := o.StoreFanOut(ctx, f.recs, f.dirty); err != nil {
			return err
		}
		if fail {
			return errors.New("failed after the ratchet step")
		}
		return nil
	})
	return ct, rec, rec == last && last != nil, err
}

// TestFanOutCache: a fan-out takes its sessions from the cache only when
// no ordinary session can have changed since the last fan-out committed
// them: not after another connection to the home (another process)
// committed, nor after a write through the ordinary space in this process,
// nor after a transaction failed; and every message still decrypts, in
// order, at the receiver.
func TestFanOutCache(t *testing.T) {
	ctx := t.Context()
	aliceID, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	bobID, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	alice, _ := newDevice(t, "alice", 1, aliceID)
	bob, bundle := newDevice(t, "bob", 2, bobID)
	bobAddr := session.Address{Name: "bob", Device: 2}
	aliceAddr := session.Address{Name: "alice", Device: 1}
	check(t, alice.Update(ctx, func(tx *Tx) error {
		return ordinaryCipher(alice, tx).ProcessBundle(ctx, bobAddr, bundle)
	}))
	var sent []*session.Ciphertext
	send := func(s *Store, last *session.Record, wantHit bool) *session.Record {
		t.Helper()
		ct, rec, hit, err := fanOnce(t, s, last, false)
		check(t, err)
		if hit != wantHit {
			t.Errorf("cache hit %v, want %v", hit, wantHit)
		}
		sent = append(sent, ct)
		return rec
	}

	r := send(alice, nil, false) // read, then kept
	r = send(alice, r, true)
	r = send(alice, r, true)

	// Another process on the same home sends: the cache is stale.
	other := open(t, alice.Home(), Options{})
	send(other, nil, false)
	r = send(alice, r, false)
	r = send(alice, r, true)

	// A write through the ordinary space in this process (a message
	// encrypted outside a fan-out): stale.
	check(t, alice.Update(ctx, func(tx *Tx) error {
		ct, err := ordinaryCipher(alice, tx).Encrypt(ctx, bobAddr, []byte("outside"))
		sent = append(sent, ct)
		return err
	}))
	r = send(alice, r, false)
	r = send(alice, r, true)

	// A failed transaction: its ratchet step is forgotten with it.
	_, _, _, err = fanOnce(t, alice, r, true)
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	r = send(alice, r, false)
	send(alice, r, true)

	// A store whose key space is written by a second connection of this
	// process, unsynced: stale too.
	check(t, other.UpdateUnsynced(ctx, func(tx *Tx) error { return tx.Ordinary().DeleteSession(ctx, bobAddr) }))
	check(t, alice.Update(ctx, func(tx *Tx) error {
		got, err := tx.Ordinary().FanOutSessions(ctx, "bob")
		if err == nil && got[bobAddr] != nil {
			t.Error("a deleted session came from the cache")
		}
		return err
	}))

	// bob reads every message, in order: no counter was used twice.
	for i, ct := range sent {
		check(t, bob.Update(ctx, func(tx *Tx) error {
			c := ordinaryCipher(bob, tx)
			pt, err := c.Decrypt(ctx, aliceAddr, ct.Type, ct.Body)
			if err != nil {
				t.Errorf("message %d: %v", i, err)
				return nil
			}
			if string(pt) != "hello" && string(pt) != "outside" {
				t.Errorf("message %d: %q", i, pt)
			}
			return nil
		}))
	}
}
