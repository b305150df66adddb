package client_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/internal/link"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// linkByCode adds a device to from's account by a link code, as `hush
// device add` and `hush link --code` do, and returns it with the device
// number the old device saw.
func linkByCode(t testing.TB, env *servertest.Env, from *user) *user {
	t.Helper()
	ctx := t.Context()
	offer, err := from.c.OfferLink(ctx, 0)
	check(t, err)
	done := make(chan error, 1)
	var id uint32
	go func() {
		var err error
		id, err = offer.Complete(ctx)
		done <- err
	}()
	home := filepath.Join(t.TempDir(), from.name+"-linked")
	c, err := client.LinkWithCode(ctx, home, client.LinkParams{Server: env.URL, Fingerprint: env.Fingerprint,
		Code: offer.Code.String(), DeviceName: "laptop"}, opts)
	check(t, err)
	check(t, <-done)
	if id != c.Account().DeviceID {
		t.Fatalf("the old device saw device %d linked, the new one is %d", id, c.Account().DeviceID)
	}
	u := &user{name: from.name, home: home, c: c}
	t.Cleanup(func() { u.c.Close() })
	return u
}

// TestLinkByCode: issue 9 part 2. The new device gets the account identity
// and takes part in ordinary conversations at once, both ways.
func TestLinkByCode(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice1.c.EnsureOrdinary(t.Context()))
	check(t, bob.c.EnsureOrdinary(t.Context()))
	alice1.sendOrdinary(t, "bob", "before the laptop")
	wantLines(t, "bob", bob.recv(t), "alice: before the laptop")

	alice2 := linkByCode(t, env, alice1)
	if a, b := alice1.c.Store().AccountIdentity(), alice2.c.Store().AccountIdentity(); a == nil || b == nil || a.Public != b.Public {
		t.Fatal("the linked device does not hold the account identity")
	}
	bob.sendOrdinary(t, "alice", "hello laptop")
	wantLines(t, "alice2", alice2.recv(t), "bob: hello laptop")
	alice2.sendOrdinary(t, "bob", "from the laptop")
	// bob's receipt for "before the laptop" recorded alice's one device,
	// so the laptop is news to bob when he sends (section 5).
	wantLines(t, "bob", bob.recv(t), "* alice: alice added a device.", "alice: from the laptop")
	got := alice1.recv(t)
	wantLines(t, "alice1", got, "bob: hello laptop", "-> bob: from the laptop")
}

