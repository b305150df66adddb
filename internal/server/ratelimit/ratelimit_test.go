package ratelimit

import (
	"fmt"
	"strings"
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

// TestBounded reproduces finding 4 of issue 14 at the limiter: 200 keys of
// 1 MB each were held as they came (64 KiB here). Keys are bounded in number and size,
// and a flood of new keys does not evict a key that is being limited.
func TestBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Limit{Rate: 1.0 / 60, Burst: 2}, func() time.Time { return now }).WithMaxKeys(100)
	l.Allow("victim", 2) // spent: the victim is being limited
	big := strings.Repeat("x", 64<<10)
	var bytes int
	for i := range 1000 {
		l.Allow(fmt.Sprint(i, big), 1)
	}
	for k := range l.buckets {
		bytes += len(k)
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d keys held, want at most 100", n)
	}
	if bytes > 100*maxKeyLen {
		t.Fatalf("keys hold %d bytes", bytes)
	}
	if l.Allow("victim", 1) {
		t.Fatal("a flood of new keys reset a limited key")
	}
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got, ok := AddrKey(c.in); !ok || got != c.want {
			t.Errorf("AddrKey(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	if _, ok := AddrKey("not an address"); ok {
		t.Error("AddrKey accepted a non-address")
	}
}
