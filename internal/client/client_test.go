package client_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// opts keeps tests fast: few prekeys.
var opts = client.Options{PreKeys: 10, PreKeysLow: 3}

type user struct {
	name, home string
	c          *client.Client
}

func register(t testing.TB, env *servertest.Env, name string) *user {
	ctx := t.Context()
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	c, err := client.Register(ctx, home, client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint,
		Username: name, Password: "password-" + name}, opts)
	check(t, err)
	u := &user{name: name, home: home, c: c}
	t.Cleanup(func() { u.c.Close() })
	return u
}

func (u *user) restart(t testing.TB) {
	ctx := t.Context()
	t.Helper()
	check(t, u.c.Close())
	c, err := client.Open(ctx, u.home, opts)
	check(t, err)
	u.c = c
}

func (u *user) send(t testing.TB, to, text string, timer time.Duration) *store.Message {
	ctx := t.Context()
	t.Helper()
	m, err := u.c.Send(ctx, to, text, timer)
	check(t, err)
	if m.State != store.StateSent {
		t.Fatalf("state %d after send", m.State)
	}
	return m
}

// recv receives what is waiting and marks it shown.
func (u *user) recv(t *testing.T) []*store.Message {
	ctx := t.Context()
	t.Helper()
	var got []*store.Message
	err := u.c.Receive(ctx, client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
		got = append(got, m)
		check(t, u.c.MarkShown(ctx, m.ID))
	}})
	check(t, err)
	return got
}

func wantTexts(t *testing.T, got []*store.Message, want ...string) {
	t.Helper()
	var texts []string
	for _, m := range got {
		if m.Kind == store.KindText {
			texts = append(texts, m.Body)
		}
	}
	if len(texts) != len(want) {
		t.Fatalf("got %q, want %q", texts, want)
	}
	for i := range want {
		if texts[i] != want[i] {
			t.Fatalf("got %q, want %q", texts, want)
		}
	}
}

func TestConversation(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "hi bob", 0)
	alice.restart(t)
	bob.restart(t)
	wantTexts(t, bob.recv(t), "hi bob")
	bob.send(t, "alice", "hi alice", 0)
	bob.restart(t)
	wantTexts(t, alice.recv(t), "hi alice")
	for i := range 3 {
		alice.restart(t)
		alice.send(t, "bob", "again", 0)
		bob.restart(t)
		wantTexts(t, bob.recv(t), "again")
		bob.send(t, "alice", "back", 0)
		wantTexts(t, alice.recv(t), "back")
		_ = i
	}
	h, err := alice.c.History(ctx, "bob", 0)
	check(t, err)
	if len(h) != 8 || h[0].Body != "hi bob" || !h[0].Outgoing || h[1].Body != "hi alice" || h[1].Outgoing {
		t.Fatalf("history %+v", h)
	}
}

func TestKeyChange(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "one", 0)
	wantTexts(t, bob.recv(t), "one")
	sn, err := alice.c.SafetyNumber(ctx, "bob")
	check(t, err)
	sn2, err := bob.c.SafetyNumber(ctx, "alice")
	check(t, err)
	if sn.Digits != sn2.Digits || len(sn.Digits) != 60 {
		t.Fatalf("safety numbers %s and %s", sn.Digits, sn2.Digits)
	}
	_, err = alice.c.Verify(ctx, "bob", "1234")
	var typo *client.NotANumberError
	if !errors.As(err, &typo) || typo.Digits != 4 || errors.Is(err, client.ErrNumberMismatch) {
		t.Fatalf("verify with 1234: %v", err)
	}
	_, err = alice.c.Verify(ctx, "bob", strings.Repeat("1", 60))
	if !errors.Is(err, client.ErrNumberMismatch) {
		t.Fatalf("verify with 60 other digits: %v", err)
	}
	_, err = alice.c.Verify(ctx, "bob", sn2.Grouped())
	check(t, err)

	// Bob gets a new identity.
	check(t, bob.c.MakeSecret(ctx))
	m, err := alice.c.Send(ctx, "bob", "two", 0)
	var nc *client.NeedsConfirmError
	if !errors.As(err, &nc) {
		t.Fatalf("send after a verified key changed: %v", err)
	}
	// The message returned is as it is stored: not sent.
	if m == nil || m.State != client.StateFailed {
		t.Fatalf("message after a refused send: %+v", m)
	}
	if got, err := alice.c.Message(ctx, m.ID); err != nil || got.State != client.StateFailed || got.Body != "two" {
		t.Fatalf("Message(%d): %+v, %v", m.ID, got, err)
	}
	sn3, err := alice.c.SafetyNumber(ctx, "bob")
	check(t, err)
	if sn3.Digits == sn.Digits || !sn3.Changed {
		t.Fatalf("safety number after the change: %+v", sn3)
	}
	check(t, alice.c.Trust(ctx, "bob"))
	alice.send(t, "bob", "three", 0)
	wantTexts(t, bob.recv(t), "three")
	bob.send(t, "alice", "four", 0)
	got := alice.recv(t)
	wantTexts(t, got, "four")
	h, err := alice.c.History(ctx, "bob", 0)
	check(t, err)
	notices := 0
	for _, m := range h {
		if m.Kind == store.KindNotice {
			notices++
		}
	}
	if notices == 0 {
		t.Fatalf("no notice in %+v", h)
	}
}

