//go:build !linux

package netpark

import (
	"net"
	"testing"
)

func waitReadable(t *testing.T, _ net.Conn) { t.Skip("parking needs epoll (Linux)") }
