package tui_test

import (
	"slices"
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

// TestGroup (issue 10): a group is a row of the list beside the people,
// by its name; its conversation says who said what; what is typed in it
// goes to the group.
func TestGroup(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, carol := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "carol")
	for _, c := range []*client.Client{alice, bob, carol} {
		if err := c.EnsureOrdinary(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.CreateGroup(ctx, "Crew", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{bob, carol} {
		if err := c.Receive(ctx, client.ReceiveOptions{Wait: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := carol.SendGroup(ctx, "Crew", "hi from carol"); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, bob, ""), teatest.WithInitialTermSize(140, 30))
	line := func(s string) {
		tm.Type(s)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, 10*time.Second, "# Crew")
	line("/to alice")
	waitFor(t, tm, 10*time.Second, "alice · end-to-end encrypted")
	line("/group crew")
	waitFor(t, tm, 10*time.Second, "# Crew · 3 members", "carol: hi from carol", "alice created the group")
	line("/secret")
	waitFor(t, tm, 5*time.Second, "a group has no secret conversation")
	line("hello crew")
	waitFor(t, tm, 10*time.Second, "hello crew ✓ sent")
	got := recvAll(t, alice, 2)
	var said []string
	for _, m := range got {
		if _, ok := client.IsGroupPeer(m.Peer); !ok || m.Kind != store.KindText {
			t.Fatalf("alice got %+v", m)
		}
		said = append(said, m.Sender+": "+m.Body)
	}
	if !slices.Equal(said, []string{"carol: hi from carol", "bob: hello crew"}) {
		t.Fatalf("alice got %q", said)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
