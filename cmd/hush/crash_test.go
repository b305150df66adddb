package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
)

var crashSeed = flag.Uint64("crash.seed", 0, "TestCrash's seed (0: a new one)")

// TestCrash kills the receiving client with SIGKILL at random moments
// while messages stream in. After restarts every message is in bob's
// conversation exactly once and in order, every message was printed by
// recv, and the session still works both ways. A message may be printed a
// second time only right after a kill that struck between printing it and
// recording that it was shown (recv prints at least once; the id says it
// is the same message): see checkPrinted.
func TestCrash(t *testing.T) {
	t.Parallel()
	n, minKills := 60, 12
	if testing.Short() {
		n, minKills = 25, 6
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-crash.seed repeats the kills' timing)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)

	ctx := t.Context()
	ac, err := client.Open(ctx, alice.dir, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, n)
	sendErr := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(seed, 2))
		for i := range n {
			want[i] = fmt.Sprintf("message %03d", i)
			if _, err := ac.Send(ctx, "bob", want[i], 0); err != nil {
				sendErr <- err
				return
			}
			time.Sleep(time.Duration(r.IntN(30)) * time.Millisecond)
		}
		sendErr <- nil
	}()

	// Bob's recv --follow, killed and started again until alice is done.
	var runs [][]string
	sending, kills := true, 0
	for sending || kills < minKills {
		select {
		case err := <-sendErr:
			if err != nil {
				t.Fatalf("alice's send: %v", err)
			}
			sending = false
		default:
		}
		cmd := hushCmd(bob.dir, "recv", "--follow", "--json")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Half the runs are killed at a random moment, the others as soon
		// as they have printed their first, second or third line: often
		// between printing it and recording that it was shown, the one
		// moment a kill may make recv print a line again.
		wait, killAt := time.Duration(20+rng.IntN(400))*time.Millisecond, 0
		if rng.IntN(2) == 0 {
			wait, killAt = 2*time.Second, 1+rng.IntN(3)
		}
		got, printed := make(chan []string), make(chan struct{})
		go func() {
			var ls []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if ls = append(ls, sc.Text()); len(ls) == killAt {
					cmd.Process.Signal(syscall.SIGKILL)
					close(printed)
				}
			}
			got <- ls
		}()
		select {
		case <-time.After(wait):
		case <-printed:
		}
		cmd.Process.Signal(syscall.SIGKILL)
		runs = append(runs, <-got)
		cmd.Wait()
		kills++
	}
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	// Whatever is left, without kills.
	for range 10 {
		runs = append(runs, strings.Split(strings.TrimSpace(bob.must("recv", "--wait", "2s", "--json")), "\n"))
		if h := texts(lines(t, bob.must("history", "--json", "alice"))); len(h) >= n {
			break
		}
	}

	// Printed: each at least once; twice only just after a kill.
	seen, dups, errs := checkPrinted(t, runs)
	for _, e := range errs {
		t.Error(e)
	}
	for _, w := range want {
		if seen[w] == 0 {
			t.Errorf("%q was never printed", w)
		}
	}
	// Stored: exactly once each, in order.
	if h := texts(lines(t, bob.must("history", "--json", "alice"))); !equal(h, want) {
		t.Fatalf("bob's conversation after %d kills:\n%q\nwant\n%q", kills, h, want)
	}
	silent := 0
	for _, ls := range runs[:kills] {
		if len(ls) == 0 {
			silent++
		}
	}
	t.Logf("%d messages, %d kills (%d of runs that printed nothing), %d printed again after a kill", n, kills, silent, dups)

	// The session works both ways.
	bob.must("send", "--secret", "--to", "alice", "still here")
	if got := texts(lines(t, alice.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"still here"}) {
		t.Fatalf("alice got %q", got)
	}
	alice.must("send", "--secret", "--to", "bob", "good")
	if got := texts(lines(t, bob.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"good"}) {
		t.Fatalf("bob got %q", got)
	}
}

