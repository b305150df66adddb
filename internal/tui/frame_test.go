package tui_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/tui"
)

// checkFrame fails unless view is a frame of exactly w×h cells at most,
// with the header at the top, the list beside it and the input line.
func checkFrame(t *testing.T, view string, w, h int, peer string) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("%dx%d: the frame has %d lines:\n%s", w, h, len(lines), view)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("%dx%d: line %d is %d cells wide: %q", w, h, i, lw, ansi.Strip(l))
		}
	}
	top, secret := ansi.Strip(lines[0]), "SECRET CONVERSATION"
	if w < 60 || h < 12 {
		secret = "SECRET" // the header's short form
	}
	if !strings.Contains(top, secret) || !strings.Contains(top, "conversat") {
		t.Errorf("%dx%d: the header and the list are not at the top; the first line is %q\n%s", w, h, top, view)
	}
	// The list under its title holds the secret conversation's row (the
	// ordinary one may come first).
	if peer != "" && len(lines) > 2 && !strings.Contains(ansi.Strip(lines[1]), "🔒 "+peer) && !strings.Contains(ansi.Strip(lines[2]), "🔒 "+peer) {
		t.Errorf("%dx%d: the list does not show %s under its title:\n%s", w, h, peer, view)
	}
	if !strings.Contains(view, "> ") {
		t.Errorf("%dx%d: no input line:\n%s", w, h, view)
	}
}

// longText is a message of about 1,200 characters whose first and last
// words can be looked for.
func longText() string {
	var b strings.Builder
	b.WriteString("BEGINOFLONG")
	for i := 0; b.Len() < 1180; i++ {
		fmt.Fprintf(&b, " word%03d", i)
	}
	b.WriteString(" ENDOFLONG")
	return b.String()
}

// TestFrameHolds: a 1,200-character message and a wrapped key-change
// notice do not push the header and the list off the screen, at any size;
// the thread scrolls back with PgUp and the mouse wheel, forward with PgDn;
// ? shows the keys.
func TestFrameHolds(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, evan := register(t, env, "alice"), register(t, env, "evan")
	if _, err := evan.Send(ctx, "alice", "first words", 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := evan.Send(ctx, "alice", longText(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := evan.MakeSecret(ctx); err != nil { // a key-change notice
		t.Fatal(err)
	}
	if _, err := evan.Send(ctx, "alice", "LASTLINE after the change", 0); err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{120, 40}, {100, 30}, {60, 15}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			tm := teatest.NewTestModel(t, tui.New(ctx, alice, "evan"), teatest.WithInitialTermSize(w, h))
			openSecret(t, tm, "LASTLINE", "ENDOFLONG")
			for range 50 {
				tm.Send(tea.KeyMsg{Type: tea.KeyPgUp})
			}
			waitFor(t, tm, 5*time.Second, "BEGINOFLONG", "more below")
			tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
			fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
			view := fm.View()
			checkFrame(t, view, w, h, "evan")
			if !strings.Contains(view, "first words") || strings.Contains(view, "LASTLINE") {
				t.Errorf("scrolled back to the top, the view is:\n%s", view)
			}
			// Forward again, to the end.
			for range 50 {
				fm.Update(tea.KeyMsg{Type: tea.KeyPgDown})
			}
			view = fm.View()
			checkFrame(t, view, w, h, "evan")
			if !strings.Contains(view, "LASTLINE") || strings.Contains(view, "more below") {
				t.Errorf("scrolled forward to the end, the view is:\n%s", view)
			}
			// The mouse wheel scrolls too.
			for range 100 {
				fm.Update(tea.MouseMsg{Action: tea.MouseActionPress, Button: tea.MouseButtonWheelUp})
			}
			if view = fm.View(); !strings.Contains(view, "first words") {
				t.Errorf("after the wheel went up, the view is:\n%s", view)
			}
			// ? on an empty line shows the keys, in the frame.
			fm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("?")})
			view = fm.View()
			checkFrame(t, view, w, h, "evan")
			if !strings.Contains(view, "PgUp / PgDn") {
				t.Errorf("? shows no keys:\n%s", view)
			}
		})
	}
}

