package client

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackEvery is how many bytes written to a file that will be synced
// start their write to the disk at once (sync_file_range, not waiting):
// the disk works while the rest is downloaded or read, and the fsync at
// the end has little left to do.
const writebackEvery = 8 << 20

// writeback writes to a file, starting the disk's writeback of every
// writebackEvery bytes as they are written.
type writeback struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose writeback was started
}

func newWriteback(f *os.File) *writeback { return &writeback{f: f} }

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackEvery {
		// A hint: an error here changes nothing (the fsync decides).
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}