// A wrong, used or expired code fails cleanly on the new device and leaves
// nothing in its home.
func TestLinkBadCode(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1 := register(t, env, "alice")
	check(t, alice1.c.EnsureOrdinary(ctx))
	p := client.LinkParams{Server: env.URL, Fingerprint: env.Fingerprint, Code: link.NewCode().String()}
	home := filepath.Join(t.TempDir(), "new")
	if _, err := client.LinkWithCode(ctx, home, p, opts); !errors.Is(err, client.ErrNoSuchLink) {
		t.Fatalf("a code never offered: %v", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed link left %s: %v", home, err)
	}
	p.Code = "not a code"
	if _, err := client.LinkWithCode(ctx, home, p, opts); !errors.Is(err, link.ErrNotACode) {
		t.Fatalf("garbage: %v", err)
	}
	// Used once, a code is gone.
	linked := linkByCode(t, env, alice1)
	_ = linked
	offer, err := alice1.c.OfferLink(ctx, 0)
	check(t, err)
	go offer.Complete(ctx)
	p.Code = offer.Code.String()
	c, err := client.LinkWithCode(ctx, filepath.Join(t.TempDir(), "third"), p, opts)
	check(t, err)
	c.Close()
	if _, err := client.LinkWithCode(ctx, filepath.Join(t.TempDir(), "fourth"), p, opts); !errors.Is(err, client.ErrNoSuchLink) {
		t.Fatalf("a code used twice: %v", err)
	}
}

// TestHistoryFollows: issue 9 part 3. A device linked later shows the
// earlier ordinary conversation, both directions, in order, once; the
// secret conversation never enters the history.
func TestHistoryFollows(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice1.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	alice1.sendOrdinary(t, "bob", "one")
	wantLines(t, "bob", bob.recv(t), "alice: one")
	bob.sendOrdinary(t, "alice", "two")
	alice1.send(t, "bob", "secret canary 7f3a", 0)
	wantLines(t, "alice1", alice1.recv(t), "bob: two")
	alice1.sendOrdinary(t, "bob", "three")
	_, err := alice1.c.DepositHistory(ctx)
	check(t, err)

	alice2 := linkByCode(t, env, alice1)
	rep, err := alice2.c.SyncHistory(ctx)
	check(t, err)
	if rep.Added != 3 || rep.Refused != 0 || rep.Unread != 0 {
		t.Fatalf("history: %+v", rep)
	}
	ms, err := alice2.c.History(ctx, "bob", 0)
	check(t, err)
	wantLines(t, "alice2's history", ms, "-> bob: one", "bob: two", "-> bob: three")
	rep, err = alice2.c.SyncHistory(ctx)
	check(t, err)
	if rep.Added != 0 {
		t.Fatalf("read again: %+v", rep)
	}
	// Nothing of the secret conversation on the new device.
	all, err := alice2.c.Store().Read().OrdinaryTextAfter(ctx, 0, 1000)
	check(t, err)
	for _, m := range all {
		if m.Body == "secret canary 7f3a" {
			t.Fatal("the secret message reached the history")
		}
	}
}

// TestRemovedDevice: issue 9 part 4. A removed device's credential stops
// working, and history stored after its removal is in an epoch it does not
// hold.
func TestRemovedDevice(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice1.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	alice2 := linkByCode(t, env, alice1)
	alice3 := linkByCode(t, env, alice1)
	alice1.sendOrdinary(t, "bob", "before")
	check(t, alice1.c.RemoveDevice(ctx, alice3.c.Account().DeviceID))
	if err := alice3.c.Receive(ctx, client.ReceiveOptions{}); !apiclient.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("the removed device receives: %v", err)
	}
	// Following, it stops at once rather than retrying a dead credential.
	if err := alice3.c.Receive(ctx, client.ReceiveOptions{Follow: true}); !apiclient.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("the removed device follows: %v", err)
	}
	// alice2 learns the new epoch and writes with it.
	alice2.recv(t)
	alice2.sendOrdinary(t, "bob", "after removal")
	alice1.sendOrdinary(t, "bob", "after removal too")

	raw := env.Client(t, alice1.c.Account().Credential)
	var page api.HistoryPage
	check(t, raw.Do(ctx, "GET", "/v1/history?after=0&limit=500", nil, &page))
	if len(page.Records) != 3 {
		t.Fatalf("%d records on the server", len(page.Records))
	}
	b, err := alice3.c.Store().Read().HistoryKeyring(ctx)
	check(t, err)
	old, err := history.ParseKeyring(b)
	check(t, err)
	opened := 0
	for _, r := range page.Records {
		id, err := history.ParseRecordID(r.ID)
		check(t, err)
		if rec, err := old.Open(id, r.Blob); err == nil {
			opened++
			if rec.Body != "before" {
				t.Fatalf("the removed device opens %q, stored after its removal", rec.Body)
			}
		}
	}
	if opened != 1 {
		t.Fatalf("the removed device opens %d records; want the 1 stored before", opened)
	}
}

// TestRecovery: issue 9 part 3. With every device gone, the recovery code
// and the password restore the account and its history on a new device; a
// wrong code creates nothing.
func TestRecovery(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice1.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	code, err := alice1.c.NewRecoveryCode(ctx)
	check(t, err)
	alice1.sendOrdinary(t, "bob", "remember this")
	bob.sendOrdinary(t, "alice", "and this")
	alice1.recv(t)
	_, err = alice1.c.DepositHistory(ctx)
	check(t, err)
	check(t, alice1.c.Close())
	check(t, os.RemoveAll(alice1.home))

	p := client.RecoverParams{Server: env.URL, Fingerprint: env.Fingerprint, Username: "alice", Password: "password-alice",
		RecoveryCode: history.NewRecoveryCode().String()}
	home := filepath.Join(t.TempDir(), "restored")
	if _, err := client.Recover(ctx, home, p, opts); !errors.Is(err, client.ErrWrongRecoveryCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed recovery left %s", home)
	}
	p.RecoveryCode = code.String()
	c, err := client.Recover(ctx, home, p, opts)
	check(t, err)
	alice := &user{name: "alice", home: home, c: c}
	t.Cleanup(func() { alice.c.Close() })
	ms, err := c.History(ctx, "bob", 0)
	check(t, err)
	wantLines(t, "restored", ms, "-> bob: remember this", "bob: and this")
	// The same account identity: bob's conversation goes on.
	bob.sendOrdinary(t, "alice", "welcome back")
	wantLines(t, "restored", alice.recv(t), "bob: welcome back")
	_ = store.KindText
}

