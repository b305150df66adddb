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
