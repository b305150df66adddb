package loadtest

import (
	"context"
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
