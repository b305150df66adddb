// Package netpark lets a server keep an idle connection without a goroutine.
//
// A Go server usually gives each connection a goroutine blocked in Read.
// With many idle connections those goroutines' stacks are most of the
// server's memory (4 KiB each when the read goes through crypto/tls). A
// connection can instead be parked: Park registers its socket with an
// epoll instance of this package and the caller's goroutine returns; when
// the socket becomes readable, fails, or is hung up, the resume function
// runs on a new goroutine, which reads as usual. This is the technique of
// the "million WebSockets" Go servers (an epoll set beside the runtime's
// own poller), limited to the one thing hushd needs: waiting to read.
//
// Park cannot see data already read into user space (a TLS record
// decrypted but not consumed, for one): the caller must first make sure
// that nothing is buffered. Closing a parked connection does not resume
// it (the kernel drops a closed socket from the epoll set silently): the
// caller must call Wake after closing, or close through its resumed
// goroutine.
//
// Parking is available on Linux; elsewhere Park returns ErrUnsupported and
// the caller keeps its goroutine.
package netpark

import (
	"errors"
	"net"
	"syscall"
)

// ErrUnsupported is returned by Park where connections cannot be parked:
// on systems other than Linux, and for connections without a socket (such
// as net.Pipe).
var ErrUnsupported = errors.New("netpark: connection cannot be parked")

// Ticket identifies a parked connection, for Wake. The zero Ticket is
// never issued.
type Ticket uint64

// rawConn returns the socket under c (a syscall.RawConn, as package net
// exposes it), looking through wrappers that expose the connection they
// wrap (crypto/tls.Conn's NetConn).
func rawConn(c net.Conn) (syscall.RawConn, error) {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, ErrUnsupported
		}
		c = w.NetConn()
	}
}
