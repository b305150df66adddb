package server

import (
	"hash/maphash"
	"sync"
)

// cache is a bounded map in front of the store for the hot paths
// (credentials, usernames, blocks). Only this process writes the store, so
// an entry stays right until a write of its key calls forget.
//
// A fill races with forget: a request reads the store, a writer changes the
// row and forgets the key, and the request then fills the cache with what
// it read before the change, which would stay until restart. So a fill
// carries the generation of its key taken before the read (ticket), and
// fill stores it only if no forget of that key came in between.
// Generations are kept per stripe of keys, so that they take fixed memory;
// a forget of another key in the same stripe only costs a skipped fill.
type cache[K comparable, V any] struct {
	mu   sync.RWMutex
	m    map[K]V
	max  int
	seed maphash.Seed
	gen  [256]uint64 // per stripe, under mu
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{m: make(map[K]V), max: max, seed: maphash.MakeSeed()}
}

func (c *cache[K, V]) stripe(k K) int { return int(maphash.Comparable(c.seed, k) % uint64(len(c.gen))) }

func (c *cache[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// ticket returns k's generation; take it before reading the store.
func (c *cache[K, V]) ticket(k K) uint64 {
	c.mu.RLock()
	g := c.gen[c.stripe(k)]
	c.mu.RUnlock()
	return g
}

// fill stores v for k unless k was forgotten since ticket returned t. At
// the bound it evicts an arbitrary entry.
func (c *cache[K, V]) fill(k K, t uint64, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[c.stripe(k)] != t {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// forget drops k; call it after the store write that changes k commits.
func (c *cache[K, V]) forget(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.gen[c.stripe(k)]++
	c.mu.Unlock()
}

// forgetAll drops every entry and cancels every fill in flight.
func (c *cache[K, V]) forgetAll() {
	c.mu.Lock()
	clear(c.m)
	for i := range c.gen {
		c.gen[i]++
	}
	c.mu.Unlock()
}

func (c *cache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