// BenchmarkLinkWithHistory: issue 9's goal, a device linked to an account
// with 10,000 messages of history shows them all in under 5 s. Each
// iteration links a new device by code (both sides poll the server once a
// second) and reads the whole history into its store. Run with
// -benchtime=1x; the history-only figure is reported as sync-ms.
func BenchmarkLinkWithHistory(b *testing.B) {
	ctx := b.Context()
	env := servertest.Start(b, server.Config{Limits: servertest.Generous})
	alice := register(b, env, "alice")
	check(b, alice.c.EnsureOrdinary(ctx))
	kb, err := alice.c.Store().Read().HistoryKeyring(ctx)
	if kb == nil {
		_, err = alice.c.OfferLink(ctx, 0) // makes the keyring
		check(b, err)
		kb, err = alice.c.Store().Read().HistoryKeyring(ctx)
	}
	check(b, err)
	kr, err := history.ParseKeyring(kb)
	check(b, err)
	raw := env.Client(b, alice.c.Account().Credential)
	const n = 10000
	start := time.Now().Add(-n * time.Minute)
	for i := 0; i < n; i += api.MaxHistoryPerRequest {
		var dep api.HistoryDeposit
		for j := i; j < min(n, i+api.MaxHistoryPerRequest); j++ {
			id, blob, err := kr.Seal(&history.Record{Peer: "bob", Outgoing: j%2 == 0, Device: 1, ID: content.NewID(),
				SentAt: start.Add(time.Duration(j) * time.Minute), Body: fmt.Sprintf("message %d of a long conversation, with some words in it", j)})
			check(b, err)
			dep.Records = append(dep.Records, api.HistoryRecord{ID: id.Bytes(), Blob: blob})
		}
		check(b, raw.Do(ctx, "POST", "/v1/history", dep, nil))
	}
	var sync time.Duration
	for b.Loop() {
		u := linkByCode(b, env, alice)
		t0 := time.Now()
		rep, err := u.c.SyncHistory(ctx)
		sync += time.Since(t0)
		check(b, err)
		if rep.Added != n {
			b.Fatalf("%d lines of %d", rep.Added, n)
		}
		u.c.Close()
	}
	b.ReportMetric(float64(sync.Milliseconds())/float64(b.N), "sync-ms")
}

// What the server (or anyone with a credential of the account) puts in the
// history that was not sealed for it is refused, never shown: a record
// moved to another id, an altered one, garbage; the same record twice is
// one line.
func TestHistoryTampered(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice1, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice1.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	alice1.sendOrdinary(t, "bob", "genuine")
	raw := env.Client(t, alice1.c.Account().Credential)
	var page api.HistoryPage
	check(t, raw.Do(ctx, "GET", "/v1/history?after=0&limit=500", nil, &page))
	if len(page.Records) != 1 {
		t.Fatalf("%d records", len(page.Records))
	}
	genuine := page.Records[0]
	moved := content.NewID()
	altered := append([]byte(nil), genuine.Blob...)
	altered[len(altered)-1] ^= 1
	other := content.NewID()
	check(t, raw.Do(ctx, "POST", "/v1/history", api.HistoryDeposit{Records: []api.HistoryRecord{
		{ID: moved[:], Blob: genuine.Blob},  // the genuine record under another id
		{ID: other[:], Blob: altered},       // altered
		{ID: genuine.ID, Blob: []byte("x")}, // a second copy of the id: the server keeps the first
	}}, nil))

	alice2 := linkByCode(t, env, alice1)
	rep, err := alice2.c.SyncHistory(ctx)
	check(t, err)
	if rep.Added != 1 || rep.Refused != 2 {
		t.Fatalf("history: %+v; want 1 added, 2 refused", rep)
	}
	ms, err := alice2.c.History(ctx, "bob", 0)
	check(t, err)
	wantLines(t, "alice2", ms, "-> bob: genuine")
}