// checkPrinted judges what the runs of recv printed, in order. Each line
// is a message or notice printed for the first time, or printed again
// where a kill struck between printing it and recording that it was shown:
// then it is the first line of its run and the same (same id) as the last
// line printed before it. The run before may have printed nothing: a run
// killed before it printed anything (still starting, or reading the
// backlog) changes nothing, so the repeat comes in the next run that
// prints. It returns how often each text was printed, how many lines
// repeat, and what is wrong.
func checkPrinted(t testing.TB, runs [][]string) (seen map[string]int, dups int, errs []string) {
	seen = make(map[string]int)
	var last map[string]any // the last line printed, by any run
	for r, ls := range runs {
		first := true
		for i, l := range ls {
			if l == "" {
				continue
			}
			m := lines(t, l)[0]
			text := m["text"].(string)
			if seen[text] > 0 {
				if !first || last == nil || last["id"] != m["id"] {
					errs = append(errs, fmt.Sprintf("%q printed again in run %d, line %d, not right after a kill", text, r, i))
				}
				dups++
			}
			seen[text]++
			first, last = false, m
		}
	}
	return seen, dups, errs
}

// TestCheckPrinted checks TestCrash's judge of recv's output on made-up
// runs: the repeats a kill explains pass, the others are reported.
func TestCheckPrinted(t *testing.T) {
	t.Parallel()
	l := func(id int) string {
		return fmt.Sprintf(`{"id":"id-%03d","kind":"message","text":"message %03d"}`, id, id)
	}
	for _, tc := range []struct {
		name string
		runs [][]string
		bad  int // how many repeats should be reported
	}{
		{"once each", [][]string{{l(0), l(1)}, {l(2)}, {""}, {l(3)}}, 0},
		{"again right after a kill", [][]string{{l(0), l(1)}, {l(1), l(2)}}, 0},
		{"again after a run killed while starting", [][]string{{l(0), l(1)}, {}, {l(1), l(2)}}, 0},
		{"again after runs that printed nothing", [][]string{{l(0), l(1)}, {}, {""}, {}, {l(1), l(2)}}, 0},
		{"again, twice, each right after a kill", [][]string{{l(0), l(1)}, {l(1)}, {}, {l(1), l(2)}}, 0},
		{"again, not first in its run", [][]string{{l(0), l(1)}, {l(2), l(1)}}, 1},
		{"again, not the last printed", [][]string{{l(0), l(1)}, {l(0), l(2)}}, 1},
		{"again, not the last printed, after an empty run", [][]string{{l(0), l(1)}, {}, {l(0), l(2)}}, 1},
		{"again, two runs later", [][]string{{l(0), l(1)}, {l(2)}, {l(1), l(3)}}, 1},
		{"again within one run", [][]string{{l(0), l(1), l(0)}}, 1},
		{"again, same text, other id", [][]string{{l(0), l(1)}, {strings.Replace(l(1), "id-001", "id-999", 1)}}, 1},
	} {
		_, _, errs := checkPrinted(t, tc.runs)
		if len(errs) != tc.bad {
			t.Errorf("%s: %d reported, want %d: %q", tc.name, len(errs), tc.bad, errs)
		}
	}
}

// stopWriter stands for a terminal whose person stops hush (Ctrl-C) as
// the first line appears: it cancels the command's context after its
// first write.
type stopWriter struct {
	strings.Builder
	stop context.CancelFunc
}

func (w *stopWriter) Write(p []byte) (int, error) {
	defer w.stop()
	return w.Builder.Write(p)
}

