//go:build !linux

package client

import "os"

// writeback is the file itself where the disk's writeback cannot be
// started early (writeback_linux.go).
type writeback struct{ *os.File }

func newWriteback(f *os.File) writeback { return writeback{f} }
