package tui_test

import (
	"slices"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/tui"
)

// TestBlock: /block blocks the open conversation's person (or NAME),
// sending to them is then refused with what to do, /unblock undoes it;
// yourself and a name with control characters are refused.
func TestBlock(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	if _, err := bob.SendOrdinary(ctx, "alice", "hello"); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(140, 30))
	line := func(s string) {
		tm.Type(s)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, 10*time.Second, "hello")

	line("/block")
	waitFor(t, tm, 10*time.Second, "bob is blocked: nothing they send reaches you")
	if names, err := alice.Blocked(ctx); err != nil || !slices.Equal(names, []string{"bob"}) {
		t.Fatalf("alice blocks %q, %v", names, err)
	}
	line("are you there")
	waitFor(t, tm, 10*time.Second, "you block bob: /unblock bob first", "✗ not sent")

	line("/block alice")
	waitFor(t, tm, 10*time.Second, "you cannot block yourself")
	line("/block eve\x1b[2J")
	waitFor(t, tm, 10*time.Second, `is not a username`)
	line("/block a b")
	waitFor(t, tm, 10*time.Second, "usage: /block [NAME]")

	line("/unblock bob")
	waitFor(t, tm, 10*time.Second, "bob is no longer blocked")
	if names, err := alice.Blocked(ctx); err != nil || len(names) != 0 {
		t.Fatalf("alice blocks %q, %v", names, err)
	}
	line("back again")
	waitFor(t, tm, 10*time.Second, "back again ✓ sent")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
