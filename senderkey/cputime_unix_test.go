//go:build unix

package senderkey

import (
	"syscall"
	"testing"
)

// cpuTime reports, beside the wall time, the process's CPU time per
// operation (user and system, from getrusage), which a machine shared with
// other work disturbs less than the wall time. Call it before the loop and
// the returned function after it.
func cpuTime(b *testing.B) func() {
	var start syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &start); err != nil {
		return func() {}
	}
	return func() {
		var end syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &end); err != nil || b.N == 0 {
			return
		}
		ns := func(r *syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
		b.ReportMetric(float64(ns(&end)-ns(&start))/float64(b.N), "cpu-ns/op")
	}
}
