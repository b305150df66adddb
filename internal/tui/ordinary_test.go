package tui_test

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/tui"
)

// openSecret types /secret and waits for the violet bar and want.
func openSecret(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	tm.Type("/secret")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, append([]string{"SECRET"}, want...)...)
}

// listRows are the list's rows of view (left of the "│"), stripped.
func listRows(view string) []string {
	var rows []string
	for _, l := range strings.Split(ansi.Strip(view), "\n")[1:] {
		left, _, ok := strings.Cut(l, "│")
		if !ok {
			break
		}
		rows = append(rows, strings.TrimRight(left, " "))
	}
	return rows
}

// TestOrdinaryAndSecret (issue 9 part 6): the ordinary and the secret
// conversation with bob are two rows of the list; bob opens on the
// ordinary one; what is typed goes out in the open conversation
// (SendOrdinary or Send with the timer); /secret and /ordinary switch;
// /timer is refused in an ordinary conversation; what arrives goes to its
// own conversation.
func TestOrdinaryAndSecret(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	if _, err := bob.SendOrdinary(ctx, "alice", "ordinary hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "secret hello", 0); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(140, 30))
	line := func(s string) {
		tm.Type(s)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, 10*time.Second, "bob · end-to-end encrypted, on all your devices", "ordinary hello")

	line("/timer 30s")
	waitFor(t, tm, 5*time.Second, "timers are for secret conversations: /secret opens the one with bob")
	line("/safety")
	waitFor(t, tm, 5*time.Second, "safety numbers cover the secret conversation only")
	line("in the ordinary one")
	waitFor(t, tm, 10*time.Second, "in the ordinary one ✓ sent")

	openSecret(t, tm, "SECRET CONVERSATION with bob", "secret hello")
	line("/timer 30s")
	waitFor(t, tm, 5*time.Second, "disappear after 30s")
	line("in the secret one")
	waitFor(t, tm, 10*time.Second, "in the secret one ✓ sent")

	got := recvAll(t, bob, 2)
	if len(got) != 2 || got[0].Body != "in the ordinary one" || got[0].Secret || got[0].Timer != 0 ||
		got[1].Body != "in the secret one" || !got[1].Secret || got[1].Timer != 30*time.Second {
		t.Fatalf("bob got %+v", got)
	}

	// An ordinary message arriving while the secret one is open counts
	// on its own row and stays out of the secret thread.
	if _, err := bob.SendOrdinary(ctx, "alice", "arrives in the ordinary one"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "  bob (1)")
	line("/ordinary")
	waitFor(t, tm, 10*time.Second, "arrives in the ordinary one")
	line("/ordinary")
	waitFor(t, tm, 5*time.Second, "this is the ordinary conversation with bob")

	// ↓ moves to the other row, the secret one, and ↓ again back (two
	// rows: the list wraps).
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	waitFor(t, tm, 10*time.Second, "SECRET CONVERSATION with bob", "in the secret one")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	waitFor(t, tm, 10*time.Second, "bob · end-to-end encrypted, on all your devices", "arrives in the ordinary one")

	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	view := fm.View()
	checkOrdinary(t, view, "bob")
	for _, s := range []string{"ordinary hello", "in the ordinary one", "arrives in the ordinary one"} {
		if !strings.Contains(view, s) {
			t.Errorf("%q is not in the ordinary conversation:\n%s", s, view)
		}
	}
	for _, s := range []string{"secret hello", "in the secret one", "⏱"} {
		if strings.Contains(view, s) {
			t.Errorf("%q shows in the ordinary conversation:\n%s", s, view)
		}
	}
	if rows := listRows(view); len(rows) < 2 || rows[0] != "  bob" || rows[1] != "🔒 bob" {
		t.Errorf("the list does not hold both of bob's conversations: %q", rows)
	}
}

// checkOrdinary fails unless view is the ordinary conversation with peer:
// its grey bar, no lock and no SECRET in the header.
func checkOrdinary(t *testing.T, view, peer string) {
	t.Helper()
	head := ansi.Strip(strings.SplitN(view, "\n", 2)[0])
	_, right, _ := strings.Cut(head, "│ ")
	if !strings.Contains(right, peer) || strings.Contains(right, "SECRET") || strings.Contains(right, "🔒") {
		t.Errorf("the header is not the ordinary conversation with %s: %q\n%s", peer, right, view)
	}
}

// TestOrdinaryHostile: a peer's escape sequences in an ordinary message
// reach the screen inert; a name typed with /to that is no username is
// refused with a line that shows it inert; at 40x15 the frame holds.
func TestOrdinaryHostile(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, mallory := register(t, env, "alice"), register(t, env, "mallory")
	hostile := "hi\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\r\u202eevil\n12:00 alice: I owe mallory 100"
	if _, err := mallory.SendOrdinary(ctx, "alice", longText()); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.SendOrdinary(ctx, "alice", hostile); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Send(ctx, "alice", "unread in the secret one", 0); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "mallory"), teatest.WithInitialTermSize(100, 20))
	waitFor(t, tm, 10*time.Second, "I owe mallory")
	tm.Type("/to \x1b]0;x\x07\u202eeve")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 5*time.Second, "is not a name")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	for _, size := range [][2]int{{100, 20}, {80, 24}, {40, 15}} {
		fm.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		view := fm.View()
		lines := strings.Split(view, "\n")
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for i, l := range lines {
			if lw := ansi.StringWidth(l); lw > size[0] {
				t.Errorf("%dx%d: line %d is %d cells wide", size[0], size[1], i, lw)
			}
		}
		for _, bad := range []string{"\x1b]", "\x1b[2J", "\a", "\r", "\u202e"} {
			if strings.Contains(view, bad) {
				t.Errorf("%dx%d: the screen holds %q:\n%q", size[0], size[1], bad, view)
			}
		}
		checkOrdinary(t, view, "mallory")
		for _, l := range lines {
			if _, right, ok := strings.Cut(l, "│ "); ok && strings.Contains(right, "I owe mallory") && !strings.HasPrefix(right, "  ") {
				t.Errorf("%dx%d: the message's second line passes for a line of its own: %q", size[0], size[1], right)
			}
		}
	}
	// At 40x15 the list is 10 cells: the unread count of the secret row
	// stays, its name gives way.
	rows := listRows(fm.View())
	if len(rows) < 2 || !contains(rows, "  mallory") || !contains(rows, "🔒 ma… (1)") {
		t.Errorf("the list does not hold mallory's two conversations, the secret one with its count: %q", rows)
	}
}

func contains(rows []string, want string) bool {
	for _, r := range rows {
		if r == want {
			return true
		}
	}
	return false
}
