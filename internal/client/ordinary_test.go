package client_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/tlscert"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// linkWithIdentity adds a device to from's account with the password and
// gives it the account identity key, as the provisioning box of a link by
// code does (docs/multidevice.md section 2).
func linkWithIdentity(t testing.TB, env *servertest.Env, from *user) *user {
	ctx := t.Context()
	t.Helper()
	home := filepath.Join(t.TempDir(), from.name)
	c, err := client.Link(ctx, home, client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint,
		Username: from.name, Password: "password-" + from.name}, opts)
	check(t, err)
	ik := from.c.Store().AccountIdentity()
	check(t, c.Store().Update(ctx, func(tx *store.Tx) error { return tx.SetAccountIdentity(ctx, ik) }))
	check(t, c.EnsureOrdinary(ctx))
	u := &user{name: from.name, home: home, c: c}
	t.Cleanup(func() { u.c.Close() })
	return u
}

func (u *user) sendOrdinary(t testing.TB, to, text string) *store.Message {
	t.Helper()
	m, err := u.c.SendOrdinary(t.Context(), to, text)
	check(t, err)
	if m.State != store.StateSent || m.Secret || m.Device != u.c.Account().DeviceID {
		t.Fatalf("after send: %+v", m)
	}
	return m
}

// line is how a test compares what a device got: peer, direction, text.
func lines(ms []*store.Message) []string {
	var out []string
	for _, m := range ms {
		switch {
		case m.Kind == store.KindNotice:
			out = append(out, "* "+m.Peer+": "+m.Body)
		case m.Outgoing:
			out = append(out, "-> "+m.Peer+": "+m.Body)
		default:
			out = append(out, m.Peer+": "+m.Body)
		}
	}
	return out
}

func wantLines(t *testing.T, who string, got []*store.Message, want ...string) {
	t.Helper()
	if g := lines(got); !slices.Equal(g, want) {
		t.Fatalf("%s got %q, want %q", who, g, want)
	}
	for _, m := range got {
		if m.Secret {
			t.Fatalf("%s got a secret line in an ordinary conversation: %+v", who, m)
		}
	}
}

// TestOrdinaryEveryDevice: issue 9 part 1. A message reaches every device
// of the peer and, as a sync copy stored as sent, every other device of
// the sender, each exactly once, with its sending device; across restarts;
// and the answer goes the same way back.
func TestOrdinaryEveryDevice(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob1 := register(t, env, "alice"), register(t, env, "bob")
	alice2, bob2 := linkWithIdentity(t, env, alice1), linkWithIdentity(t, env, bob1)
	alice3 := linkWithIdentity(t, env, alice1)

	m := alice1.sendOrdinary(t, "bob", "to every device")
	for _, u := range []*user{bob1, bob2} {
		u.restart(t)
		got := u.recv(t)
		wantLines(t, "bob", got, "alice: to every device")
		if got[0].Device != 1 || got[0].MsgID != m.MsgID {
			t.Fatalf("bob got %+v", got[0])
		}
	}
	for _, u := range []*user{alice2, alice3} {
		got := u.recv(t)
		wantLines(t, "alice's other device", got, "-> bob: to every device")
		if got[0].Device != 1 || got[0].State != store.StateSent || got[0].MsgID != m.MsgID {
			t.Fatalf("sync copy %+v", got[0])
		}
	}
	wantLines(t, "alice1", alice1.recv(t))

	bob2.sendOrdinary(t, "alice", "back from bob2")
	for _, u := range []*user{alice1, alice2, alice3} {
		u.restart(t)
		wantLines(t, "alice", u.recv(t), "bob: back from bob2")
	}
	wantLines(t, "bob1", bob1.recv(t), "-> alice: back from bob2")
	wantLines(t, "bob2", bob2.recv(t))

	// Both ways again, from other devices, after every restart: the
	// sessions the sync copies made work both ways.
	alice3.sendOrdinary(t, "bob", "from alice3")
	bob1.sendOrdinary(t, "alice", "from bob1")
	wantLines(t, "alice1", alice1.recv(t), "-> bob: from alice3", "bob: from bob1")
	wantLines(t, "alice2", alice2.recv(t), "-> bob: from alice3", "bob: from bob1")
	wantLines(t, "alice3", alice3.recv(t), "bob: from bob1")
	wantLines(t, "bob2", bob2.recv(t), "alice: from alice3", "-> alice: from bob1")

	h, err := alice2.c.Conversation(ctx, "bob", false, 0)
	check(t, err)
	wantLines(t, "alice2's history", h, "-> bob: to every device", "bob: back from bob2", "-> bob: from alice3", "bob: from bob1")
	if cs, err := alice2.c.Conversations(ctx); err != nil || len(cs) != 1 || cs[0].Secret || cs[0].Peer != "bob" {
		t.Fatalf("alice2's conversations %+v %v", cs, err)
	}
}

