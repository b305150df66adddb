package client_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

func wantBlocked(t *testing.T, u *user, want ...string) {
	t.Helper()
	got, err := u.c.Blocked(t.Context())
	check(t, err)
	local, err := u.c.Store().Read().Blocked(t.Context())
	check(t, err)
	if !slices.Equal(got, want) || !slices.Equal(local, want) {
		t.Fatalf("%s blocks %q (kept here: %q), want %q", u.name, got, local, want)
	}
}

// TestBlock: issue 11 part 5. A block is the account's: every device
// learns it; what the blocked person sends is gone (the server's queue) or
// dropped (one that arrives anyway); no receipt goes to them; sending to
// them is refused until they are unblocked.
func TestBlock(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, mallory := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "mallory")
	alice2 := linkWithIdentity(t, env, alice)

	mallory.sendOrdinary(t, "alice", "before")
	mallory.send(t, "alice", "secret before", 0)
	wantTexts(t, alice.recvUnshown(t), "before", "secret before")
	alice2.recvUnshown(t)
	mallory.sendOrdinary(t, "alice", "queued when blocked")

	check(t, alice.c.Block(ctx, " Mallory "))
	wantBlocked(t, alice, "mallory")
	check(t, alice.c.Block(ctx, "bob"))
	check(t, alice.c.Unblock(ctx, "bob"))
	check(t, alice.c.Unblock(ctx, "bob")) // twice is fine
	wantBlocked(t, alice, "mallory")

	// The server deleted what was queued, and drops what comes now; the
	// blocked sender cannot tell.
	mallory.sendOrdinary(t, "alice", "after")
	mallory.send(t, "alice", "secret after", 0)
	// (What was stored before and not shown yet is shown as usual.)
	wantTexts(t, alice.recvUnshown(t), "before", "secret before")
	// alice2 learns the block when it receives, and has nothing new.
	wantTexts(t, alice2.recvUnshown(t), "before")
	if names, _ := alice2.c.Store().Read().Blocked(ctx); !slices.Equal(names, []string{"mallory"}) {
		t.Fatalf("alice2 learned %q", names)
	}

	// What was stored before stays.
	h, err := alice.c.History(ctx, "mallory", 0)
	check(t, err)
	if len(h) != 2 || h[0].Body != "before" || h[1].Body != "secret before" {
		t.Fatalf("alice's history with mallory: %q", lines(h))
	}

	// No read receipt to a blocked person for what is shown now.
	sent := alice.c.ReceiptsSent()
	check(t, alice.c.MarkShown(ctx, h[0].ID, h[1].ID))
	if n := alice.c.ReceiptsSent(); n != sent {
		t.Fatalf("alice sent %d receipts to a blocked person", n-sent)
	}

	// Sending to them is refused, before anything is stored.
	var be *client.BlockedError
	if _, err := alice.c.SendOrdinary(ctx, "mallory", "hi"); !errors.As(err, &be) || be.Name != "mallory" {
		t.Fatalf("send to a blocked person: %v", err)
	}
	if _, err := alice.c.Send(ctx, "mallory", "hi", 0); !errors.As(err, &be) {
		t.Fatalf("secret send to a blocked person: %v", err)
	}
	if h2, _ := alice.c.History(ctx, "mallory", 0); len(h2) != len(h) {
		t.Fatalf("a refused send stored %q", lines(h2))
	}

	// Unblocked, mallory reaches alice again; what was sent while blocked
	// is gone for good.
	check(t, alice.c.Unblock(ctx, "mallory"))
	wantBlocked(t, alice)
	mallory.sendOrdinary(t, "alice", "again")
	wantLines(t, "alice", alice.recv(t), "mallory: again")

	// bob was never affected.
	bob.sendOrdinary(t, "alice", "hello")
	wantLines(t, "alice", alice.recvUnshown(t), "bob: hello")
}

