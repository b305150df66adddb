package server

import "testing"

// TestCacheBound: the cache never holds more than its bound, and a fill
// whose ticket predates a forget of its key is dropped.
func TestCacheBound(t *testing.T) {
	c := newCache[int, int](10)
	for i := range 1000 {
		c.fill(i, c.ticket(i), i)
		if n := c.len(); n > 10 {
			t.Fatalf("%d entries after %d fills, bound 10", n, i+1)
		}
	}
	tk := c.ticket(5000)
	c.forget(5000)
	c.fill(5000, tk, 1)
	if _, ok := c.get(5000); ok {
		t.Fatal("a fill that raced with forget was kept")
	}
	c.fill(5000, c.ticket(5000), 2)
	if v, ok := c.get(5000); !ok || v != 2 {
		t.Fatalf("get = %v, %v after a clean fill", v, ok)
	}
}
