package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// expireLater deletes what would have expired by a day from now, as the
// expiry loop would then; it returns the bodies deleted.
func expireLater(t *testing.T, u *user) []string {
	t.Helper()
	h, err := u.c.History(t.Context(), "bob", 0)
	check(t, err)
	body := map[int64]string{}
	for _, m := range h {
		body[m.ID] = m.Body
	}
	var gone []string
	check(t, u.c.Store().Update(t.Context(), func(tx *store.Tx) error {
		ids, err := tx.Expire(t.Context(), time.Now().Add(25*time.Hour))
		for _, id := range ids {
			gone = append(gone, body[id])
		}
		return err
	}))
	return gone
}

// TestUnsentKept: a timed message that could not be sent after a verified
// person's key changed is kept, not sent, with its countdown unstarted,
// whichever step refused it; trusting the new key deletes none of them.
// (A message refused before its ratchet step used to be dropped, and the
// terminal UI lost it when it read the conversation again after /trust.)
func TestUnsentKept(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "one", 0)
	wantTexts(t, bob.recv(t), "one")
	_, err := alice.c.Verify(t.Context(), "bob", "")
	check(t, err)

	sendRefused := func(text string) {
		t.Helper()
		m, err := alice.c.Send(t.Context(), "bob", text, 10*time.Second)
		var nc *client.NeedsConfirmError
		if !errors.As(err, &nc) {
			t.Fatalf("sending %q after a verified key changed: %v", text, err)
		}
		if m == nil || m.State != store.StateFailed || !m.ExpiresAt.IsZero() {
			t.Fatalf("sending %q returned %+v", text, m)
		}
	}
	// Refused when the server says bob's secret device changed.
	check(t, bob.c.MakeSecret(t.Context()))
	sendRefused("refused after posting")
	check(t, alice.c.Trust(t.Context(), "bob"))
	_, err = alice.c.Verify(t.Context(), "bob", "")
	check(t, err)
	// Refused on the bundle, before any ratchet step (the session is
	// with a key alice no longer trusts).
	check(t, bob.c.MakeSecret(t.Context()))
	sendRefused("refused on the bundle")
	// Refused at once: alice already knows the key changed.
	sendRefused("refused at once")

	if gone := expireLater(t, alice); len(gone) != 0 {
		t.Fatalf("messages never sent have a countdown: %q", gone)
	}
	check(t, alice.c.Trust(t.Context(), "bob"))
	h, err := alice.c.History(t.Context(), "bob", 0)
	check(t, err)
	failed := 0
	for _, m := range h {
		if m.State == store.StateFailed {
			failed++
			if !m.ExpiresAt.IsZero() {
				t.Errorf("%q, not sent, expires at %v", m.Body, m.ExpiresAt)
			}
		}
	}
	if failed != 3 {
		t.Fatalf("%d messages not sent in alice's history, want 3: %+v", failed, h)
	}
	if gone := expireLater(t, alice); len(gone) != 0 {
		t.Fatalf("after trust, messages never sent have a countdown: %q", gone)
	}
}

// TestTimerStartsWhenAccepted: a timed message waiting in the outbox (the
// server is down) has no countdown; it starts when the server accepts it.
func TestTimerStartsWhenAccepted(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "one", 0)
	env.Stop()
	m, err := alice.c.Send(t.Context(), "bob", "queued", 10*time.Second)
	var q *client.QueuedError
	if !errors.As(err, &q) || m == nil || m.State != store.StatePending || !m.ExpiresAt.IsZero() {
		t.Fatalf("send with the server down: %+v, %v", m, err)
	}
	if gone := expireLater(t, alice); len(gone) != 0 {
		t.Fatalf("a queued message has a countdown: %q", gone)
	}
	env.Restart(t)
	before := time.Now()
	check(t, alice.c.FlushOutbox(t.Context()))
	m, err = alice.c.Store().Read().Message(t.Context(), m.ID)
	check(t, err)
	if m.State != store.StateSent || m.ExpiresAt.Before(before.Add(10*time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("after the server accepted it: state %d, expires at %v (flushed at %v)", m.State, m.ExpiresAt, before)
	}
	wantTexts(t, bob.recv(t), "one", "queued")
}
