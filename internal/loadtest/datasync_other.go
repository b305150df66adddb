//go:build !linux

package loadtest

import "os"

func datasync(f *os.File) error { return f.Sync() }