// TestBlockDropsWhatArrives: a message that arrives from a person blocked
// (one in flight, or taken by a device that had not learned of the block
// yet) is decrypted and dropped: no line, no notice, no receipt; and
// one that fails to decrypt adds no notice either.
func TestBlockDropsWhatArrives(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, mallory := register(t, env, "alice"), register(t, env, "mallory")
	mallory.sendOrdinary(t, "alice", "first")
	wantLines(t, "alice", alice.recvUnshown(t), "mallory: first")
	mallory.sendOrdinary(t, "alice", "in flight")
	mallory.send(t, "alice", "secret in flight", 0)
	// Blocked on this device only, as if the server had delivered these
	// before the block: the client drops them itself. (Receive would
	// refresh the list from the server: decrypt directly.)
	check(t, alice.c.Store().Update(ctx, func(tx *store.Tx) error { return tx.SetBlocked(ctx, []string{"mallory"}) }))
	conn, err := alice.c.API().Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	sent := alice.c.ReceiptsSent()
	for n := 0; n < 2; {
		f, err := conn.Next(ctx)
		check(t, err)
		if f.Type != api.FrameMessage {
			continue
		}
		n++
		ids, err := alice.c.Decrypt(ctx, f.Msg)
		check(t, err)
		if len(ids) != 0 {
			t.Fatalf("a message from a blocked person added lines %v", ids)
		}
		check(t, conn.Ack(ctx, f.Msg.ID))
		// Garbage from them adds no notice either.
		bad := *f.Msg
		bad.ID += 1000
		bad.Content = append([]byte(nil), bad.Content...)
		bad.Content[len(bad.Content)-1] ^= 1
		if ids, err := alice.c.Decrypt(ctx, &bad); err != nil || len(ids) != 0 {
			t.Fatalf("a bad message from a blocked person: %v, %v", ids, err)
		}
	}
	if n := alice.c.ReceiptsSent(); n != sent {
		t.Fatalf("%d receipts went to a blocked person", n-sent)
	}
	h, err := alice.c.History(ctx, "mallory", 0)
	check(t, err)
	if len(h) != 1 {
		t.Fatalf("alice's history with mallory: %q", lines(h))
	}
}

// TestBlockBadInput: yourself, nobody, names with control characters or
// out of bounds are refused before anything is sent or kept; a flood of
// blocks meets the server's lookup limit with a clear error and leaves
// the kept list as the server's.
func TestBlockBadInput(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.LookupPerUser.Rate, lim.LookupPerUser.Burst = 0.001, 20
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := register(t, env, "alice")
	register(t, env, "bob")

	for _, tc := range []struct{ name, want string }{
		{"alice", "you cannot block yourself"},
		{"ALICE", "you cannot block yourself"},
		{"nobody", "there is no nobody on this server"},
		{"eve\x1b[2J", "is not a username"},
		{"bob\nmallory", "is not a username"},
		{"", "is not a username"},
		{strings.Repeat("a", api.MaxUsernameLen+1), "is not a username"},
	} {
		err := alice.c.Block(ctx, tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Block(%q) = %v, want %q", tc.name, err, tc.want)
		}
		if strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Fatalf("Block(%q): the error holds a control character: %q", tc.name, err)
		}
	}
	if names, _ := alice.c.Store().Read().Blocked(ctx); len(names) != 0 {
		t.Fatalf("refused blocks kept %q", names)
	}

	// A flood: the lookup limit (shared with directory lookups) answers.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		if i%2 == 0 {
			err = alice.c.Block(ctx, "bob")
		} else {
			err = alice.c.Unblock(ctx, "bob")
		}
	}
	if !apiclient.IsCode(err, api.CodeRateLimited) || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("a flood of blocks: %v", err)
	}
	server, err := alice.c.Blocked(ctx) // not limited: it looks nobody up
	check(t, err)
	local, err := alice.c.Store().Read().Blocked(ctx)
	check(t, err)
	if !slices.Equal(server, local) {
		t.Fatalf("after the flood the server has %q, this device %q", server, local)
	}
}

// TestBlockedHostileServer: the server's block list is only kept (and
// printed by hush blocked) as usernames: a list from a hostile or broken
// server with terminal escapes, line breaks, the caller's own name,
// repeats and a flood of entries leaves the valid names, once each, and
// nothing else.
func TestBlockedHostileServer(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	register(t, env, "bob")
	var hostile atomic.Bool
	target, err := url.Parse(env.URL)
	check(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // to the test's own server
	bad := []string{"bob", "eve\x1b]0;owned\x07", "carol\nmallory: hi", "alice", "bob", "\u202edave", "", strings.Repeat("a", api.MaxUsernameLen+1)}
	for i := range 20000 {
		bad = append(bad, fmt.Sprintf("user%d", i%100))
	}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hostile.Load() && r.Method == "GET" && r.URL.Path == "/v1/blocks" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(api.Blocks{Usernames: bad})
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c, err := client.Register(ctx, filepath.Join(t.TempDir(), "alice"), client.RegisterParams{Server: ts.URL,
		Fingerprint: tlscert.Fingerprint(ts.Certificate().Raw), Username: "alice", Password: "password-alice"}, opts)
	check(t, err)
	t.Cleanup(func() { c.Close() })
	hostile.Store(true)
	names, err := c.Blocked(ctx)
	check(t, err)
	local, lerr := c.Store().Read().Blocked(ctx)
	check(t, lerr)
	for _, list := range [][]string{names, local} {
		seen := map[string]bool{}
		for _, n := range list {
			if !api.ValidUsername(n) || n == "alice" || seen[n] {
				t.Fatalf("kept %q from the hostile list (all: %d names)", n, len(list))
			}
			seen[n] = true
		}
		if len(list) != 101 || !seen["bob"] || !seen["user99"] {
			t.Fatalf("kept %d names, want the 101 distinct valid ones", len(list))
		}
	}
}
