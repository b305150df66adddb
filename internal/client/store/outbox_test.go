package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/content"
)

// TestOutboxDoneRows: SetSent leaves the outbox row (for the next
// AddOutgoing to delete and reuse its pages), but the row is done: it is
// not listed nor found, the next AddOutgoing deletes it, and deleting its
// message (here by its timer) deletes it too.
func TestOutboxDoneRows(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	rows := func() int {
		var n int
		check(t, s.db.QueryRowContext(ctx, "SELECT count(*) FROM outbox").Scan(&n))
		return n
	}
	queue := func(timer time.Duration, req []byte) *Message {
		m := &Message{Peer: "bob", MsgID: content.NewID(), Outgoing: true, Kind: KindText, Body: "hi",
			SentAt: time.Now(), Shown: true, State: StatePending, Timer: timer}
		check(t, s.Update(ctx, func(tx *Tx) error {
			if _, err := tx.AddMessage(ctx, m); err != nil {
				return err
			}
			return tx.AddOutgoing(ctx, &Outgoing{Message: m.ID, Peer: m.Peer, Request: req})
		}))
		return m
	}
	req1, req2 := bytes.Repeat([]byte{1}, 27000), bytes.Repeat([]byte{2}, 27000)
	m1 := queue(0, req1)
	if out, err := s.Read().Outbox(ctx); err != nil || len(out) != 1 || !bytes.Equal(out[0].Request, req1) {
		t.Fatalf("outbox before sending: %v %v", out, err)
	}
	check(t, s.UpdateUnsynced(ctx, func(tx *Tx) error { return tx.SetSent(ctx, m1.ID, 7) }))
	if out, err := s.Read().Outbox(ctx); err != nil || len(out) != 0 {
		t.Fatalf("outbox after sending: %v %v", out, err)
	}
	if o, err := s.Read().OutgoingOf(ctx, m1.ID); err != nil || o != nil {
		t.Fatalf("OutgoingOf a sent message: %v %v", o, err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d outbox rows after SetSent, want the done one", n)
	}
	m2 := queue(time.Second, req2)
	if n := rows(); n != 1 {
		t.Fatalf("%d outbox rows after the next AddOutgoing, want 1 (the done one deleted)", n)
	}
	out, err := s.Read().Outbox(ctx)
	if err != nil || len(out) != 1 || out[0].Message != m2.ID || !bytes.Equal(out[0].Request, req2) {
		t.Fatalf("outbox: %v %v", out, err)
	}
	check(t, s.UpdateUnsynced(ctx, func(tx *Tx) error { return tx.SetSent(ctx, m2.ID, 8) }))
	if n := rows(); n != 1 {
		t.Fatalf("%d outbox rows", n)
	}
	check(t, s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Expire(ctx, time.Now().Add(time.Minute))
		return err
	}))
	if n := rows(); n != 0 {
		t.Fatalf("%d outbox rows after the message expired, want 0", n)
	}
}

// TestTxCancelled: statements of a transaction run without their
// context's cancellation (stmtContext), but a cancelled context still
// fails the transaction at its next statement and writes nothing.
func TestTxCancelled(t *testing.T) {
	s := open(t, t.TempDir(), Options{Create: true})
	ctx, cancel := context.WithCancel(t.Context())
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.SetMetaInt(ctx, "a", 1); err != nil {
			return err
		}
		cancel()
		if err := tx.SetMetaInt(ctx, "b", 2); err != nil {
			return err
		}
		return nil
	})
	if err == nil {
		t.Fatal("a transaction whose context was cancelled committed")
	}
	for _, k := range []string{"a", "b"} {
		if v, err := s.Read().MetaInt(t.Context(), k, 0); err != nil || v != 0 {
			t.Fatalf("meta %s = %d, %v after the cancelled transaction", k, v, err)
		}
	}
}
