// Package ratelimit is a keyed token-bucket limiter: one bucket per key
// (an IP address, a device, a requester and target pair), created on first
// use and forgotten once it has been full for a while. Memory is bounded
// whatever the callers send: a limiter holds at most MaxKeys buckets, and a
// key longer than maxKeyLen is kept as its SHA-256.
package ratelimit

import (
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"
)

// MaxKeys is how many buckets a limiter holds at most (about 100 bytes
// each). When it is full, a new key evicts the fullest of a few sampled
// buckets: keys that are being limited have few tokens and stay.
const MaxKeys = 1 << 17

// maxKeyLen bounds the memory of one key.
const maxKeyLen = 64

// evictSample is how many buckets are looked at to choose one to evict.
const evictSample = 8

// AddrKey is the key of a client address for per-address limits: an IPv4
// address as itself (/32), an IPv6 address as its /64 prefix, which is
// what one customer or one machine usually gets, so that a client cannot
// get fresh buckets by walking its own prefix. ok is false when addr is not
// an IP address.
func AddrKey(addr string) (key string, ok bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "", false
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String(), true
	}
	p, _ := ip.Prefix(64)
	return p.String(), true
}

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
	max     int
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
	return &Limiter{limit: l, now: now, buckets: make(map[string]*bucket), max: MaxKeys}
}

// WithMaxKeys sets how many buckets l holds at most (for tests); it
// returns l.
func (l *Limiter) WithMaxKeys(n int) *Limiter {
	l.max = n
	return l
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
	if len(key) > maxKeyLen {
		h := sha256.Sum256([]byte(key))
		key = string(h[:])
	}
	if now.Sub(l.sweep) > time.Minute {
		l.forget(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
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

// evict drops the bucket with the most tokens among a few: Go's map
// iteration starts at a random place.
func (l *Limiter) evict(now time.Time) {
	var victim string
	most, n := -1.0, 0
	for k, b := range l.buckets {
		if t := b.tokens + now.Sub(b.last).Seconds()*l.limit.Rate; t > most {
			victim, most = k, t
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(l.buckets, victim)
}

// Len returns how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
