package loadtest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, max := percentiles(d)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond || max != 100*time.Millisecond {
		t.Fatalf("p50 %v p99 %v max %v", p50, p99, max)
	}
	if a, b, c := percentiles(nil); a != 0 || b != 0 || c != 0 {
		t.Fatal("percentiles of nothing")
	}
}

// loopback is an in-memory System: a send is acknowledged and delivered
// at once.
type loopback struct {
	mu   sync.Mutex
	sent int
}

func (l *loopback) Name() string                           { return "loopback" }
func (l *loopback) Setup(ctx context.Context, n int) error { return nil }
func (l *loopback) Close() error                           { return nil }
func (l *loopback) Open(ctx context.Context, i int, onSent func(), onRecv func([]byte)) (func([]byte) error, error) {
	return func(b []byte) error {
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		go func() { onSent(); onRecv(b) }()
		return nil
	}, nil
}

func TestRun(t *testing.T) {
	sys := &loopback{}
	r, err := Run(t.Context(), sys, Workload{Pairs: 3, Messages: 300, Size: 64, Window: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 300 || r.Sent != 300 || sys.sent != 300 || r.PerSecond <= 0 || r.Max < r.P99 || r.P99 < r.P50 {
		t.Fatalf("result %+v, %d sent", r, sys.sent)
	}
}

func TestMetricValue(t *testing.T) {
	text := "# HELP hushd_memtrim_checks_total Checks.\n# TYPE hushd_memtrim_checks_total counter\n" +
		"hushd_memtrim_checks_total 7\nhushd_memtrim_checks_total_other 9\nhushd_x{a=\"b\"} 3\nhushd_y 2.5 1700000000000\n"
	for name, want := range map[string]float64{"hushd_memtrim_checks_total": 7, "hushd_y": 2.5} {
		if v, ok := metricValue(text, name); !ok || v != want {
			t.Errorf("%s: %v %v, want %v", name, v, ok, want)
		}
	}
	for _, name := range []string{"hushd_memtrim", "hushd_x", "# HELP", "nothing"} {
		if v, ok := metricValue(text, name); ok {
			t.Errorf("%s: found %v", name, v)
		}
	}
}

func FuzzMetricValue(f *testing.F) {
	f.Add("hushd_a 1\n", "hushd_a")
	f.Add("hushd_a{x=\"1\"} 2\nhushd_a 3 17\n", "hushd_a")
	f.Add("hushd_a \n", "hushd_a")
	f.Add("hushd_a NaN", "hushd_a")
	f.Fuzz(func(t *testing.T, text, name string) {
		v, ok := metricValue(text, name)
		if !ok && v != 0 {
			t.Fatalf("not found, yet %v", v)
		}
		if ok && !strings.Contains(text, name+" ") {
			t.Fatalf("found %v for %q in a text without it", v, name)
		}
	})
}

func TestTimeline(t *testing.T) {
	const start = int64(1e12)
	at := func(ms int64) int64 { return start + ms*1e6 }
	p := &pairState{
		recvAt:  []int64{at(5), at(150), at(120), at(199), at(-1), at(350)},
		recvLat: []time.Duration{1, 20, 10, 30, 2, 40},
	}
	got := timeline([]*pairState{p}, start, 100*time.Millisecond)
	want := []Period{
		{Start: 0, Messages: 2, P50: 1, P99: 2, Max: 2},
		{Start: 100 * time.Millisecond, Messages: 3, P50: 20, P99: 30, Max: 30},
		{Start: 200 * time.Millisecond},
		{Start: 300 * time.Millisecond, Messages: 1, P50: 40, P99: 40, Max: 40},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("period %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	r, err := Run(t.Context(), &loopback{}, Workload{Pairs: 2, Rate: 200, Duration: 300 * time.Millisecond, Size: 64, Window: 4, Timeline: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range r.Timeline {
		n += p.Messages
	}
	if n != int(r.Received) || n == 0 {
		t.Fatalf("timeline counts %d messages, %d received", n, r.Received)
	}
}

func TestSteady(t *testing.T) {
	const start = int64(1e12)
	p := &pairState{recvAt: []int64{start, start + 5e8, start + 1e9, start + 2e9}, recvLat: []time.Duration{100, 1, 2, 3}}
	got := steady([]*pairState{p}, start+1e9)
	if want := (Period{Messages: 2, P50: 2, P99: 3, Max: 3}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