// TestOrdinaryDevicesComeAndGo: a device added or removed on either side
// is learned from the server's device_mismatch answer on the next send;
// the message is encrypted again (same content id) and reaches the new
// set, and the conversation says what happened.
func TestOrdinaryDevicesComeAndGo(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob1 := register(t, env, "alice"), register(t, env, "bob")
	alice1.sendOrdinary(t, "bob", "one")
	wantLines(t, "bob1", bob1.recv(t), "alice: one")

	bob2 := linkWithIdentity(t, env, bob1)
	alice2 := linkWithIdentity(t, env, alice1)
	m := alice1.sendOrdinary(t, "bob", "two")
	wantLines(t, "bob1", bob1.recv(t), "alice: two")
	got := bob2.recv(t)
	wantLines(t, "bob2", got, "alice: two")
	if got[0].MsgID != m.MsgID {
		t.Fatal("the message was not sent again with the same content id")
	}
	wantLines(t, "alice2", alice2.recv(t), "-> bob: two")
	h, err := alice1.c.Conversation(ctx, "bob", false, 0)
	check(t, err)
	wantLines(t, "alice1's history", h, "-> bob: one", "* bob: bob added a device.", "-> bob: two")
	h, err = alice1.c.Conversation(ctx, "alice", false, 0)
	check(t, err)
	wantLines(t, "alice1's own conversation", h, "* alice: You added a device.")

	// bob removes bob2.
	check(t, env.Client(t, bob1.c.Account().Credential).RemoveDevice(ctx, bob2.c.Account().DeviceID))
	alice1.sendOrdinary(t, "bob", "three")
	// bob1's receipts for "two" learned of alice2 and bob2 (section 5).
	wantLines(t, "bob1", bob1.recv(t), "* alice: alice added a device.", "* bob: You added a device.", "alice: three")
	h, err = alice1.c.Conversation(ctx, "bob", false, 3)
	check(t, err)
	wantLines(t, "alice1's history", h, "-> bob: two", "* bob: bob removed a device.", "-> bob: three")
}

// TestOrdinaryQueued: a message sent while the server is down is kept
// with the whole request and goes out, once, with the next command that
// reaches the server, in order with secret messages.
func TestOrdinaryQueued(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	alice.sendOrdinary(t, "bob", "before")
	alice.send(t, "bob", "secret before", 0)
	got := bob.recv(t)
	if g := lines(got); !slices.Equal(g, []string{"alice: before", "alice: secret before"}) {
		t.Fatalf("bob got %q", g)
	}
	env.Stop()
	m, err := alice.c.SendOrdinary(t.Context(), "bob", "while down")
	var q *client.QueuedError
	if !errors.As(err, &q) || m == nil || m.State != store.StatePending {
		t.Fatalf("send while the server is down: %+v %v", m, err)
	}
	_, err = alice.c.Send(t.Context(), "bob", "secret while down", 0)
	if !errors.As(err, &q) {
		t.Fatalf("secret send while the server is down: %v", err)
	}
	env.Restart(t)
	alice.restart(t)
	alice.sendOrdinary(t, "bob", "after")
	got = bob.recv(t)
	if g := lines(got); !slices.Equal(g, []string{"alice: while down", "alice: secret while down", "alice: after"}) {
		t.Fatalf("bob got %q", g)
	}
	if got[0].Secret || !got[1].Secret || got[2].Secret {
		t.Fatalf("kinds %+v", got)
	}
	if ms := bob.recv(t); len(ms) != 0 {
		t.Fatalf("again: %q", lines(ms))
	}
}

