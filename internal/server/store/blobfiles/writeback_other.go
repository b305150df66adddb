//go:build !linux

package blobfiles

import "os"

// startWriteback does nothing where the writeback cannot be started
// early (writeback_linux.go): the chunk's fsync writes it all.
func startWriteback(*os.File, int64, int64) {}
