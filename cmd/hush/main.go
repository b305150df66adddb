// Command hush is the hush client: secret conversations, end to end
// encrypted with the Signal Protocol on one device of each person, with
// messages that disappear when the sender says so.
//
// Usage:
//
//	hush [--home DIR] COMMAND [flags] [arguments]
//
// `hush help` lists the commands and `hush help COMMAND` describes one;
// docs/client.md is the full reference. Exit codes: 0 success, 1 failure,
// 2 a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hushmsg/hush/internal/buildinfo"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/termsafe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Everything hush prints goes through termsafe: its own output is plain
	// text, and what a peer or a server wrote must not act on the terminal.
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: termsafe.NewWriter(os.Stdout),
		stderr: termsafe.NewWriter(os.Stderr), getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	home string
	json bool
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	help    string // longer description
	hidden  bool
	// bind defines the command's flags on fs and returns the command,
	// bound to their values.
	bind func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its arguments (the flags parsed).
type runFunc func(ctx context.Context, e *env, args []string) error

// flagged binds a command's flags to the fields of a new F: def defines
// them, run receives their values.
func flagged[F any](def func(fs *flag.FlagSet, f *F), run func(ctx context.Context, e *env, f *F, args []string) error) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		f := new(F)
		def(fs, f)
		return func(ctx context.Context, e *env, args []string) error { return run(ctx, e, f, args) }
	}
}

// plain binds a command without flags of its own.
func plain(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// flagSet is the command's flag set, the global flags included, bound to
// e and returned with the command to run.
func (c *command) flagSet(e *env) (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet("hush "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.home, "home", e.home, "the `folder` this device's state is kept in")
	fs.BoolVar(&e.json, "json", e.json, "print data as JSON, one object per line")
	return fs, c.bind(fs)
}

var commands []*command

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func defaultHome(getenv func(string) string) string {
	if h := getenv("HUSH_HOME"); h != "" {
		return h
	}
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "hush")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "hush")
	}
	return "hush-home"
}

const globalUsage = `Usage: hush [--home DIR] [--json] COMMAND [flags] [arguments]

hush is a private messenger: secret conversations, end to end encrypted
(Signal Protocol with PQXDH and the triple ratchet) on one device of each
person, with messages that disappear when the sender says so.

Global flags (before or after the command):
  --home DIR   where this device's state is kept (env HUSH_HOME; default
               $XDG_DATA_HOME/hush or ~/.local/share/hush)
  --json       print data as JSON, one object per line
  --version    print hush's version and VCS revision

Commands:
`

func printUsage(w io.Writer) {
	fmt.Fprint(w, globalUsage)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, "\nRun 'hush help COMMAND' for a command's flags. Exit codes: 0 ok, 1 failure, 2 usage.\n")
}

func run(ctx context.Context, args []string, e *env) int {
	gfs := flag.NewFlagSet("hush", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	gfs.StringVar(&e.home, "home", defaultHome(e.getenv), "")
	gfs.BoolVar(&e.json, "json", false, "")
	help := gfs.Bool("help", false, "")
	gfs.BoolVar(help, "h", false, "")
	version := gfs.Bool("version", false, "")
	if err := gfs.Parse(args); err != nil {
		fmt.Fprintf(e.stderr, "hush: %v\n\n", err)
		printUsage(e.stderr)
		return 2
	}
	if *version {
		fmt.Fprintln(e.stdout, buildinfo.String("hush"))
		return 0
	}
	rest := gfs.Args()
	if *help || len(rest) == 0 {
		if len(rest) == 0 && !*help {
			printUsage(e.stderr)
			return 2
		}
		printUsage(e.stdout)
		return 0
	}
	cmd := lookup(rest[0])
	if cmd == nil {
		fmt.Fprintf(e.stderr, "hush: unknown command %q\n", rest[0])
		if s := suggest(rest[0]); s != "" {
			fmt.Fprintf(e.stderr, "Did you mean %q?\n", s)
		}
		fmt.Fprintln(e.stderr, "Run 'hush help' for the list of commands.")
		return 2
	}
	fs, runCmd := cmd.flagSet(e)
	pos, err := parseInterspersed(fs, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(e.stdout, cmd, fs)
		return 0
	}
	if err == nil {
		err = runCmd(ctx, e, pos)
	}
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) || isFlagError(err) {
		fmt.Fprintf(e.stderr, "hush %s: %v\n", cmd.name, err)
		commandUsage(e.stderr, cmd, fs)
		return 2
	}
	fmt.Fprintf(e.stderr, "hush: %v%s\n", err, hint(err))
	var cc *client.CertificateChangedError
	if errors.As(err, &cc) {
		fmt.Fprint(e.stderr, "Do not go on until you know why. If the server's operator replaced its certificate, "+
			"check the new fingerprint with them (hushd prints it) and run\n\n    hush server repin --server-fingerprint NEW-FINGERPRINT\n\n"+
			"Messages you send wait in this device's outbox until then.\n")
	}
	return 1
}

// flagErr marks errors of the flag package.
type flagErr struct{ error }

func isFlagError(err error) bool {
	var f flagErr
	return errors.As(err, &f)
}

// parseInterspersed parses flags anywhere among the arguments (hush
// history bob --json); everything after a "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flagErr{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: hush %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		l := "  --" + f.Name
		if name != "" {
			l += " " + name
		}
		l += "\n        " + usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			l += " (default " + f.DefValue + ")"
		}
		lines = append(lines, l)
	})
	sort.Strings(lines)
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(lines, "\n"))
	}
}

func suggest(s string) string {
	best, bestD := "", 3
	for _, c := range commands {
		if c.hidden {
			continue
		}
		if strings.HasPrefix(c.name, s) && len(s) >= 2 {
			return c.name
		}
		if d := levenshtein(s, c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
