package client

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/testutil"
)

// A flood of asks while a run is under way costs one more run, not one
// goroutine or one run per ask, and a forced ask is not lost in it.
func TestKeyKeeperCoalesces(t *testing.T) {
	var runs, running, most atomic.Int32
	var forced atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	ask := keyKeeper(t.Context(), func(force bool) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		if force {
			forced.Add(1)
		}
		started <- struct{}{}
		<-release
		return nil
	}, func(error) {})

	ask(false)
	<-started // the first run holds
	for i := range 1000 {
		ask(i == 500)
	}
	close(release)
	testutil.Eventually(t, 10*time.Second, func() error {
		if runs.Load() < 2 || running.Load() != 0 {
			return fmt.Errorf("%d runs, %d running", runs.Load(), running.Load())
		}
		return nil
	})
	if r := runs.Load(); r != 2 {
		t.Fatalf("%d runs for 1001 asks during one run; want 2", r)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d runs at once; want 1", m)
	}
	if f := forced.Load(); f != 1 {
		t.Fatalf("%d forced runs; want 1 (the forced ask was coalesced into the second run)", f)
	}
	// Later asks run again.
	ask(true)
	testutil.Eventually(t, 10*time.Second, func() error {
		if runs.Load() != 3 {
			return fmt.Errorf("%d runs", runs.Load())
		}
		return nil
	})
}

// Reconnect waits are spread over the backoff, not all the same: a
// node's clients do not all come back in the same second.
func TestReconnectJitter(t *testing.T) {
	seen := make(map[time.Duration]bool)
	for range 200 {
		w := reconnectWait(firstBackoff)
		if w < minWait || w >= minWait+firstBackoff {
			t.Fatalf("wait %v outside [%v, %v)", w, minWait, minWait+firstBackoff)
		}
		seen[w.Truncate(time.Second)] = true
	}
	if len(seen) < int(firstBackoff/time.Second) {
		t.Fatalf("200 waits fell in only %d of the %d seconds of the backoff", len(seen), firstBackoff/time.Second)
	}
}
