package main

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hushmsg/hush/internal/termsafe"
)

// TestTerminalThroughTermsafe: main wraps standard output in termsafe's
// writer; on a terminal, hush chat must still see a terminal (it said
// "hush chat needs a terminal" on every terminal since the wrapping).
func TestTerminalThroughTermsafe(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR, 0)
	if err != nil {
		t.Skipf("open the pseudo-terminal: %v", err)
	}
	defer pts.Close()
	e := &env{stdin: pts, stdout: termsafe.NewWriter(pts)}
	if !e.terminal() {
		t.Fatal("a terminal behind termsafe's writer is not taken for a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if e := (&env{stdin: pts, stdout: termsafe.NewWriter(f)}); e.terminal() {
		t.Fatal("a file behind termsafe's writer is taken for a terminal")
	}
}
