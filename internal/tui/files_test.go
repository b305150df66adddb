package tui_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/tui"
)

// TestFiles: a file that arrives shows under its message with its size and
// where it was saved; /file sends one; /file of what is not a file says so.
func TestFiles(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	dir := t.TempDir()
	photo := filepath.Join(dir, "photo.jpg")
	if err := os.WriteFile(photo, bytes.Repeat([]byte("jpeg"), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendFiles(ctx, "alice", "look", 0, false, []string{photo}); err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, tui.New(ctx, alice, "bob"), teatest.WithInitialTermSize(160, 30))
	waitFor(t, tm, 15*time.Second, "look", "📎 photo.jpg (2.0 KiB)", "saved as")

	tm.Type("/file " + filepath.Join(dir, "missing.txt"))
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 5*time.Second, "missing.txt")

	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("minutes of the meeting"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm.Type("/file " + notes)
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, 15*time.Second, "📎 notes.txt (22 B)", "copy in")
	got := recvAll(t, bob, 1)
	if len(got) != 1 || len(got[0].Attachments) != 1 || got[0].Attachments[0].State != client.AttachSaved {
		t.Fatalf("bob got %v", got)
	}
	if b, err := os.ReadFile(got[0].Attachments[0].Path); err != nil || string(b) != "minutes of the meeting" {
		t.Fatalf("bob's file: %q, %v", b, err)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second))
}
