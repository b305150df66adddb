//go:build !linux

package netpark

import "net"

// Park returns ErrUnsupported: parking needs epoll.
func Park(c net.Conn, resume func()) (Ticket, error) { return 0, ErrUnsupported }

// Wake reports false: nothing is ever parked here.
func Wake(t Ticket) bool { return false }

// Parked returns 0.
func Parked() int { return 0 }