// TestOutbox: a message the server does not take now (here bob's mailbox
// is full) stays encrypted in the outbox and goes out, in order, with the
// next command; the recipient gets each message once.
func TestOutbox(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxQueue: 2, MaxQueuePerSender: 2})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "one", 0)
	alice.send(t, "bob", "two", 0)
	_, err := alice.c.Send(ctx, "bob", "three", 0)
	var q *client.QueuedError
	if !errors.As(err, &q) || q.Message == nil || q.Message.State != store.StatePending {
		t.Fatalf("send to a full mailbox: %v", err)
	}
	alice.restart(t)
	wantTexts(t, bob.recv(t), "one", "two")
	// The next send sends the queued message first.
	alice.send(t, "bob", "four", 0)
	wantTexts(t, bob.recv(t), "three", "four")
	// And so does a flush (as recv does).
	alice.send(t, "bob", "five", 0)
	alice.send(t, "bob", "six", 0)
	if _, err = alice.c.Send(ctx, "bob", "seven", 0); !errors.As(err, &q) {
		t.Fatalf("send to a full mailbox: %v", err)
	}
	wantTexts(t, bob.recv(t), "five", "six")
	check(t, alice.c.FlushOutbox(ctx))
	wantTexts(t, bob.recv(t), "seven")
	h, err := alice.c.History(ctx, "bob", 0)
	check(t, err)
	for _, m := range h {
		if m.State != store.StateSent {
			t.Errorf("%q is in state %d", m.Body, m.State)
		}
	}
	out, err := alice.c.Store().Read().Outbox(ctx)
	check(t, err)
	if len(out) != 0 {
		t.Fatalf("outbox not empty: %v", out)
	}
}

func TestStateAndKindNames(t *testing.T) {
	for _, c := range []struct {
		s    fmt.Stringer
		want string
	}{{client.StateReceived, "received"}, {client.StatePending, "pending"}, {client.StateSent, "sent"},
		{client.StateFailed, "failed"}, {client.StateDelivered, "delivered"}, {client.StateRead, "read"}, {client.State(9), "state(9)"},
		{client.KindText, "message"}, {client.KindNotice, "notice"}, {client.Kind(7), "kind(7)"}} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.s, got, c.want)
		}
	}
}

// TestSetPassphrase: a short passphrase is refused and changes nothing; a
// good one is then needed to open the home.
func TestSetPassphrase(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := register(t, env, "alice")
	if err := alice.c.SetPassphrase(ctx, []byte("short")); !errors.Is(err, client.ErrShortPassphrase) {
		t.Fatalf("short passphrase: %v", err)
	}
	alice.restart(t) // still the key file
	check(t, alice.c.SetPassphrase(ctx, []byte("correct horse")))
	check(t, alice.c.Close())
	o := opts
	o.Passphrase = func() ([]byte, error) { return []byte("correct horse"), nil }
	c, err := client.Open(ctx, alice.home, o)
	check(t, err)
	alice.c = c
	check(t, alice.c.SetPassphrase(ctx, nil))
	alice.restart(t)
}

// TestQueuedGoOutWithAnyRequest: a queued message goes out with any
// request that reaches the server (here the device list), not only with
// the next send or receive.
func TestQueuedGoOutWithAnyRequest(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxQueue: 2, MaxQueuePerSender: 2})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.send(t, "bob", "one", 0)
	alice.send(t, "bob", "two", 0)
	var q *client.QueuedError
	if _, err := alice.c.Send(ctx, "bob", "three", 0); !errors.As(err, &q) {
		t.Fatalf("send to a full mailbox: %v", err)
	}
	wantTexts(t, bob.recv(t), "one", "two")
	alice.restart(t)
	_, err := alice.c.Devices(ctx)
	check(t, err)
	wantTexts(t, bob.recv(t), "three")
	h, err := alice.c.History(ctx, "bob", 0)
	check(t, err)
	if m := h[len(h)-1]; m.Body != "three" || m.State != client.StateSent {
		t.Fatalf("last message %+v", m)
	}
}

// TestCheckSecret: the old secret device learns from the server that
// another device took over, instead of saying it is still the secret
// device until it next sends or receives.
func TestCheckSecret(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := register(t, env, "alice")
	if ok, err := alice.c.CheckSecret(ctx); err != nil || !ok {
		t.Fatalf("CheckSecret on the secret device: %v %v", ok, err)
	}
	c2, err := client.Link(ctx, filepath.Join(t.TempDir(), "alice2"), client.RegisterParams{Server: env.URL,
		Fingerprint: env.Fingerprint, Username: "alice", Password: "password-alice"}, opts)
	check(t, err)
	defer c2.Close()
	check(t, c2.MakeSecret(ctx))
	if ok, err := alice.c.IsSecret(ctx); err != nil || !ok {
		t.Fatalf("before asking, the old device thinks %v %v", ok, err)
	}
	if ok, err := alice.c.CheckSecret(ctx); err != nil || ok {
		t.Fatalf("CheckSecret on the old secret device: %v %v", ok, err)
	}
	if ok, err := alice.c.IsSecret(ctx); err != nil || ok {
		t.Fatalf("after asking, the old device thinks %v %v", ok, err)
	}
	if ok, err := c2.CheckSecret(ctx); err != nil || !ok {
		t.Fatalf("CheckSecret on the new secret device: %v %v", ok, err)
	}
}