// TestFrameAnySize: the frame is exactly the terminal's size from large
// to tiny, whatever the thread and the status line hold.
func TestFrameAnySize(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, evan := register(t, env, "alice"), register(t, env, "evan")
	for i := range 3 {
		if _, err := evan.Send(ctx, "alice", fmt.Sprintf("%d %s", i, longText()), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Receive(ctx, client.ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Verify(ctx, "evan", ""); err != nil { // the change is a warning
		t.Fatal(err)
	}
	if err := evan.MakeSecret(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := evan.Send(ctx, "alice", "after the change", 0); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "evan"), teatest.WithInitialTermSize(120, 40))
	openSecret(t, tm, "after the change")
	tm.Type("/safety") // a long status line
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "compare, then")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	for _, size := range [][2]int{{200, 60}, {120, 40}, {100, 30}, {80, 24}, {60, 15}, {40, 12}, {30, 8}} {
		fm.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		view := fm.View()
		checkFrame(t, view, size[0], size[1], "evan")
		if head := strings.Join(strings.SplitN(view, "\n", 4)[:3], "\n"); !strings.Contains(head, "⚠") || !strings.Contains(head, "CHANGED") {
			t.Errorf("%dx%d: the header does not warn of the changed safety number:\n%s", size[0], size[1], head)
		}
	}
}

// TestTimerCommand: /timer 0s is refused with an error line (it used to
// send messages that never disappear); off turns the timer off; a bad
// value says what a timer looks like.
func TestTimerCommand(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(140, 30))
	openSecret(t, tm, "SECRET CONVERSATION with bob")
	line := func(s string) {
		tm.Type(s)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	line("/timer 30s")
	waitFor(t, tm, 5*time.Second, "disappear after 30s", "⏱ 30s")
	line("/timer 0s")
	waitFor(t, tm, 5*time.Second, "error: a timer of 0s would never make a message disappear")
	line("/timer abc")
	waitFor(t, tm, 5*time.Second, "error: \"abc\" is not a timer: give a duration such as 30s, 5m, 1h or 1d")
	line("/timer 100d")
	waitFor(t, tm, 5*time.Second, "error: a timer of 100d is too long")
	line("still thirty")
	waitFor(t, tm, 10*time.Second, "still thirty", "✓ sent")
	line("/timer off")
	waitFor(t, tm, 5*time.Second, "timer off")
	line("no timer")
	waitFor(t, tm, 10*time.Second, "no timer")
	got := recvAll(t, bob, 2)
	if len(got) != 2 || got[0].Body != "still thirty" || got[0].Timer != 30*time.Second || got[1].Body != "no timer" || got[1].Timer != 0 {
		t.Fatalf("bob got %+v", got)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestSelectionFollowsConversation: after the list re-orders on a send,
// the highlight is on the open conversation, not on the row it was on.
func TestSelectionFollowsConversation(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := register(t, env, "alice")
	register(t, env, "bob")
	register(t, env, "carol")
	if _, err := alice.Send(ctx, "bob", "to bob", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "carol", "to carol", 0); err != nil { // carol is on top
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(120, 30))
	openSecret(t, tm, "to bob")
	tm.Type("bob moves up")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	// The list is read again with the sent state: then the order is bob,
	// carol.
	waitFor(t, tm, 10*time.Second, "bob moves up ✓ sent")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	// The highlight is reverse video: draw the last frame with colours.
	lipgloss.SetColorProfile(termenv.ANSI)
	lines := strings.Split(fm.View(), "\n")
	lipgloss.SetColorProfile(termenv.Ascii)
	rows := map[string]int{}
	highlighted := ""
	reverse := regexp.MustCompile(`\x1b\[[0-9;]*7[0-9;]*m`)
	for i, l := range lines[1:4] {
		for _, p := range []string{"bob", "carol"} {
			if strings.HasPrefix(ansi.Strip(l), "🔒 "+p+" ") {
				rows[p] = i
				if reverse.MatchString(l[:strings.Index(l, p)+len(p)]) {
					highlighted = p
				}
			}
		}
	}
	if rows["bob"] != 0 || rows["carol"] != 1 {
		t.Fatalf("the list is not bob, carol: %v\n%s", rows, fm.View())
	}
	if highlighted != "bob" {
		t.Fatalf("the highlight is on %q, not on bob, the open conversation:\n%q", highlighted, lines[1:4])
	}
}

// TestSeesOtherProcesses: a message sent into the same home by another
// process (hush send beside hush chat) shows without switching
// conversations.
func TestSeesOtherProcesses(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	home := filepath.Join(t.TempDir(), "alice")
	alice, err := client.Register(ctx, home, client.RegisterParams{Server: env.URL,
		Fingerprint: env.Fingerprint, Username: "alice", Password: "password-alice"}, client.Options{PreKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	bob := register(t, env, "bob")
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(120, 30))
	openSecret(t, tm, "SECRET CONVERSATION with bob")

	cli, err := client.Open(ctx, home, client.Options{PreKeys: 10}) // as hush send does
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Send(ctx, "bob", "sent from the command line", 0); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	waitFor(t, tm, 10*time.Second, "sent from the command line", "✓ sent")
	if got := recv(t, bob); len(got) != 1 || got[0] != "sent from the command line" {
		t.Fatalf("bob got %q", got)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestServerRestart: hushd stops under the UI and starts again. The
// message typed meanwhile is queued, then shown sent once the engine sent
// it on reconnecting; the connection warning goes away.
func TestServerRestart(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(120, 30))
	openSecret(t, tm, "SECRET CONVERSATION with bob")
	tm.Type("before")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "before ✓ sent")

	env.Stop()
	waitFor(t, tm, 10*time.Second, "connection lost")
	tm.Type("typed while hushd was down")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "typed while hushd was down …sending")
	env.Restart(t)
	waitFor(t, tm, 30*time.Second, "typed while hushd was down ✓ sent")
	if got := recv(t, bob); len(got) != 2 || got[1] != "typed while hushd was down" {
		t.Fatalf("bob got %q", got)
	}
	// Bob's reply comes over the new connection, after the engine said it
	// is connected.
	if _, err := bob.Send(ctx, "alice", "welcome back", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "welcome back")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	view := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model).View()
	if strings.Contains(view, "connection lost") || strings.Contains(view, "queued") || strings.Contains(view, "…sending") || !strings.Contains(view, "typed while hushd was down ✓") { // ✓ sent, or ✓✓ once bob's receipts came
		t.Fatalf("after the restart the screen shows:\n%s", view)
	}
	checkFrame(t, view, 120, 30, "bob")
}

// TestHostileText: a peer's escape sequences reach the screen inert, and a
// line break in their message cannot forge a line of the conversation.
func TestHostileText(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, mallory := register(t, env, "alice"), register(t, env, "mallory")
	hostile := "hi\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\r\u202eevil\n12:00 alice: I owe mallory 100"
	if _, err := mallory.Send(ctx, "alice", hostile, 0); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "mallory"), teatest.WithInitialTermSize(100, 20))
	openSecret(t, tm, "I owe mallory")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	view := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model).View()
	checkFrame(t, view, 100, 20, "mallory")
	for _, bad := range []string{"\x1b]", "\x1b[2J", "\a", "\r", "\u202e"} {
		if strings.Contains(view, bad) {
			t.Errorf("the screen holds %q:\n%q", bad, view)
		}
	}
	if !strings.Contains(view, "␛]0;pwned") {
		t.Errorf("the escape is not shown as text:\n%s", view)
	}
	for _, l := range strings.Split(view, "\n") {
		if _, right, ok := strings.Cut(l, "│ "); ok && strings.Contains(right, "I owe mallory") && !strings.HasPrefix(right, "  12:00 alice") {
			t.Errorf("the message's second line passes for a line of its own: %q", right)
		}
	}
}

// TestTypedWords: runes that arrive together (a fast typist, tmux
// send-keys, a paste without bracketed paste) are text even when they
// spell a key's name: "it is down" lost its "down" (taken for the down
// key).
func TestTypedWords(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := register(t, env, "alice")
	register(t, env, "bob")
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(100, 20))
	openSecret(t, tm, "SECRET CONVERSATION with bob")
	for _, w := range []string{"it is ", "down", " ", "up", " ", "end", " ", "home", " and ", "left"} {
		tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(w)})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "it is down up end home and left ✓ sent")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
