// Package memtrim gives memory back to the operating system when the
// process goes quiet.
//
// Go's runtime returns freed heap memory to the system only down to the
// next collection's goal, which by default is twice the live heap. After a
// burst (thousands of clients reconnecting at once, each TLS handshake
// leaving tens of KiB of garbage) a server that then sits with its idle
// connections keeps about twice the memory they need for as long as it
// stays quiet. Run watches for that: when little was allocated during the
// last period and much more heap is held than the last collection found
// live, it runs a collection and returns the free memory
// (debug.FreeOSMemory). A busy process never
// trims (its heap is in use); a quiet one trims once per burst.
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// checks and trims count what Run did in this process (Counts).
var checks, trims atomic.Uint64

// Counts returns how many checks Run has made in this process, and how
// many of them trimmed. A check is counted once its trim, if any, is
// done: whoever sees the count grow by two after a burst knows that a
// period wholly after it was looked at (hush-load idle waits for that).
func Counts() (checked, trimmed uint64) { return checks.Load(), trims.Load() }

// Sample is what the decision looks at.
type Sample struct {
	Allocated uint64 // bytes allocated since the process started
	Objects   uint64 // heap bytes in objects, live or not yet collected
	Free      uint64 // heap bytes free and not yet returned to the system
	Live      uint64 // heap bytes found live by the last collection
}

// Reclaimable is the heap memory a collection and a scavenge would give
// back, at most.
func (s Sample) Reclaimable() uint64 {
	if s.Objects+s.Free < s.Live {
		return 0
	}
	return s.Objects + s.Free - s.Live
}

// Thresholds of ShouldTrim.
const (
	// QuietBytes: allocating less than this, or less than an eighth of the
	// live heap, in a period is quiet. (A large server with many idle
	// clients allocates a little all the time, for their pings.)
	QuietBytes = 4 << 20
	// MinReclaim: less than this is not worth a collection.
	MinReclaim = 16 << 20
)

// ShouldTrim reports whether to trim now, given the samples taken at the
// start and the end of a period: the period was quiet, and what could be
// reclaimed is at least MinReclaim and a quarter of the live heap. So a
// process that keeps allocating slowly collects at most once per quarter
// of its live heap allocated.
func ShouldTrim(prev, cur Sample) bool {
	quiet := cur.Allocated-prev.Allocated < max(QuietBytes, cur.Live/8)
	r := cur.Reclaimable()
	return quiet && r >= MinReclaim && r >= cur.Live/4
}

var names = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/free:bytes", "/gc/heap/live:bytes"}

// Read samples the runtime's metrics.
func Read() Sample {
	m := make([]metrics.Sample, len(names))
	for i, n := range names {
		m[i].Name = n
	}
	metrics.Read(m)
	return Sample{Allocated: m[0].Value.Uint64(), Objects: m[1].Value.Uint64(), Free: m[2].Value.Uint64(), Live: m[3].Value.Uint64()}
}

// Run checks every period until ctx ends.
func Run(ctx context.Context, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	prev := Read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := Read()
		if ShouldTrim(prev, cur) {
			start := time.Now()
			debug.FreeOSMemory()
			cur = Read()
			log.Debug("returned free memory to the system", "took", time.Since(start), "live_bytes", cur.Live)
			trims.Add(1)
		}
		checks.Add(1)
		prev = cur
	}
}