// TestOrdinaryNoteToSelf: sending to oneself reaches one's other devices
// only.
func TestOrdinaryNoteToSelf(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1 := register(t, env, "alice")
	alice1.sendOrdinary(t, "alice", "alone") // no other device yet: nothing to reach
	alice2 := linkWithIdentity(t, env, alice1)
	alice1.sendOrdinary(t, "alice", "note")
	wantLines(t, "alice2", alice2.recv(t), "-> alice: note")
	// alice1 knew she had no other device: this one is news.
	wantLines(t, "alice1", alice1.recv(t), "* alice: You added a device.")
}

// TestOrdinaryWithoutAccountIdentity: a device added with the password to
// an account that has an account identity cannot take part in ordinary
// conversations, and says so clearly; the account's own key is never
// replaced by it.
func TestOrdinaryWithoutAccountIdentity(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := register(t, env, "alice")
	c, err := client.Link(ctx, filepath.Join(t.TempDir(), "alice2"), client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint,
		Username: "alice", Password: "password-alice"}, opts)
	check(t, err)
	defer c.Close()
	if _, err := c.SendOrdinary(ctx, "alice", "hi"); !errors.Is(err, client.ErrNoAccountIdentity) {
		t.Fatalf("send: %v", err)
	}
	if err := c.Receive(ctx, client.ReceiveOptions{}); !errors.Is(err, client.ErrNoAccountIdentity) {
		t.Fatalf("receive: %v", err)
	}
	a, err := c.Status(ctx)
	check(t, err)
	if !slices.Equal(a.AccountIdentityKey, alice.c.Store().AccountIdentity().Public.Bytes()) {
		t.Fatal("the account identity changed")
	}
}

// TestOrdinaryOldAccount: an account made before ordinary conversations
// (no account identity on the server): the first device to run a new hush
// makes it and publishes it, and can then talk.
func TestOrdinaryOldAccount(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	env.NewUser(t, "carol", 0) // as an older hush left it
	bob := register(t, env, "bob")
	home := filepath.Join(t.TempDir(), "carol")
	c, err := client.Link(ctx, home, client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint,
		Username: "carol", Password: "password-carol"}, opts)
	check(t, err)
	carol := &user{name: "carol", home: home, c: c}
	t.Cleanup(func() { carol.c.Close() })
	if c.Store().AccountIdentity() != nil {
		t.Fatal("an account identity before it was needed")
	}
	carol.sendOrdinary(t, "bob", "from an old account")
	wantLines(t, "bob", bob.recv(t), "carol: from an old account")
	a, err := c.Status(ctx)
	check(t, err)
	if !slices.Equal(a.AccountIdentityKey, c.Store().AccountIdentity().Public.Bytes()) {
		t.Fatal("the server does not have the account identity carol made")
	}
	bob.sendOrdinary(t, "carol", "answer")
	wantLines(t, "carol", carol.recv(t), "bob: answer")
}

