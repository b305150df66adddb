package loadtest

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data durable without its timestamps (what SQLite
// does on Linux).
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
