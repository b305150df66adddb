package client_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestFranking: every message with a body is franked, secret and
// ordinary; the recipient keeps what a report needs, reports it (with
// context), once; the server folder holds neither the text nor the
// franking keys of messages not reported; the franking goes with a
// disappearing message.
func TestFranking(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	env := servertest.StartIn(t, server.Config{Limits: servertest.Generous}, dir)
	alice, bob := register(t, env, "alice"), register(t, env, "bob")

	const canary = "canary-7d41 meet me behind the station"
	alice.send(t, "bob", canary, 0)
	got := bob.recv(t)
	wantTexts(t, got, canary)
	secret := got[0]
	fr, err := bob.c.Store().Read().Franking(ctx, secret.ID)
	check(t, err)
	cm, err := content.Parse(fr.Content)
	check(t, err)
	if cm.Body != canary || !bytes.Equal(cm.FrankingKey, fr.Key) || !franking.Verify(fr.Key, fr.Content, fr.Commitment) ||
		fr.FromDevice != 1 || fr.ToDevice != bob.c.Account().DeviceID || fr.Timestamp == 0 || fr.KeyID != 1 {
		t.Fatalf("kept franking %v: %+v", fr, cm)
	}
	// Alice's own store keeps no franking of what she sent.
	if _, err := alice.c.Store().Read().Franking(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the sender kept a franking: %v", err)
	}

	// Ordinary messages, franked per device copy.
	check(t, alice.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	for _, text := range []string{"first ordinary", "second ordinary", "third ordinary"} {
		alice.sendOrdinary(t, "bob", text)
	}
	ord := bob.recv(t)
	wantTexts(t, ord, "first ordinary", "second ordinary", "third ordinary")

	// What the server's folder holds: not the text, not a franking key.
	check(t, env.Store.Unblock(ctx, 0, 0)) // a write: what came before is committed
	keys := [][]byte{fr.Key}
	for _, m := range ord {
		f, err := bob.c.Store().Read().Franking(ctx, m.ID)
		check(t, err)
		keys = append(keys, f.Key)
	}
	for _, b := range append(keys, []byte("canary-7d41"), []byte("second ordinary")) {
		if f := grepFiles(t, dir, b); f != "" {
			t.Fatalf("the server's %s holds %q", f, b)
		}
	}

	// Reports: the third with two before it (the secret message is in
	// the other conversation), then the secret one alone.
	res, err := bob.c.Report(ctx, "alice", ord[2].MsgID, 5, "harassment")
	check(t, err)
	if res.Messages != 3 {
		t.Fatalf("report of %d messages, want 3", res.Messages)
	}
	st, err := env.Store.Report(ctx, res.ID)
	check(t, err)
	sr, err := server.ParseStoredReport(st.Body)
	check(t, err)
	if sr.Reporter != "bob" || sr.Reason != "harassment" || len(sr.Messages) != 3 || sr.Messages[0].From != "alice" {
		t.Fatalf("stored %+v", sr)
	}
	for i, want := range []string{"third ordinary", "second ordinary", "first ordinary"} {
		cm, err := content.Parse(sr.Messages[i].Content)
		if err != nil || cm.Body != want {
			t.Fatalf("reported message %d: %+v %v", i, cm, err)
		}
	}
	if _, err := bob.c.Report(ctx, "alice", ord[2].MsgID, 0, ""); err == nil || !strings.Contains(err.Error(), "reported already") {
		t.Fatalf("a second report: %v", err)
	}
	if _, err := bob.c.Report(ctx, "alice", secret.MsgID, 0, ""); err != nil {
		t.Fatal(err)
	}
	// What cannot be reported here: one's own message, an unknown id, a
	// bad reason.
	sent := alice.sendOrdinary(t, "bob", "mine")
	if _, err := alice.c.Report(ctx, "bob", sent.MsgID, 0, ""); err == nil || !strings.Contains(err.Error(), "no message") {
		t.Fatalf("reporting one's own message: %v", err)
	}
	if _, err := bob.c.Report(ctx, "alice", content.NewID(), 0, ""); err == nil {
		t.Fatal("an unknown id was reported")
	}
	if _, err := bob.c.Report(ctx, "alice", ord[1].MsgID, 0, "bad\x1b[2J"); err == nil {
		t.Fatal("a reason with an escape was sent")
	}
	if _, err := bob.c.Report(ctx, "alice", ord[1].MsgID, client.MaxReportContext+1, ""); err == nil {
		t.Fatal("too much context was accepted")
	}

	// A disappearing message takes its franking with it.
	alice.send(t, "bob", "gone soon", 5*time.Second)
	var timed *store.Message
	check(t, bob.c.Receive(ctx, client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
		if m.Body == "gone soon" {
			timed = m
		}
	}}))
	if timed == nil {
		t.Fatal("the timed message did not come")
	}
	if _, err := bob.c.Store().Read().Franking(ctx, timed.ID); err != nil {
		t.Fatal(err)
	}
	check(t, bob.c.MarkShownAt(ctx, time.Now().Add(-time.Minute), timed.ID))
	_, err = bob.c.Expire(ctx)
	check(t, err)
	if _, err := bob.c.Store().Read().Franking(ctx, timed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the franking of a disappeared message: %v", err)
	}
	if _, err := bob.c.Report(ctx, "alice", timed.MsgID, 0, ""); err == nil {
		t.Fatal("a disappeared message was reported")
	}
}

