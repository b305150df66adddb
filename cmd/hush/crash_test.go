package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
)

// TestCrash kills the receiving client with SIGKILL at random moments
// while messages stream in. After restarts every message is in bob's
// conversation exactly once and in order, every message was printed by
// recv, and the session still works both ways. A message may be printed a
// second time only right after a kill that struck between printing it and
// recording that it was shown (recv prints at least once; the id says it
// is the same message).
func TestCrash(t *testing.T) {
	t.Parallel()
	n, minKills := 60, 12
	if testing.Short() {
		n, minKills = 25, 6
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)

	ctx := context.Background()
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
		got := make(chan []string)
		go func() {
			var ls []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				ls = append(ls, sc.Text())
			}
			got <- ls
		}()
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
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
	seen := make(map[string]int)
	dups := 0
	for r, ls := range runs {
		for i, l := range ls {
			if l == "" {
				continue
			}
			m := lines(t, l)[0]
			text := m["text"].(string)
			if seen[text] > 0 {
				prev := runs[r-1]
				if i != 0 || r == 0 || len(prev) == 0 || !strings.Contains(prev[len(prev)-1], `"`+text+`"`) {
					t.Errorf("%q printed again in run %d, line %d, not right after a kill", text, r, i)
				}
				dups++
			}
			seen[text]++
		}
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
	t.Logf("%d messages, %d kills, %d printed again after a kill", n, kills, dups)

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
