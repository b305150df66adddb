package memtrim

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/testutil"
)

func TestShouldTrim(t *testing.T) {
	const mib = 1 << 20
	base := Sample{Allocated: 1000 * mib, Objects: 100 * mib, Free: 10 * mib, Live: 40 * mib}
	for _, tc := range []struct {
		name string
		cur  Sample
		want bool
	}{
		{"quiet, much to reclaim", base, true},
		{"busy", Sample{Allocated: base.Allocated + 50*mib, Objects: 100 * mib, Free: 10 * mib, Live: 40 * mib}, false},
		{"slow allocation beside a large live heap", Sample{Allocated: base.Allocated + 50*mib, Objects: 1000 * mib, Free: 10 * mib, Live: 800 * mib}, true},
		{"fast allocation beside a large live heap", Sample{Allocated: base.Allocated + 200*mib, Objects: 1000 * mib, Free: 10 * mib, Live: 800 * mib}, false},
		{"quiet, little to reclaim", Sample{Allocated: base.Allocated, Objects: 45 * mib, Free: 1 * mib, Live: 40 * mib}, false},
		{"quiet, reclaim small beside the live heap", Sample{Allocated: base.Allocated, Objects: 1000 * mib, Free: 20 * mib, Live: 1000 * mib}, false},
		{"live above objects (just collected)", Sample{Allocated: base.Allocated, Objects: 30 * mib, Live: 40 * mib}, false},
	} {
		if got := ShouldTrim(base, tc.cur); got != tc.want {
			t.Errorf("%s: ShouldTrim = %v, want %v (reclaimable %d MiB)", tc.name, got, tc.want, tc.cur.Reclaimable()/mib)
		}
	}
}

var sink [][]byte

// TestRunTrims: garbage left by a burst is collected and returned once
// the process is quiet, which the runtime alone would not do while
// nothing allocates.
func TestRunTrims(t *testing.T) {
	// A burst: 64 MiB allocated and dropped, no collection meanwhile (as
	// when the heap goal is high), none after (nothing allocates).
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for range 64 << 10 {
		sink = append(sink, make([]byte, 1024))
	}
	sink = nil
	debug.SetGCPercent(100)
	if r := Read().Reclaimable(); r < MinReclaim {
		t.Fatalf("reclaimable after the burst: %d bytes, want at least %d", r, MinReclaim)
	}
	checks0, trims0 := Counts()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go Run(ctx, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	deadline := time.Now().Add(10 * time.Second)
	for Read().Reclaimable() >= MinReclaim {
		if time.Now().After(deadline) {
			t.Fatalf("not trimmed: %+v", Read())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The trim is counted (hushd_memtrim_trims_total), and so is its
	// check, once the trim is done.
	testutil.Eventually(t, 10*time.Second, func() error {
		if checks, trims := Counts(); checks <= checks0 || trims <= trims0 {
			return fmt.Errorf("counted %d checks and %d trims", checks-checks0, trims-trims0)
		}
		return nil
	})
}
