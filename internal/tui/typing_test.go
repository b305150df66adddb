package tui_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/tui"
)

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// typingOf receives for c until it got n typing indicators (or the
// deadline), and returns them as "peer/o+" (o: ordinary, s: secret; +
// started, - stopped); a line that arrives is returned as "line:TEXT".
func typingOf(t *testing.T, c *client.Client, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		err := c.Receive(t.Context(), client.ReceiveOptions{
			Handle: func(m *store.Message) {
				if m.Kind == store.KindText && !m.Outgoing {
					got = append(got, "line:"+m.Body)
					c.MarkShown(t.Context(), m.ID)
				}
			},
			Typing: func(ty client.Typing) {
				kind, what := "o", "-"
				if ty.Secret {
					kind = "s"
				}
				if ty.Started {
					what = "+"
				}
				got = append(got, ty.Peer+"/"+kind+what)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func wantSeq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestTypingSent: typing in the UI tells the person (issue 9 part 5):
// started on the first key, stopped when the line is emptied, at most one
// started per refresh, in the open conversation's kind; sending the line
// sends no stopped; after the idle time a stopped goes.
func TestTypingSent(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	for _, secret := range []bool{false, true} {
		var err error
		if secret {
			_, err = bob.Send(ctx, "alice", "secret hi", 0)
		} else {
			_, err = bob.SendOrdinary(ctx, "alice", "hi")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{now: time.Now()}
	m := tui.New(ctx, alice, "bob")
	tui.SetClock(m, clock.Now)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 24))
	waitFor(t, tm, 10*time.Second, "hi")

	tm.Type("hel")
	wantSeq(t, typingOf(t, bob, 1), "alice/o+")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	wantSeq(t, typingOf(t, bob, 1), "alice/o-")

	clock.Add(client.TypingRefresh)
	openSecret(t, tm, "SECRET CONVERSATION with bob")
	tm.Type("in secret")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	wantSeq(t, typingOf(t, bob, 2), "alice/s+", "line:in secret")

	// Idle: a stopped after TypingIdle without a key.
	clock.Add(client.TypingRefresh)
	tm.Type("x")
	wantSeq(t, typingOf(t, bob, 1), "alice/s+")
	clock.Add(client.TypingIdle)
	wantSeq(t, typingOf(t, bob, 1), "alice/s-")

	// Off: nothing goes.
	if err := alice.SetTypingIndicators(ctx, false); err != nil {
		t.Fatal(err)
	}
	clock.Add(client.TypingRefresh)
	tm.Type("y")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	wantSeq(t, typingOf(t, bob, 1), "line:xy")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestTypingShown: bob's typing shows under the open thread of that
// conversation only, goes when his message arrives, when he stops, or 15 s
// after without a refresh; never in another conversation's thread.
func TestTypingShown(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	if _, err := bob.SendOrdinary(ctx, "alice", "hi"); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	m := tui.New(ctx, alice, "bob")
	tui.SetClock(m, clock.Now)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 24))
	waitFor(t, tm, 10*time.Second, "hi")

	// Through the server, end to end.
	if err := bob.SendTyping(ctx, "alice", false, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "bob is typing…")
	if _, err := bob.SendOrdinary(ctx, "alice", "there you go"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "there you go")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	shows := func(what string) bool { return strings.Contains(fm.View(), "bob is typing…") }
	if shows("after his message") {
		t.Fatalf("the indicator stayed after bob's message:\n%s", fm.View())
	}
	if h, err := alice.Conversation(ctx, "bob", false, 0); err != nil || len(h) != 2 {
		t.Fatalf("alice's conversation with bob: %d lines, %v", len(h), err)
	}

	// Stopped, expired, refreshed; the other kind's.
	tui.GotTyping(fm, client.Typing{Peer: "bob", Started: true})
	if !shows("started") {
		t.Fatalf("no indicator:\n%s", fm.View())
	}
	tui.GotTyping(fm, client.Typing{Peer: "bob", Started: false})
	if shows("stopped") {
		t.Fatal("the indicator stayed after stopped")
	}
	tui.GotTyping(fm, client.Typing{Peer: "bob", Started: true})
	clock.Add(client.TypingExpiry - time.Second)
	tui.Tick(fm, clock.Now())
	tui.GotTyping(fm, client.Typing{Peer: "bob", Started: true}) // a refresh
	clock.Add(client.TypingExpiry - time.Second)
	tui.Tick(fm, clock.Now())
	if !shows("refreshed") {
		t.Fatal("a refreshed indicator expired")
	}
	clock.Add(time.Second)
	tui.Tick(fm, clock.Now())
	if shows("expired") {
		t.Fatal("the indicator outlived its 15 s")
	}
	tui.GotTyping(fm, client.Typing{Peer: "bob", Secret: true, Started: true})
	tui.GotTyping(fm, client.Typing{Peer: "carol", Started: true})
	if shows("secret") || strings.Contains(fm.View(), "carol is typing") {
		t.Fatalf("another conversation's indicator in bob's ordinary thread:\n%s", fm.View())
	}
}
