package loadtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/loadtest"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestFanout runs the fan-out workload on a small group through a real
// server: every round reaches every member, of both kinds.
func TestFanout(t *testing.T) {
	env := servertest.Start(t, server.Config{Limits: servertest.NoLimits})
	h := &loadtest.Hushd{URL: env.URL, Fingerprint: env.Fingerprint}
	var cpu time.Duration
	r, err := h.Fanout(t.Context(), loadtest.FanoutWorkload{Members: 5, Rounds: 2, Size: 40, Window: 2,
		CPU: func() time.Duration { cpu += time.Millisecond; return cpu }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rounds) != 4 {
		t.Fatalf("%d rounds, want 4", len(r.Rounds))
	}
	for i, rd := range r.Rounds {
		want := []string{loadtest.KindGroup, loadtest.KindOneToOne}[i%2]
		if rd.Kind != want || len(rd.Deliveries) != 5 || rd.Last <= 0 || rd.CPU != time.Millisecond {
			t.Fatalf("round %d: %+v", i, rd)
		}
		for _, d := range rd.Deliveries {
			if d <= 0 || d > rd.Last {
				t.Fatalf("round %d: delivery at %v, last %v", i, d, rd.Last)
			}
		}
	}
	for _, kind := range []string{loadtest.KindGroup, loadtest.KindOneToOne} {
		if s := r.Stats(kind); s.Rounds != 2 || s.PerSecond <= 0 || s.LastP99 < s.LastP50 || s.CPUPerDelivery != time.Millisecond/5 {
			t.Fatalf("%s: %+v", kind, s)
		}
	}
	if b := r.Benchstat(); strings.Count(b, "BenchmarkFanout/kind=group/members=5\t1\t") != 2 || strings.Count(b, "\n") != 4 {
		t.Fatalf("benchmark lines:\n%s", b)
	}
	if s := r.String(); !strings.Contains(s, "group / one-to-one") {
		t.Fatalf("report:\n%s", s)
	}
}
