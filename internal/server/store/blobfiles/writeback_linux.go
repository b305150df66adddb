package blobfiles

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts the disk's writeback of n bytes of file at off
// without waiting for it (sync_file_range), so that the disk writes a
// chunk while the rest of it is still arriving and the fsync that ends
// the chunk has little left to do. A hint: an error changes nothing (the
// fsync decides).
func startWriteback(file *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(file.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
