package client_test

import (
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// recvUnshown receives what is waiting without showing it (no read
// receipt goes).
func (u *user) recvUnshown(t *testing.T) []*store.Message {
	t.Helper()
	var got []*store.Message
	check(t, u.c.Receive(t.Context(), client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) { got = append(got, m) }, Warn: func(err error) { t.Logf("%s: %v", u.name, err) }}))
	return got
}

// recvQuiet receives what is waiting, which adds no line (receipts), and
// returns at once when nothing is.
func (u *user) recvQuiet(t *testing.T) {
	t.Helper()
	check(t, u.c.Receive(t.Context(), client.ReceiveOptions{Handle: func(m *store.Message) {
		if !m.Outgoing && m.Kind == store.KindText { // a receipt adds no line (an own line or a notice may be unshown)
			t.Fatalf("%s: unexpected line %+v", u.name, m)
		}
	}}))
}

func wantState(t *testing.T, who *user, id int64, want store.State) {
	t.Helper()
	m, err := who.c.Message(t.Context(), id)
	check(t, err)
	if m.State != want {
		t.Fatalf("%s's message %q: state %v, want %v", who.name, m.Body, m.State, want)
	}
}

// TestReceiptsOrdinary: delivered when bob's devices store alice's
// messages (one receipt for the run), read when bob shows them, on every
// device of alice; bob's read receipt marks them shown on bob's other
// device; states never go backwards; no receipt answers a receipt.
func TestReceiptsOrdinary(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice2, bob2 := linkWithIdentity(t, env, alice), linkWithIdentity(t, env, bob)
	m1, m2 := alice.sendOrdinary(t, "bob", "one"), alice.sendOrdinary(t, "bob", "two")
	alice2.recvUnshown(t) // the sync copies, as sent

	got := bob.recvUnshown(t)
	wantLines(t, "bob", got, "alice: one", "alice: two")
	if n := bob.c.ReceiptsSent(); n != 1 {
		t.Fatalf("bob sent %d receipts for one run, want 1", n)
	}
	wantState(t, alice, m1.ID, store.StateSent)
	alice.recvQuiet(t)
	wantState(t, alice, m1.ID, store.StateDelivered)
	wantState(t, alice, m2.ID, store.StateDelivered)
	alice2.recvQuiet(t)
	h, err := alice2.c.History(ctx, "bob", 0)
	check(t, err)
	for _, m := range h {
		if m.State != store.StateDelivered {
			t.Fatalf("alice2's %q: %v", m.Body, m.State)
		}
	}

	// bob2 stores them too: a second delivered receipt changes nothing.
	wantLines(t, "bob2", bob2.recvUnshown(t), "alice: one", "alice: two")
	check(t, bob.c.MarkShown(ctx, got[0].ID))
	check(t, bob.c.MarkShown(ctx, got[0].ID)) // shown before: no receipt
	if n := bob.c.ReceiptsSent(); n != 2 {
		t.Fatalf("bob sent %d receipts, want 2", n)
	}
	alice.recvQuiet(t)
	wantState(t, alice, m1.ID, store.StateRead)
	wantState(t, alice, m2.ID, store.StateDelivered)
	if n := alice.c.ReceiptsSent(); n != 0 {
		t.Fatalf("alice answered receipts with %d receipts", n)
	}
	// bob2 got the read receipt's sync copy: "one" counts as shown there,
	// "two" not.
	check(t, bob2.c.Receive(ctx, client.ReceiveOptions{}))
	un, err := bob2.c.Store().Read().Unshown(ctx)
	check(t, err)
	wantLines(t, "bob2 unshown", un, "alice: two")
	if n := bob2.c.ReceiptsSent(); n != 1 {
		t.Fatalf("bob2 sent %d receipts, want 1 (delivered only)", n)
	}

	// A delivered receipt after the read one does not take it back.
	bob3 := linkWithIdentity(t, env, bob)
	alice.sendOrdinary(t, "bob", "three")
	for _, b := range []*user{bob, bob2, bob3} {
		b.recvUnshown(t)
	}
	alice.recvQuiet(t)
	wantState(t, alice, m1.ID, store.StateRead)
	if n := alice.c.ReceiptsSent(); n != 0 {
		t.Fatalf("alice answered receipts with %d receipts", n)
	}
}

