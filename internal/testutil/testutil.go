// Package testutil holds what tests of several packages share: waiting
// for a condition by polling it with a deadline, instead of sleeping a
// fixed time and hoping (a busy machine makes every fixed wait too short
// some day).
package testutil

import (
	"testing"
	"time"
)

// Eventually calls cond until it returns nil, and fails the test with
// cond's last error if that has not happened within timeout. It looks
// again soon at first, then less often (up to every 100 ms).
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		select {
		case <-time.After(min(wait, time.Until(deadline))):
		case <-t.Context().Done():
			t.Fatalf("the test ended while waiting: %v", err)
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
