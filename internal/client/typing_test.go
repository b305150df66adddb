package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// recvTyping receives what is waiting and returns the typing indicators
// it showed; a line fails the test.
func (u *user) recvTyping(t *testing.T) []client.Typing {
	t.Helper()
	var got []client.Typing
	check(t, u.c.Receive(t.Context(), client.ReceiveOptions{
		Handle: func(m *store.Message) {
			if !m.Outgoing && m.Kind == store.KindText {
				t.Fatalf("%s: unexpected line %+v", u.name, m)
			}
		},
		Typing: func(ty client.Typing) { got = append(got, ty) },
	}))
	return got
}

func typingString(ts []client.Typing) string {
	s := ""
	for _, ty := range ts {
		s += fmt.Sprintf("[%s secret=%v started=%v]", ty.Peer, ty.Secret, ty.Started)
	}
	return s
}

func wantTyping(t *testing.T, who string, got []client.Typing, want string) {
	t.Helper()
	if s := typingString(got); s != want {
		t.Fatalf("%s: typing %s, want %s", who, s, want)
	}
}

// TestTyping: issue 9 part 5. A typing indicator reaches the other person
// in both kinds of conversation, is handed to Typing and never stored;
// the sender's own other device ignores its copy; with typing off none is
// sent and none is shown.
func TestTyping(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice2 := linkWithIdentity(t, env, alice)
	alice.sendOrdinary(t, "bob", "hi")
	alice.send(t, "bob", "secret hi", 0)
	bob.recv(t)
	alice.recvQuiet(t)
	alice2.recvUnshown(t)

	check(t, alice.c.SendTyping(ctx, "bob", false, true))
	check(t, alice.c.SendTyping(ctx, "bob", true, true))
	check(t, alice.c.SendTyping(ctx, "bob", false, false))
	if n := alice.c.TypingSent(); n != 3 {
		t.Fatalf("alice sent %d typing indicators, want 3", n)
	}
	before, err := bob.c.History(ctx, "alice", 0)
	check(t, err)
	wantTyping(t, "bob", bob.recvTyping(t), "[alice secret=false started=true][alice secret=true started=true][alice secret=false started=false]")
	after, err := bob.c.History(ctx, "alice", 0)
	check(t, err)
	if len(after) != len(before) {
		t.Fatalf("typing was stored: %q", lines(after))
	}
	if un, _ := bob.c.Store().Read().Unshown(ctx); len(un) != 0 {
		t.Fatalf("typing left unshown lines: %q", lines(un))
	}
	// No receipt answers typing.
	if n := bob.c.ReceiptsSent(); n != 2+2 { // delivered and read, per conversation, for "hi"s
		t.Fatalf("bob sent %d receipts", n)
	}
	// alice2 gets the ordinary copies and shows none.
	wantTyping(t, "alice2", alice2.recvTyping(t), "")

	// To yourself, to nobody valid, in a conversation without a message
	// (it would not be shown, and would start sessions): nothing goes.
	register(t, env, "carol")
	check(t, alice.c.SendTyping(ctx, "alice", false, true))
	check(t, alice.c.SendTyping(ctx, "bad\x1bname", false, true))
	check(t, alice.c.SendTyping(ctx, "carol", false, true))
	check(t, alice.c.SendTyping(ctx, "carol", true, true))
	if n := alice.c.TypingSent(); n != 3 {
		t.Fatalf("alice sent %d typing indicators, want 3", n)
	}

	// Off on bob: bob sends none, and shows none of alice's.
	check(t, bob.c.SetTypingIndicators(ctx, false))
	if on, err := bob.c.TypingIndicators(ctx); err != nil || on {
		t.Fatalf("typing after off: %v, %v", on, err)
	}
	check(t, bob.c.SendTyping(ctx, "alice", false, true))
	if n := bob.c.TypingSent(); n != 0 {
		t.Fatalf("bob sent %d typing indicators with typing off", n)
	}
	check(t, alice.c.SendTyping(ctx, "bob", false, true))
	wantTyping(t, "bob (off)", bob.recvTyping(t), "")
	check(t, bob.c.SetTypingIndicators(ctx, true))
}