// TestSyncCopyFromSomeoneElse: a sync copy is accepted only from a device
// of one's own account; from anyone else it is refused with a notice.
func TestSyncCopyFromSomeoneElse(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, mallory := register(t, env, "alice"), register(t, env, "mallory")
	alice.sendOrdinary(t, "mallory", "hi")
	wantLines(t, "mallory", mallory.recv(t), "alice: hi")
	// mallory's client, changed to claim a message alice sent to bob.
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Body: "I owe mallory 100", Ordinary: true, SyncTo: "bob"}
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
	ids, err := alice.c.Decrypt(ctx, &api.Message{ID: 77, From: "mallory", FromDevice: 1, Type: typ, Content: ct.Body})
	check(t, err)
	if len(ids) != 1 {
		t.Fatalf("ids %v", ids)
	}
	n, err := alice.c.Message(ctx, ids[0])
	check(t, err)
	if n.Kind != store.KindNotice || !strings.Contains(n.Body, "claims to be a copy") {
		t.Fatalf("got %+v", n)
	}
	if h, _ := alice.c.History(ctx, "bob", 0); len(h) != 0 {
		t.Fatalf("alice's conversation with bob: %q", lines(h))
	}
}

// mismatchProxy stands between the clients and the server; while on, it
// answers every ordinary send with a device_mismatch naming devices that
// do not exist (a server, or a device list, that keeps changing; and a
// hostile list: 100,000 devices, repeated, 0 among them).
type mismatchProxy struct {
	on      atomic.Bool
	posts   atomic.Int32
	maxAsks atomic.Int32 // the most devices one bundle fetch asked for
	url, fp string
}

