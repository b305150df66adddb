package client

import (
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// Issue 14, finding 1: a key a person replaced must never speak for them
// again. These tests hand carol's engine messages the way a server that
// kept an old device's credential, or a copy of its home, or a withheld
// message, would deliver them (Decrypt, as the receive loop calls it):
// the server's own checks are not what stops them here.

var testOpts = Options{PreKeys: 10, PreKeysLow: 3}

func newUser(t *testing.T, env *servertest.Env, name string, link bool) *Client {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	p := RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint, Username: name, Password: "password-" + name}
	f := Register
	if link {
		f = Link
	}
	c, err := f(t.Context(), home, p, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustSend(t *testing.T, c *Client, to, text string) {
	t.Helper()
	if _, err := c.Send(t.Context(), to, text, 0); err != nil {
		t.Fatal(err)
	}
}

// receive takes what is waiting and returns it, marked shown.
func receive(t *testing.T, c *Client) []*store.Message {
	t.Helper()
	var got []*store.Message
	err := c.Receive(t.Context(), ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
		got = append(got, m)
		if err := c.MarkShown(t.Context(), m.ID); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var fakeServerID atomic.Int64

// forge encrypts text from c to the person to with c's session for them
// (starting one from a fresh bundle if fresh), without sending it: what an
// old device or a copy of a home would send, as the server would deliver
// it.
func forge(t *testing.T, c *Client, to, text string, fresh bool) *api.Message {
	t.Helper()
	ctx := t.Context()
	var b *session.Bundle
	if fresh {
		var err error
		if b, err = c.fetchBundle(ctx, to); err != nil {
			t.Fatal(err)
		}
	}
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Body: text}
	pt, err := cm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out *session.Ciphertext
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		var addr session.Address
		if b != nil {
			addr = session.Address{Name: to, Device: b.DeviceID}
			if err := c.cipher(tx).ProcessBundle(ctx, addr, b); err != nil {
				return err
			}
		} else {
			ct, err := tx.Contact(ctx, to)
			if err != nil {
				return err
			}
			addr = session.Address{Name: to, Device: key.DeviceID(ct.Device)}
		}
		out, err = c.cipher(tx).Encrypt(ctx, addr, pt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return &api.Message{ID: 1<<40 + fakeServerID.Add(1), Timestamp: time.Now().UnixMilli(), From: c.acct.Username,
		FromDevice: c.acct.DeviceID, Type: int32(out.Type), Content: out.Body}
}

// redeliver is m again under a new server id (a replay).
func redeliver(m *api.Message) *api.Message {
	r := *m
	r.ID = 1<<40 + fakeServerID.Add(1)
	return &r
}

// refused delivers m to c and checks that nothing from it is shown as
// from the sender: only a notice that says a message was refused, and text
// (unless empty) is nowhere in the conversation.
func refused(t *testing.T, c *Client, m *api.Message, text string) {
	t.Helper()
	ctx := t.Context()
	ids, err := c.Decrypt(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("%q: %d rows added, want one notice", text, len(ids))
	}
	n, err := c.st.Read().Message(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if n.Kind != store.KindNotice || !strings.Contains(n.Body, "refused") || !strings.Contains(n.Body, "replaced") {
		t.Fatalf("%q: shown as %+v", text, n)
	}
	h, err := c.History(ctx, m.From, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, hm := range h {
		if text != "" && strings.Contains(hm.Body, text) {
			t.Fatalf("%q is in the conversation: %+v", text, hm)
		}
	}
}

func wantVerified(t *testing.T, c *Client, name string, want key.IdentityKey) {
	t.Helper()
	ct, err := c.Contact(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if !ct.Verified || ct.NeedsConfirm || ct.Pending != nil || *ct.Identity != want {
		t.Fatalf("%s: verified %v, needs confirm %v, pending %v, current key is the verified one: %v",
			name, ct.Verified, ct.NeedsConfirm, ct.Pending != nil, *ct.Identity == want)
	}
}

func texts(ms []*store.Message) (notices, msgs []string) {
	for _, m := range ms {
		if m.Kind == store.KindNotice {
			notices = append(notices, m.Body)
		} else {
			msgs = append(msgs, m.Body)
		}
	}
	return
}

// TestOldDeviceRefused: dave links a second device and makes it his secret
// device; carol verifies his new key. His old device keeps its credential
// and its keys: neither a message on its established session (a Signal
// message) nor a new PreKey message from it is shown as from dave, and
// carol's verification stands.
func TestOldDeviceRefused(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	carol, dave := newUser(t, env, "carol", false), newUser(t, env, "dave", false)
	mustSend(t, dave, "carol", "hello from the phone")
	receive(t, carol)
	mustSend(t, carol, "dave", "hi dave")
	receive(t, dave) // dave's old device now holds an answered session

	dave2 := newUser(t, env, "dave", true)
	if err := dave2.MakeSecret(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSend(t, dave2, "carol", "from my laptop")
	notices, msgs := texts(receive(t, carol))
	if len(notices) != 1 || !strings.Contains(notices[0], "safety number changed") || len(msgs) != 1 {
		t.Fatalf("carol got notices %q, messages %q", notices, msgs)
	}
	if _, err := carol.Verify(t.Context(), "dave", ""); err != nil {
		t.Fatal(err)
	}
	k2 := dave2.st.Identity().Public

	refused(t, carol, forge(t, dave, "carol", "old device, old session", false), "old device, old session")
	pre := forge(t, dave, "carol", "old device, new PreKey message", true)
	if pre.Type != session.TypePreKey {
		t.Fatalf("type %d", pre.Type)
	}
	refused(t, carol, pre, "old device, new PreKey message")
	wantVerified(t, carol, "dave", k2)

	// dave's secret device still talks to carol, both ways.
	mustSend(t, dave2, "carol", "still me")
	if _, msgs := texts(receive(t, carol)); len(msgs) != 1 || msgs[0] != "still me" {
		t.Fatalf("carol got %q", msgs)
	}
	mustSend(t, carol, "dave", "and back")
	if _, msgs := texts(receive(t, dave2)); len(msgs) != 1 || msgs[0] != "and back" {
		t.Fatalf("dave's laptop got %q", msgs)
	}
	wantVerified(t, carol, "dave", k2)
}

// TestReplayedPreKeyMessage: dave's first two PreKey messages are made
// under his first key; carol gets the first, the second is withheld. Dave
// gets a new key on the same device and carol verifies it. The withheld
// message, and the first one replayed under a new server id, are refused:
// a key dave replaced does not speak for him.
func TestReplayedPreKeyMessage(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	carol, dave := newUser(t, env, "carol", false), newUser(t, env, "dave", false)
	first := forge(t, dave, "carol", "first", true)
	withheld := forge(t, dave, "carol", "withheld", false)
	if first.Type != session.TypePreKey || withheld.Type != session.TypePreKey {
		t.Fatal("not PreKey messages")
	}
	ids, err := carol.Decrypt(t.Context(), first)
	if err != nil || len(ids) != 1 {
		t.Fatalf("the first message: %v %v", ids, err)
	}
	if err := carol.MarkShown(t.Context(), ids...); err != nil {
		t.Fatal(err)
	}

	if err := dave.MakeSecret(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSend(t, dave, "carol", "new key")
	if notices, msgs := texts(receive(t, carol)); len(notices) != 1 || len(msgs) != 1 || msgs[0] != "new key" {
		t.Fatalf("carol got notices %q, messages %q", notices, msgs)
	}
	if _, err := carol.Verify(t.Context(), "dave", ""); err != nil {
		t.Fatal(err)
	}
	k2 := dave.st.Identity().Public

	refused(t, carol, withheld, "withheld")
	refused(t, carol, redeliver(first), "") // "first" was shown before the change: only no new row
	wantVerified(t, carol, "dave", k2)
}

// TestVerifiedKeyChange: a verified contact's new key clears "verified",
// and carol is told before the first message under it is shown.
func TestVerifiedKeyChange(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	carol, dave := newUser(t, env, "carol", false), newUser(t, env, "dave", false)
	mustSend(t, dave, "carol", "one")
	receive(t, carol)
	if _, err := carol.Verify(t.Context(), "dave", ""); err != nil {
		t.Fatal(err)
	}
	if err := dave.MakeSecret(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSend(t, dave, "carol", "two")
	got := receive(t, carol)
	if len(got) != 2 || got[0].Kind != store.KindNotice || !strings.Contains(got[0].Body, "You had verified dave") ||
		got[1].Body != "two" || got[0].ID > got[1].ID {
		t.Fatalf("carol got %+v", got)
	}
	ct, err := carol.Contact(t.Context(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	if ct.Verified || !ct.NeedsConfirm || *ct.Identity != dave.st.Identity().Public {
		t.Fatalf("after the change: %+v", ct)
	}
}
