//go:build unix

package connlimit

import "golang.org/x/sys/unix"

// ForDescriptors returns Limits for a server whose connections may use
// what the process's open-file limit (RLIMIT_NOFILE) allows, less
// DefaultReserve connections for health and metrics and some headroom for
// the server's own files (database, logs, listeners).
func ForDescriptors(perAddr int) Limits {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return Limits{PerAddr: perAddr}
	}
	return limitsFor(int(min(rl.Cur, 1<<30)), perAddr)
}