// TestReceiptsSecret: the same in a secret conversation, over the secret
// session.
func TestReceiptsSecret(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	m := alice.send(t, "bob", "secret one", 0)
	got := bob.recvUnshown(t)
	wantTexts(t, got, "secret one")
	alice.recvQuiet(t)
	wantState(t, alice, m.ID, store.StateDelivered)
	check(t, bob.c.MarkShown(ctx, got[0].ID))
	alice.recvQuiet(t)
	wantState(t, alice, m.ID, store.StateRead)
	if n := alice.c.ReceiptsSent(); n != 0 {
		t.Fatalf("alice answered receipts with %d receipts", n)
	}
	if h, _ := bob.c.History(ctx, "alice", 0); len(h) != 1 {
		t.Fatalf("bob's conversation: %q", lines(h))
	}
}

// TestReadReceiptsOff: with receipts off, showing sends nothing; delivered
// receipts still go.
func TestReadReceiptsOff(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	if on, err := bob.c.ReadReceipts(ctx); err != nil || !on {
		t.Fatalf("read receipts by default: %v, %v", on, err)
	}
	check(t, bob.c.SetReadReceipts(ctx, false))
	m := alice.sendOrdinary(t, "bob", "hi")
	s := alice.send(t, "bob", "secret hi", 0)
	bob.recv(t) // shows them
	alice.recvQuiet(t)
	wantState(t, alice, m.ID, store.StateDelivered)
	wantState(t, alice, s.ID, store.StateDelivered)
	if n := bob.c.ReceiptsSent(); n != 2 {
		t.Fatalf("bob sent %d receipts, want 2 (delivered, one per conversation)", n)
	}
	check(t, bob.c.SetReadReceipts(ctx, true))
	if on, err := bob.c.ReadReceipts(ctx); err != nil || !on {
		t.Fatalf("read receipts on again: %v, %v", on, err)
	}
}

// TestForgedReceipt: a receipt from mallory naming alice's message to bob,
// or one claiming to be a copy of alice's own, changes nothing.
func TestForgedReceipt(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, mallory := register(t, env, "alice"), register(t, env, "mallory")
	register(t, env, "bob")
	m := alice.sendOrdinary(t, "bob", "for bob")
	alice.sendOrdinary(t, "mallory", "for mallory")
	wantLines(t, "mallory", mallory.recvUnshown(t), "alice: for mallory")
	toMallory, err := alice.c.History(ctx, "mallory", 0)
	check(t, err)
	alice.recvQuiet(t) // mallory's honest delivered receipt
	wantState(t, alice, toMallory[0].ID, store.StateDelivered)

	for i, cm := range []*content.Message{
		{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
			Receipt: &content.Receipt{Type: content.Read, IDs: []content.ID{m.MsgID}}},
		{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true, SyncTo: "bob",
			Receipt: &content.Receipt{Type: content.Read, IDs: []content.ID{m.MsgID}}},
		{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
			Receipt: &content.Receipt{Type: 77, IDs: []content.ID{toMallory[0].MsgID}}},
		// The most ids a receipt holds, none of them a message to mallory.
		{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
			Receipt: &content.Receipt{Type: content.Delivered, IDs: manyIDs(content.MaxReceiptIDs-1, m.MsgID)}},
	} {
		pt, err := cm.Marshal()
		check(t, err)
		var ct *session.Ciphertext
		check(t, mallory.c.Store().Update(ctx, func(tx *store.Tx) error {
			ci := &session.Cipher{Store: tx.Ordinary(), Local: mallory.c.Self()}
			var err error
			ct, err = ci.Encrypt(ctx, session.Address{Name: "alice", Device: key.DeviceID(1)}, pt)
			return err
		}))
		typ := api.TypeOrdinarySignal
		if ct.Type == session.TypePreKey {
			typ = api.TypeOrdinaryPreKey
		}
		ids, err := alice.c.Decrypt(ctx, &api.Message{ID: int64(100 + i), From: "mallory", FromDevice: 1, Type: typ, Content: ct.Body})
		check(t, err)
		if len(ids) != 0 {
			t.Fatalf("receipt %d added lines %v", i, ids)
		}
	}
	wantState(t, alice, m.ID, store.StateSent)
	wantState(t, alice, toMallory[0].ID, store.StateDelivered) // the unknown type is ignored
	if n := alice.c.ReceiptsSent(); n != 0 {
		t.Fatalf("alice answered receipts with %d receipts", n)
	}
}

// manyIDs is n random ids and then also.
func manyIDs(n int, also content.ID) []content.ID {
	ids := make([]content.ID, 0, n+1)
	for range n {
		ids = append(ids, content.NewID())
	}
	return append(ids, also)
}
