package main

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.Local)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(30 * time.Second), "10:00:30"},
		{time.Date(2026, 12, 2, 23, 59, 59, 0, time.Local), "23:59:59"},
		{now.Add(24 * time.Hour), "2026-12-03 10:00:00"},
		{time.Date(2026, 12, 3, 0, 0, 1, 0, time.Local), "2026-12-03 00:00:01"},
		{now.Add(-24 * time.Hour), "2026-12-01 10:00:00"},
	} {
		if got := clock(c.t, now); got != c.want {
			t.Errorf("clock(%v) = %q, want %q", c.t, got, c.want)
		}
	}
}
