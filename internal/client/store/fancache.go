package store

import (
	"context"
	"sync"

	"github.com/hushmsg/hush/session"
)

// This file: the fan-out's session cache. Sending one ordinary message
// reads and writes the sessions of every device of two accounts
// (docs/multidevice.md section 1); reading them from SQLite, opening the
// sealed rows and parsing the records was a fifth of the CPU of a send
// (BenchmarkOrdinaryFanOut, docs/performance.md). The Store keeps the
// records of the last fan-outs decoded, and a fan-out takes them from
// there when nothing can have written an ordinary session since:
//
//   - in this process: every write to the ordinary sessions table goes
//     through Keys (StoreSession, StoreSessions, DeleteSession,
//     ArchiveAllSessions), which counts it in Store.oGen; a write by any
//     other path would have to do the same;
//   - in another process on the same home: SQLite's data_version, read
//     inside the write transaction (which holds the database's write lock,
//     so no other commit can come between the check and the use), changes
//     with every commit of another connection; it is per connection, so
//     the cache also remembers which connection it was read on.
//
// A fan-out takes the records out of the cache (they are the caller's to
// change: Cipher.Encrypt advances them in place) and they come back only
// when its transaction commits, so that a rolled back or failed
// transaction leaves nothing of its ratchet steps in memory: the next
// fan-out reads the committed records again. The cache only ever spares
// reads: every change is written and committed as before, before anything
// is sent.

// maxFanNames bounds the accounts whose sessions the cache keeps (each a
// few KB per device).
const maxFanNames = 32

// fanCache is the Store's cache of decoded ordinary sessions, complete per
// account name.
type fanCache struct {
	mu sync.Mutex
	// The cache is valid while these are those of the transaction that
	// looks: the connection, its data_version, and Store.oGen.
	conn  any
	dv    int64
	gen   uint64
	names map[string]map[session.Address]*session.Record
}

// fanTx is what a transaction took from the cache.
type fanTx struct {
	conn  any
	dv    int64
	gen   uint64 // Store.oGen when taken
	asked []string
	names map[string]map[session.Address]*session.Record // to keep once committed
}

// noteSessionWrite counts a write to the ordinary sessions table.
func (k *Keys) noteSessionWrite() {
	if k.tb == &spaceTables[OrdinarySpace] {
		k.q.s.oGen.Add(1)
	}
}

// FanOutSessions is LoadSessions for a fan-out: the ordinary sessions of
// every device of the names, from the Store's cache when no ordinary
// session can have changed since the last fan-out committed them, else
// read (one query). The records are the caller's to change; they return
// to the cache through StoreFanOut, once the transaction commits.
func (o *OrdinaryStore) FanOutSessions(ctx context.Context, names ...string) (map[session.Address]*session.Record, error) {
	t, s := o.tx, o.tx.s
	var dv int64
	if err := t.x.QueryRowContext(ctx, "PRAGMA data_version").Scan(&dv); err != nil {
		return nil, err
	}
	gen := s.oGen.Load()
	out := make(map[session.Address]*session.Record)
	var missing []string
	s.fan.mu.Lock()
	c := &s.fan
	if c.names != nil && (c.conn != t.conn || t.conn == nil || c.dv != dv || c.gen != gen) {
		c.names = nil
	}
	for _, n := range names {
		recs, ok := c.names[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		delete(c.names, n) // the caller's now
		for a, r := range recs {
			out[a] = r
		}
	}
	s.fan.mu.Unlock()
	if len(missing) > 0 {
		read, err := o.LoadSessions(ctx, missing...)
		if err != nil {
			return nil, err
		}
		for a, r := range read {
			out[a] = r
		}
	}
	t.fan = &fanTx{conn: t.conn, dv: dv, gen: gen, asked: names}
	return out, nil
}

// StoreFanOut writes the records of dirty (in one statement) and, once the
// transaction commits, keeps every record of all (what FanOutSessions
// returned, with the sessions started since) in the cache for the next
// fan-out (those of the names FanOutSessions was asked for: all of them,
// so all must hold every session of those names).
func (o *OrdinaryStore) StoreFanOut(ctx context.Context, all, dirty map[session.Address]*session.Record) error {
	if err := o.storeSessions(ctx, dirty); err != nil {
		return err
	}
	f := o.tx.fan
	if f == nil {
		return nil
	}
	f.names = make(map[string]map[session.Address]*session.Record, len(f.asked))
	for _, n := range f.asked {
		f.names[n] = make(map[session.Address]*session.Record)
	}
	for a, r := range all {
		if r != nil && f.names[a.Name] != nil {
			f.names[a.Name][a] = r
		}
	}
	return nil
}

// fanCommitted puts what a committed transaction wrote back in the cache,
// unless another ordinary session was written since it looked (by the
// transaction itself, or by another since it committed: the stamp is the
// transaction's own, so a later write makes it stale anyway). It is
// called before the transaction's connection goes back to the pool, so
// that no later fan-out can have committed newer records of the same
// accounts first.
func (s *Store) fanCommitted(f *fanTx) {
	if f == nil || f.names == nil {
		return
	}
	s.fan.mu.Lock()
	defer s.fan.mu.Unlock()
	c := &s.fan
	if s.oGen.Load() != f.gen {
		c.names = nil
		return
	}
	if c.names == nil || c.conn != f.conn || c.dv != f.dv || c.gen != f.gen || len(c.names)+len(f.names) > maxFanNames {
		c.names = make(map[string]map[session.Address]*session.Record)
	}
	c.conn, c.dv, c.gen = f.conn, f.dv, f.gen
	for n, recs := range f.names {
		c.names[n] = recs
	}
}
