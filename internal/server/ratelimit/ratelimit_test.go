package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Limit{Rate: 2, Burst: 3}, func() time.Time { return now })
	for i := range 3 {
		if !l.Allow("a", 1) {
			t.Fatalf("token %d refused within the burst", i)
		}
	}
	if l.Allow("a", 1) {
		t.Fatal("allowed past the burst")
	}
	if !l.Allow("b", 3) {
		t.Fatal("keys share a bucket")
	}
	if l.Allow("b", 1) {
		t.Fatal("b allowed past its burst")
	}
	now = now.Add(500 * time.Millisecond) // one token back
	if !l.Allow("a", 1) || l.Allow("a", 1) {
		t.Fatal("refill is not Rate tokens per second")
	}
	if l.Allow("c", 4) {
		t.Fatal("allowed more than the burst at once")
	}
	now = now.Add(time.Hour)
	l.Allow("d", 1)
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets kept after an hour, want 1", n)
	}
	var unlimited *Limiter
	if !unlimited.Allow("x", 1e9) || !New(Limit{}, nil).Allow("x", 1e9) {
		t.Fatal("a zero limit refused")
	}
}
