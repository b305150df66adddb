package testutil

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start, calls := time.Now(), 0
		Eventually(t, time.Minute, func() error {
			if calls++; time.Since(start) < 5*time.Second {
				return errors.New("not yet")
			}
			return nil
		})
		if d := time.Since(start); d < 5*time.Second || d > 5*time.Second+100*time.Millisecond {
			t.Errorf("returned after %v, want soon after 5s", d)
		}
		if calls > 70 {
			t.Errorf("%d calls in 5s: it should look less often as time goes by", calls)
		}
	})
}

// fakeTB records a failure instead of failing.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventuallyTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTB{TB: t}
		start := time.Now()
		func() {
			defer func() {
				if r := recover(); r != f {
					panic(r)
				}
			}()
			Eventually(f, 3*time.Second, func() error { return errors.New("never") })
		}()
		if !strings.Contains(f.failed, "never") {
			t.Fatalf("Eventually failed with %q, want the condition's last error", f.failed)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("gave up after %v, want 3s", d)
		}
	})
}
