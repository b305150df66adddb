package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompletionNeverPrompts: tab completion on a home protected by a
// passphrase runs 'hush list --names' with the terminal as its standard
// input; it must come back at once with no names (it used to wait for a
// passphrase on a prompt nobody sees), and list them when HUSH_PASSPHRASE
// is set. The completion function runs in bash under script(1), which
// gives it a terminal.
func TestCompletionNeverPrompts(t *testing.T) {
	t.Parallel()
	needTerminal(t)
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	alice.must("send", "--secret", "--to", "bob", "hi")
	cmd := hushCmd(alice.dir, "passphrase", "set")
	cmd.Env = append(cmd.Env, "HUSH_NEW_PASSPHRASE=correct horse battery")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("passphrase set: %v\n%s", err, out)
	}
	dir := t.TempDir()
	comp := filepath.Join(dir, "hush.bash")
	if err := os.WriteFile(comp, []byte(alice.must("completion", "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	inTerminal := func(script string, env ...string) string {
		t.Helper()
		return inTerminal(t, dir, "", script, env...)
	}
	complete := func(passphrase string, words ...string) string {
		t.Helper()
		// The home comes from --home on the line being completed.
		out := inTerminal("source "+comp+"\nCOMP_WORDS=("+strings.Join(words, " ")+" '')\nCOMP_CWORD="+
			strconv.Itoa(len(words))+"\n_hush\necho \"REPLY:${COMPREPLY[*]}:END\"\n",
			"HUSH_HOME="+filepath.Join(dir, "not-this-one"), "HUSH_PASSPHRASE="+passphrase)
		i := strings.Index(out, "REPLY:")
		if i < 0 {
			t.Fatalf("completion of %q printed:\n%s", words, out)
		}
		if strings.Contains(out[:i], "assphrase") {
			t.Fatalf("completion of %q asked for a passphrase:\n%s", words, out)
		}
		reply, _, _ := strings.Cut(out[i+len("REPLY:"):], ":END")
		return reply
	}
	// A completion script of an older hush reads the names with the
	// terminal as standard input: list --names must not ask either.
	if out := inTerminal("hush --home " + alice.dir + " list --names; echo \"EXIT:$?\"\n"); !strings.Contains(out, "EXIT:1") ||
		!strings.Contains(out, "set HUSH_PASSPHRASE (list --names never asks)") || strings.Contains(out, "bob") {
		t.Fatalf("list --names on a terminal, without the passphrase:\n%s", out)
	}
	// Without the passphrase: the command's flags, no names.
	if got := complete("", "hush", "--home", alice.dir, "history"); strings.Contains(got, "bob") || !strings.Contains(got, "--limit") {
		t.Fatalf("completion of history without the passphrase: %q", got)
	}
	if got := complete("", "hush", "--home", alice.dir, "send", "--to"); got != "" {
		t.Fatalf("names completed without the passphrase: %q", got)
	}
	if got := complete("correct horse battery", "hush", "--home", alice.dir, "history"); !strings.Contains(got, "bob") {
		t.Fatalf("completion of history with HUSH_PASSPHRASE: %q, want bob among them", got)
	}
	if got := complete("correct horse battery", "hush", "--home", alice.dir, "send", "--to"); got != "bob" {
		t.Fatalf("completion after --to with HUSH_PASSPHRASE: %q, want bob", got)
	}
}

// needTerminal skips the test unless script(1) and bash are there to give
// a command a terminal.
func needTerminal(t *testing.T) {
	t.Helper()
	for _, p := range []string{"script", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (script(1) from util-linux gives a command a terminal)", p)
		}
	}
}

// inTerminal runs a bash script with a terminal (from script(1)) as its
// standard input and output, typing input on it, and returns what it
// printed.
func inTerminal(t *testing.T, dir, input, script string, env ...string) string {
	t.Helper()
	sh := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(sh, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "script", "-qec", "bash "+sh, "/dev/null")
	c.Env = append(os.Environ(), env...)
	c.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s hung (killed after %v); output:\n%s", script, time.Since(start).Round(time.Second), out.String())
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	return out.String()
}