// TestRecvStoppedShowsOnce stops recv (its context ends, as on Ctrl-C or
// SIGTERM) as it prints the first of three messages stored but not yet
// shown: whatever it printed is recorded as shown, so the next recv prints
// the rest and nothing twice.
func TestRecvStoppedShowsOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	want := []string{"one", "two", "three"}
	for _, m := range want {
		alice.must("send", "--secret", "--to", "bob", m)
	}
	// Stored, none shown yet: as after a kill between storing and printing.
	bc, err := client.Open(t.Context(), bob.dir, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Receive(t.Context(), client.ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopped := &stopWriter{stop: cancel}
	var errs strings.Builder
	run(ctx, []string{"--home", bob.dir, "recv", "--json"}, &env{stdin: strings.NewReader(""), stdout: stopped, stderr: &errs, getenv: func(string) string { return "" }})
	first := texts(lines(t, stopped.String()))
	if len(first) == 0 {
		t.Fatalf("the stopped recv printed nothing; stderr: %s", errs.String())
	}
	rest := texts(lines(t, bob.must("recv", "--json")))
	if got := append(first, rest...); !equal(got, want) {
		t.Fatalf("the stopped recv printed %q, the next %q; want %q once each", first, rest, want)
	}
}

// TestSendKilled kills `hush send` of ordinary messages with SIGKILL: right
// after the message and its ratchet steps are stored and before the
// request leaves (HUSH_TRACE's ordinary-stored), right after the server
// answered and before the acceptance is recorded (server-answered), or at
// a random moment. Every message the sender stored reaches the recipient
// exactly once and in order (a queued one is encrypted again by the next
// send, and a copy the recipient already has is dropped by its id), none
// is left pending, nothing reaches the recipient that the sender did not
// store, and the sessions still work both ways.
func TestSendKilled(t *testing.T) {
	t.Parallel()
	n := 16
	if testing.Short() {
		n = 8
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-crash.seed repeats the kills' choices)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	bob.must("recv") // bob's ordinary keys
	alice.must("send", "--to", "bob", "first")

	killedAt := map[string]int{}
	for i := range n {
		text := fmt.Sprintf("message %03d", i)
		cmd := hushCmd(alice.dir, "send", "--to", "bob", text)
		cmd.Env = append(cmd.Env, "HUSH_TRACE=1")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		at := []string{"ordinary-stored", "ordinary-stored", "server-answered", ""}[rng.IntN(4)]
		wait := time.Duration(rng.IntN(300)) * time.Millisecond
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if at != "" && strings.HasSuffix(sc.Text(), " "+at) {
					cmd.Process.Signal(syscall.SIGKILL)
					killed <- at
					return
				}
			}
			killed <- ""
		}()
		if at == "" {
			select {
			case <-time.After(wait):
				cmd.Process.Signal(syscall.SIGKILL)
			case <-killed:
				killed <- ""
			}
		}
		if k := <-killed; k != "" {
			killedAt[k]++
		}
		cmd.Wait()
	}
	t.Logf("killed at %v (the others at a random moment or not at all)", killedAt)
	if killedAt["ordinary-stored"] == 0 {
		t.Fatalf("no send was killed between storing and sending (the trace event is gone?)")
	}
	// The next send sends what is queued first, then its own.
	alice.must("send", "--to", "bob", "last")

	stored := texts(lines(t, alice.must("history", "--json", "bob")))
	for _, m := range lines(t, alice.must("history", "--json", "bob")) {
		if m["state"] != "sent" {
			t.Errorf("left %v: %v", m["state"], m)
		}
	}
	var got []string
	for range 10 {
		got = append(got, texts(lines(t, bob.must("recv", "--wait", "2s", "--json")))...)
		if len(got) > 0 && got[len(got)-1] == "last" {
			break
		}
	}
	if h := texts(lines(t, bob.must("history", "--json", "alice"))); !equal(h, stored) || !equal(got, stored) {
		t.Fatalf("alice stored %q\nbob received %q\nbob's history %q", stored, got, h)
	}
	// A send killed at ordinary-stored may have been sending a queued
	// message (its own not stored yet): those are the ones missing.
	t.Logf("alice stored and bob got %d of %d messages: %q", len(stored), n+2, stored)
	if len(stored) < 3 || stored[0] != "first" || stored[len(stored)-1] != "last" {
		t.Fatalf("alice stored %q", stored)
	}
	bob.must("send", "--to", "alice", "still here")
	if got := texts(lines(t, alice.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"still here"}) {
		t.Fatalf("alice got %q", got)
	}
	alice.must("send", "--to", "bob", "good")
	if got := texts(lines(t, bob.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"good"}) {
		t.Fatalf("bob got %q", got)
	}
}
