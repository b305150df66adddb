package netpark

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// waitReadable waits (up to 10 s) until c has bytes to read, without
// reading them.
func waitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = rc.Control(func(fd uintptr) {
		for {
			n, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10_000)
			if err != unix.EINTR {
				return
			}
		}
	})
	if err != nil || n != 1 {
		t.Fatalf("not readable after 10 s (%d, %v)", n, err)
	}
}