// TestFrankingMismatchDropped: a sender whose commitment does not match
// what it sent gets its message dropped, with a notice, secret or
// ordinary; an honest message after it is shown.
func TestFrankingMismatchDropped(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	check(t, alice.c.EnsureOrdinary(ctx))
	check(t, bob.c.EnsureOrdinary(ctx))
	client.SetCommitmentHook(t, func(c []byte) []byte {
		c = bytes.Clone(c)
		c[0] ^= 1
		return c
	})
	alice.send(t, "bob", "a lie, secret", 0)
	alice.sendOrdinary(t, "bob", "a lie, ordinary")
	client.SetCommitmentHook(t, nil)
	alice.send(t, "bob", "the truth", 0)
	got := bob.recv(t)
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Body)
		if m.Kind != store.KindNotice {
			continue
		}
		if !strings.Contains(m.Body, "dropped") || !strings.Contains(m.Body, "franking") {
			t.Errorf("notice %q", m.Body)
		}
	}
	joined := strings.Join(texts, "|")
	if strings.Contains(joined, "a lie") || !strings.Contains(joined, "the truth") || strings.Count(joined, "dropped") != 2 {
		t.Fatalf("bob got %q", joined)
	}
}

// grepFiles returns the first file under dir holding b, or "".
func grepFiles(t *testing.T, dir string, b []byte) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = p
		}
		return nil
	})
	check(t, err)
	return found
}

// TestFrankingGroup: a group message is franked once and tagged by the
// server for each recipient device; a member reports a line another said,
// with the lines that sender said before it (not the others'), once; a
// dishonest sender's group message is dropped with a notice.
func TestFrankingGroup(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, carol := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "carol")
	for _, u := range []*user{alice, bob, carol} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "Team", []string{"bob", "carol"})
	check(t, err)
	bob.recv(t)
	carol.recv(t)
	alice.sendGroup(t, g.ID, "one from alice")
	carol.sendGroup(t, g.ID, "one from carol")
	alice.sendGroup(t, g.ID, "two from alice")
	alice.recv(t)
	got := texts(bob.recv(t))
	wantGroup(t, "bob", got, "alice: one from alice", "carol: one from carol", "alice: two from alice")
	for _, m := range got {
		fr, err := bob.c.Store().Read().Franking(ctx, m.ID)
		check(t, err)
		if !franking.Verify(fr.Key, fr.Content, fr.Commitment) || fr.ToDevice != bob.c.Account().DeviceID {
			t.Fatalf("kept franking of %q: %+v", m.Body, fr)
		}
	}

	res, err := bob.c.Report(ctx, "alice", got[2].MsgID, 5, "spam")
	check(t, err)
	if res.Messages != 2 {
		t.Fatalf("report of %d messages, want alice's 2", res.Messages)
	}
	st, err := env.Store.Report(ctx, res.ID)
	check(t, err)
	sr, err := server.ParseStoredReport(st.Body)
	check(t, err)
	for i, want := range []string{"two from alice", "one from alice"} {
		cm, err := content.Parse(sr.Messages[i].Content)
		if err != nil || cm.Body != want || sr.Messages[i].From != "alice" {
			t.Fatalf("reported message %d: %+v %v", i, cm, err)
		}
	}
	if _, err := bob.c.Report(ctx, "alice", got[2].MsgID, 0, ""); err == nil {
		t.Fatal("a group line was reported twice")
	}
	// Carol's line is hers: not reportable as alice's.
	if _, err := bob.c.Report(ctx, "alice", got[1].MsgID, 0, ""); err == nil || !strings.Contains(err.Error(), "no message") {
		t.Fatalf("carol's line reported as alice's: %v", err)
	}
	if _, err := bob.c.Report(ctx, "carol", got[1].MsgID, 0, ""); err != nil {
		t.Fatal(err)
	}

	client.SetCommitmentHook(t, func(c []byte) []byte {
		c = bytes.Clone(c)
		c[0] ^= 1
		return c
	})
	alice.sendGroup(t, g.ID, "a lie to the group")
	client.SetCommitmentHook(t, nil)
	alice.sendGroup(t, g.ID, "the truth to the group")
	var lines []string
	for _, m := range bob.recv(t) {
		lines = append(lines, m.Body)
	}
	joined := strings.Join(lines, "|")
	if strings.Contains(joined, "a lie") || !strings.Contains(joined, "the truth to the group") || strings.Count(joined, "franking") != 1 {
		t.Fatalf("bob got %q", joined)
	}
}
