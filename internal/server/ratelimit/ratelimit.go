// Package ratelimit is a keyed token-bucket limiter: one bucket per key
// (an IP address, a device, a requester and target pair), created on first
// use and forgotten once it has been full for a while, so that memory stays
// bounded by the number of recently active keys.
package ratelimit

import (
	"sync"
	"time"
)

// Limit is a bucket's shape: it holds at most Burst tokens and gains Rate
// tokens per second. A zero Rate means no limit.
type Limit struct {
	Rate  float64
	Burst float64
}

// Limiter hands out tokens per key. Its zero value is not usable; call New.
type Limiter struct {
	limit Limit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter with the given limit; now may be nil (time.Now).
func New(l Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: l, now: now, buckets: make(map[string]*bucket)}
}

// Allow takes n tokens from key's bucket and reports whether there were
// enough. When there were not, nothing is taken.
func (l *Limiter) Allow(key string, n float64) bool {
	if l == nil || l.limit.Rate <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		l.forget(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.limit.Burst, last: now}
		l.buckets[key] = b
	} else {
		b.tokens = min(l.limit.Burst, b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// forget drops buckets that have refilled completely: they behave exactly
// like new ones.
func (l *Limiter) forget(now time.Time) {
	l.sweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate >= l.limit.Burst {
			delete(l.buckets, k)
		}
	}
}

// Len returns how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