func newMismatchProxy(t *testing.T, env *servertest.Env) *mismatchProxy {
	p := &mismatchProxy{}
	target, err := url.Parse(env.URL)
	check(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // to the test's own server
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ds := r.URL.Query().Get("devices"); ds != "" {
			if n := int32(len(strings.Split(ds, ","))); n > p.maxAsks.Load() {
				p.maxAsks.Store(n)
			}
		}
		if p.on.Load() && r.Method == "POST" && r.URL.Path == "/v1/ordinary/messages" {
			p.posts.Add(1)
			missing := []uint32{0, 0}
			for d := uint32(1); d <= 100000; d++ {
				missing = append(missing, 100+d%50)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(api.Error{Err: api.ErrorBody{Code: api.CodeDeviceMismatch, Message: "no",
				Mismatches: []api.Mismatch{{Username: "bob", Missing: missing}, {Username: "mallory", Extra: []uint32{1}}}}})
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	p.url, p.fp = ts.URL, tlscert.Fingerprint(ts.Certificate().Raw)
	return p
}

// TestOrdinaryMismatchForever: device_mismatch answers that never end
// leave the message queued after three tries (never dropped, never a
// loop), a hostile device list is cut to what an account can have, and
// the message goes out, once, when the lists settle.
func TestOrdinaryMismatchForever(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	p := newMismatchProxy(t, env)
	bob := register(t, env, "bob")
	home := filepath.Join(t.TempDir(), "alice")
	c, err := client.Register(ctx, home, client.RegisterParams{Server: p.url, Fingerprint: p.fp, Username: "alice", Password: "password-alice"}, opts)
	check(t, err)
	alice := &user{name: "alice", home: home, c: c}
	t.Cleanup(func() { alice.c.Close() })

	p.on.Store(true)
	m, err := alice.c.SendOrdinary(ctx, "bob", "through a changing list")
	var q *client.QueuedError
	if !errors.As(err, &q) || m == nil || m.State != store.StatePending {
		t.Fatalf("send: %+v %v", m, err)
	}
	if n := p.posts.Load(); n != 3 {
		t.Fatalf("%d sends, want 3", n)
	}
	if n := p.maxAsks.Load(); n > api.MaxDevices {
		t.Fatalf("a bundle fetch asked for %d devices", n)
	}
	if h, _ := alice.c.Conversation(ctx, "mallory", false, 0); len(h) != 0 {
		t.Fatalf("a mismatch for an account not in the send touched it: %q", lines(h))
	}
	p.on.Store(false)
	check(t, alice.c.FlushOutbox(ctx))
	if sm, err := alice.c.Message(ctx, m.ID); err != nil || sm.State != store.StateSent {
		t.Fatalf("after the lists settled: %+v %v", sm, err)
	}
	wantLines(t, "bob", bob.recv(t), "alice: through a changing list")
	wantLines(t, "bob", bob.recv(t))
}

// TestOrdinaryAnswerLost: the server accepts an ordinary message but its
// answer is lost (as when the sender is killed before it records the
// acceptance). The message stays pending, its outbox row without the
// request; sent again after a restart it is encrypted again (the next
// message keys, the same content id), and every device shows it once:
// the second copy is dropped by its content id. The sessions still work
// both ways.
func TestOrdinaryAnswerLost(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	target, err := url.Parse(env.URL)
	check(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // to the test's own server
	var lose atomic.Bool
	var lost atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lose.Load() && r.Method == "POST" && r.URL.Path == "/v1/ordinary/messages" {
			// The server gets it; the client does not hear so.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Errorf("the server answered %d: %s", rec.Code, rec.Body)
			}
			lost.Add(1)
			http.Error(w, "lost", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	home := filepath.Join(t.TempDir(), "alice")
	c, err := client.Register(ctx, home, client.RegisterParams{Server: ts.URL, Fingerprint: tlscert.Fingerprint(ts.Certificate().Raw),
		Username: "alice", Password: "password-alice"}, opts)
	check(t, err)
	alice1 := &user{name: "alice", home: home, c: c}
	t.Cleanup(func() { alice1.c.Close() })
	bob1 := register(t, env, "bob")
	alice2, bob2 := linkWithIdentity(t, env, alice1), linkWithIdentity(t, env, bob1)
	check(t, bob1.c.EnsureOrdinary(ctx))

	alice1.sendOrdinary(t, "bob", "first")
	lose.Store(true)
	m, err := alice1.c.SendOrdinary(ctx, "bob", "answer lost")
	var q *client.QueuedError
	if !errors.As(err, &q) || m == nil || m.State != store.StatePending || lost.Load() != 1 {
		t.Fatalf("send with its answer lost: %+v %v (%d lost)", m, err, lost.Load())
	}
	out, err := alice1.c.Store().Read().Outbox(ctx)
	check(t, err)
	if len(out) != 1 || len(out[0].Request) > 64 {
		t.Fatalf("outbox %d rows, the first's request %d bytes (want the mark only)", len(out), len(out[0].Request))
	}
	lose.Store(false)
	alice1.restart(t)
	check(t, alice1.c.FlushOutbox(ctx))
	if sm, err := alice1.c.Message(ctx, m.ID); err != nil || sm.State != store.StateSent {
		t.Fatalf("after the flush: %+v %v", sm, err)
	}
	for _, u := range []*user{bob1, bob2} {
		got := u.recv(t)
		wantLines(t, "bob", got, "alice: first", "alice: answer lost")
		if got[1].MsgID != m.MsgID {
			t.Fatalf("bob got %+v", got[1])
		}
		wantLines(t, "bob", u.recv(t))
		h, err := u.c.Conversation(ctx, "alice", false, 0)
		check(t, err)
		wantLines(t, "bob's history", h, "alice: first", "alice: answer lost")
	}
	wantLines(t, "alice2", alice2.recv(t), "-> bob: first", "-> bob: answer lost")
	h, err := alice2.c.Conversation(ctx, "bob", false, 0)
	check(t, err)
	wantLines(t, "alice2's history", h, "-> bob: first", "-> bob: answer lost")

	bob2.sendOrdinary(t, "alice", "back")
	wantLines(t, "alice1", alice1.recv(t), "bob: back")
	wantLines(t, "alice2", alice2.recv(t), "bob: back")
	alice1.sendOrdinary(t, "bob", "again")
	wantLines(t, "bob1", bob1.recv(t), "-> alice: back", "alice: again")
}