// TestTypingHostile: typing from a stranger (no conversation yet), from a
// blocked person, a copy claimed by someone else, and an old one are
// ignored; none adds a line.
func TestTypingHostile(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, mallory := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "mallory")
	typing := func(started bool, syncTo string) *content.Message {
		return &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true, SyncTo: syncTo,
			Typing: &content.Typing{Started: started}}
	}

	// A stranger: alice has no conversation with mallory.
	check(t, mallory.c.SendRawOrdinary(ctx, "alice", typing(true, "")))
	wantTyping(t, "alice", alice.recvTyping(t), "")
	if h, _ := alice.c.History(ctx, "mallory", 0); len(h) != 0 {
		t.Fatalf("a stranger's typing added %q", lines(h))
	}
	convs, err := alice.c.Conversations(ctx)
	check(t, err)
	for _, cv := range convs {
		if cv.Peer == "mallory" && cv.Messages > 0 {
			t.Fatalf("a stranger's typing made a conversation: %+v", cv)
		}
	}

	// Once they talked, it shows; a copy claimed by mallory does not.
	mallory.sendOrdinary(t, "alice", "hello")
	alice.recv(t)
	check(t, mallory.c.SendRawOrdinary(ctx, "alice", typing(true, "")))
	check(t, mallory.c.SendRawOrdinary(ctx, "alice", typing(true, "bob")))
	wantTyping(t, "alice", alice.recvTyping(t), "[mallory secret=false started=true]")

	// Blocked, in both kinds of conversation: dropped (here by the
	// client, as the block is kept on this device only).
	bob.send(t, "alice", "secret hello", 0)
	bob.sendOrdinary(t, "alice", "hello")
	alice.recv(t)
	check(t, alice.c.Store().Update(ctx, func(tx *store.Tx) error { return tx.SetBlocked(ctx, []string{"bob", "mallory"}) }))
	check(t, bob.c.SendTyping(ctx, "alice", true, true))
	check(t, bob.c.SendTyping(ctx, "alice", false, true))
	check(t, mallory.c.SendTyping(ctx, "alice", false, true))
	// Receive would learn the server's list (nobody blocked there):
	// decrypt directly.
	conn, err := alice.c.API().Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	for n := 0; n < 3; {
		f, err := conn.Next(ctx)
		check(t, err)
		if f.Type != api.FrameMessage {
			continue
		}
		n++
		ids, ty, err := alice.c.DecryptTyping(ctx, f.Msg)
		check(t, err)
		if len(ids) != 0 || ty != nil {
			t.Fatalf("typing from %s, blocked: lines %v, typing %+v", f.Msg.From, ids, ty)
		}
		check(t, conn.Ack(ctx, f.Msg.ID))
	}
	check(t, alice.c.Store().Update(ctx, func(tx *store.Tx) error { return tx.SetBlocked(ctx, nil) }))

	// An old one (accepted by the server longer ago than it holds).
	for _, tc := range []struct {
		age  time.Duration
		want bool
	}{{client.TypingExpiry + time.Second, false}, {0, true}} {
		msg := forgeOrdinary(t, ctx, mallory, "alice", typing(true, ""))
		msg.Timestamp = time.Now().Add(-tc.age).UnixMilli()
		ids, ty, err := alice.c.DecryptTyping(ctx, msg)
		check(t, err)
		if len(ids) != 0 || (ty != nil) != tc.want {
			t.Fatalf("typing %v old: lines %v, typing %+v", tc.age, ids, ty)
		}
	}
}

var forgedID int64 = 1 << 40

// forgeOrdinary encrypts cm from u to device 1 of to as a delivered
// message, without the server.
func forgeOrdinary(t testing.TB, ctx context.Context, u *user, to string, cm *content.Message) *api.Message {
	t.Helper()
	pt, err := cm.Marshal()
	check(t, err)
	var ct *session.Ciphertext
	check(t, u.c.Store().Update(ctx, func(tx *store.Tx) error {
		ci := &session.Cipher{Store: tx.Ordinary(), Local: u.c.Self()}
		var err error
		ct, err = ci.Encrypt(ctx, session.Address{Name: to, Device: key.DeviceID(1)}, pt)
		return err
	}))
	typ := api.TypeOrdinarySignal
	if ct.Type == session.TypePreKey {
		typ = api.TypeOrdinaryPreKey
	}
	forgedID++
	return &api.Message{ID: forgedID, From: u.name, FromDevice: 1, Type: typ, Content: ct.Body}
}

// TestTypingPausedWhenRateLimited: once the server answers a typing
// indicator with rate_limited (the per-pair limit counts them as
// messages), none goes to that conversation for a while: the next
// returns at once without asking the server.
func TestTypingPausedWhenRateLimited(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.MessagesPerPair.Rate, lim.MessagesPerPair.Burst = 0.001, 2
	env := servertest.Start(t, server.Config{Limits: lim})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	bob.sendOrdinary(t, "alice", "hi")
	alice.recv(t) // and a delivered and a read receipt to bob: the pair's budget is spent
	err := alice.c.SendTyping(ctx, "bob", false, true)
	if !apiclient.IsCode(err, api.CodeRateLimited) {
		t.Fatalf("typing past the pair limit: %v", err)
	}
	if err := alice.c.SendTyping(ctx, "bob", false, false); err != nil {
		t.Fatalf("typing while paused: %v", err)
	}
	if n := alice.c.TypingSent(); n != 0 {
		t.Fatalf("%d typing indicators sent", n)
	}
}
