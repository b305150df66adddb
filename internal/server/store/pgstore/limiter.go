package pgstore

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hushmsg/hush/internal/server/ratelimit"
)

// Limiter is a token-bucket limiter whose buckets are rows of
// rate_buckets, shared by every node: a person spreading requests over
// the nodes of a cluster gets the limit once, not once per node. It has
// the semantics of ratelimit.Limiter.
//
// Each take is one statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE
// enough tokens), atomic under the row lock, on the synchronous_commit=off
// pool: a bucket lost in a database crash only refills early. So that
// busy limits (messages and bytes per device) do not cost a statement per
// message, a node takes tokens in chunks of a tenth of the burst and hands
// them out locally; the tokens are taken from the shared bucket all the
// same, so all nodes together never exceed it. A chunk taken and not used
// is spent (at most a tenth of the burst per node).
//
// When the database cannot be reached Allow refuses (fails closed).
type Limiter struct {
	s     *Store
	name  string
	limit ratelimit.Limit
	chunk float64
	now   func() time.Time

	mu    sync.Mutex
	lease map[string]float64 // tokens taken from the bucket, not handed out yet
}

// Limiter returns the shared limiter called name (one per kind of limit)
// with the given shape; now may be nil (time.Now).
func (s *Store) Limiter(name string, l ratelimit.Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{s: s, name: name, limit: l, chunk: math.Floor(l.Burst / 10), now: now, lease: make(map[string]float64)}
}

// Allow takes n tokens from key's bucket and reports whether there were
// enough. When there were not, nothing is taken.
func (l *Limiter) Allow(key string, n float64) bool {
	if l == nil || l.limit.Rate <= 0 {
		return true
	}
	l.mu.Lock()
	if have := l.lease[key]; have >= n {
		l.lease[key] = have - n
		l.mu.Unlock()
		return true
	}
	l.mu.Unlock()
	if l.chunk > n {
		if l.take(key, l.chunk) {
			l.mu.Lock()
			if len(l.lease) > 100000 {
				clear(l.lease)
			}
			l.lease[key] += l.chunk - n
			l.mu.Unlock()
			return true
		}
	}
	return l.take(key, n)
}

// take takes n tokens from the shared bucket, or nothing.
func (l *Limiter) take(key string, n float64) bool {
	if l.s.isClosed() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := l.now().UnixMilli()
	rate, burst := l.limit.Rate, l.limit.Burst
	var left float64
	err := l.s.lazy.QueryRow(ctx, `
		WITH p AS (SELECT $1::text AS name, $2::text AS key, $3::float8 AS burst, $4::float8 AS n,
			$5::bigint AS now, $6::float8 AS rate)
		INSERT INTO rate_buckets AS b (name, key, tokens, at, full_at)
		SELECT p.name, p.key, p.burst - p.n, p.now, p.now + ceil(p.n / p.rate * 1000)::bigint FROM p WHERE p.burst >= p.n
		ON CONFLICT (name, key) DO UPDATE SET
			tokens = least($3::float8, b.tokens + ($5::bigint - b.at) * $6::float8 / 1000) - $4::float8,
			at = $5::bigint,
			full_at = $5::bigint + ceil(($3::float8 - least($3::float8, b.tokens + ($5::bigint - b.at) * $6::float8 / 1000)
				+ $4::float8) / $6::float8 * 1000)::bigint
		WHERE least($3::float8, b.tokens + ($5::bigint - b.at) * $6::float8 / 1000) >= $4::float8
		RETURNING tokens`, l.name, key, burst, n, now, rate).Scan(&left)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		l.s.log("rate limiter", err)
	}
	return err == nil
}

// deleteFullBuckets drops buckets that are full again: a missing bucket
// is a full one.
func (s *Store) deleteFullBuckets(ctx context.Context, now int64) error {
	_, err := s.lazy.Exec(ctx, `DELETE FROM rate_buckets WHERE full_at < $1`, now)
	return err
}
