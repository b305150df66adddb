package tui_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/testutil"
	"github.com/hushmsg/hush/internal/tui"
)

func register(t *testing.T, env *servertest.Env, name string) *client.Client {
	ctx := t.Context()
	t.Helper()
	c, err := client.Register(ctx, filepath.Join(t.TempDir(), name), client.RegisterParams{Server: env.URL,
		Fingerprint: env.Fingerprint, Username: name, Password: "password-" + name}, client.Options{PreKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor reads the screen output until it has shown every want.
func waitFor(t *testing.T, tm *teatest.TestModel, d time.Duration, want ...string) {
	t.Helper()
	var seen []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, _ := tm.Output().Read(buf)
		seen = append(seen, buf[:n]...)
		ok := true
		for _, w := range want {
			if !bytes.Contains(seen, []byte(w)) {
				ok = false
			}
		}
		if ok {
			return
		}
		if n == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("the screen never showed %q; it showed:\n%s", want, seen)
}

// waitForAny reads the screen output until it has shown one of want.
func waitForAny(t *testing.T, tm *teatest.TestModel, d time.Duration, want ...string) {
	t.Helper()
	var seen []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, _ := tm.Output().Read(buf)
		seen = append(seen, buf[:n]...)
		for _, w := range want {
			if bytes.Contains(seen, []byte(w)) {
				return
			}
		}
		if n == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("the screen never showed any of %q; it showed:\n%s", want, seen)
}

// recv is bob's side: what arrives within a few seconds.
func recv(t *testing.T, c *client.Client) []string {
	ctx := t.Context()
	t.Helper()
	var got []string
	err := c.Receive(ctx, client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
		if m.Kind == store.KindText {
			got = append(got, m.Body)
		}
		c.MarkShown(ctx, m.ID)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestChat drives the UI as a person would: it types a message, sees the
// reply arrive while typing another, sees timed messages count down and
// vanish (theirs and its own), and sees a key-change notice.
func TestChat(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")

	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(140, 30))
	openSecret(t, tm, "SECRET CONVERSATION with bob", "end-to-end encrypted")

	tm.Type("hello from the terminal")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "hello from the terminal", "✓ sent")
	if got := recv(t, bob); len(got) != 1 || got[0] != "hello from the terminal" {
		t.Fatalf("bob got %q", got)
	}

	// A reply arrives while a line is half typed.
	tm.Type("half typed")
	if _, err := bob.Send(ctx, "alice", "reply from bob", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "reply from bob")
	tm.Type(" line")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "half typed line", "✓ sent")
	if got := recv(t, bob); len(got) != 1 || got[0] != "half typed line" {
		t.Fatalf("bob got %q", got)
	}

	// Timed messages, theirs and ours, count down and vanish.
	if _, err := bob.Send(ctx, "alice", "vanishing words", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "vanishing words", "⏱ ")
	tm.Type("/timer 5s")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 5*time.Second, "disappear after 5s")
	tm.Type("my own short one")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 10*time.Second, "my own short one")
	waitForAny(t, tm, 10*time.Second, "⏱ 4s", "⏱ 3s", "⏱ 2s", "⏱ 1s") // counting down
	waitFor(t, tm, 15*time.Second, "disappeared")
	testutil.Eventually(t, 15*time.Second, func() error { // both are past their time
		h, err := alice.History(ctx, "bob", 0)
		if err != nil {
			return err
		}
		for _, m := range h {
			if m.Body == "vanishing words" || m.Body == "my own short one" {
				return fmt.Errorf("%q is still in alice's store", m.Body)
			}
		}
		return nil
	})

	// Bob starts over with a new identity: the conversation says so.
	if err := bob.MakeSecret(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "new key, same bob", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tm, 10*time.Second, "safety number changed", "new key, same bob")

	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	view := fm.View()
	for _, gone := range []string{"vanishing words", "my own short one"} {
		if strings.Contains(view, gone) {
			t.Errorf("%q is still on the screen:\n%s", gone, view)
		}
	}
	for _, kept := range []string{"hello from the terminal", "reply from bob", "new key, same bob"} {
		if !strings.Contains(view, kept) {
			t.Errorf("%q is not on the screen:\n%s", kept, view)
		}
	}
	h, err := alice.History(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		if m.Body == "vanishing words" || m.Body == "my own short one" {
			t.Errorf("%q is still stored", m.Body)
		}
	}
}

// recvAll receives until n messages came (or a few seconds passed).
func recvAll(t *testing.T, c *client.Client, n int) []*store.Message {
	ctx := t.Context()
	t.Helper()
	var got []*store.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		err := c.Receive(ctx, client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
			if m.Kind == store.KindText {
				got = append(got, m)
			}
			c.MarkShown(ctx, m.ID)
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}
