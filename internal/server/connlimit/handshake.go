package connlimit

import (
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// Handshakes bounds the TLS handshakes a listener computes at once, so
// that a surge of connections (the clients of a dead cluster node coming
// back at once: docs/performance.md, "Reconnect storm") is set up at the
// rate the processors allow, each handshake finished in milliseconds,
// instead of thousands of them sharing the processors, each taking longer
// than its deadline, and all that work thrown away.
//
// A connection takes a slot once its ClientHello is in: a connection
// that sends nothing, or part of a ClientHello, never holds one (the HTTP
// server's header deadline closes it). It gives the slot back as soon as
// the server's side of the handshake is computed and sent, when the
// handshake first waits for the client again, so that a slow or stalled
// client cannot hold a slot either. A connection that waited Wait for a
// slot is refused before any work is done on it; its client tries again
// later (the reconnection waits of internal/client, recv.go).
type Handshakes struct {
	// Slots is how many handshakes are computed at once; 0 means
	// 2 × GOMAXPROCS (at least 4).
	Slots int
	// Wait is the longest a connection waits for a slot; 0 means 5 s.
	// It should be shorter than the clients' handshake timeout (10 s in
	// internal/apiclient), lest the work be done for a client gone.
	Wait time.Duration
	// Timeout bounds the rest of the handshake, from the moment it takes
	// a slot; 0 means 10 s.
	Timeout time.Duration
}

// errBusy refuses a handshake that waited too long for a slot.
var errBusy = errors.New("connlimit: too many TLS handshakes at once")

// TLSListener is a crypto/tls listener that admits handshakes as
// Handshakes says. Accept returns *tls.Conn not yet handshaken, as
// tls.NewListener does; net/http completes the handshake.
type TLSListener struct {
	net.Listener
	cfg     *tls.Config
	next    func(*tls.ClientHelloInfo) (*tls.Config, error)
	slots   chan struct{}
	wait    time.Duration
	timeout time.Duration
	refused atomic.Int64
}

// NewTLSListener returns a listener of TLS connections on inner, with the
// configuration cfg (not changed; it is cloned) and the handshakes
// bounded by h.
func NewTLSListener(inner net.Listener, cfg *tls.Config, h Handshakes) *TLSListener {
	if h.Slots <= 0 {
		h.Slots = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if h.Wait <= 0 {
		h.Wait = 5 * time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = 10 * time.Second
	}
	l := &TLSListener{Listener: inner, cfg: cfg.Clone(), next: cfg.GetConfigForClient,
		slots: make(chan struct{}, h.Slots), wait: h.Wait, timeout: h.Timeout}
	l.cfg.GetConfigForClient = l.admit
	return l
}

// Accept returns the next connection, its handshake not yet begun.
func (l *TLSListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&handshakeConn{Conn: c, l: l}, l.cfg), nil
}

// Refused returns how many handshakes were refused for want of a slot.
func (l *TLSListener) Refused() int64 { return l.refused.Load() }

// admit is the configuration's GetConfigForClient: called when a
// ClientHello has been read, before any costly work, it waits for a slot.
func (l *TLSListener) admit(hi *tls.ClientHelloInfo) (*tls.Config, error) {
	if hc, ok := hi.Conn.(*handshakeConn); ok && hc.state.Load() == waiting {
		t := time.NewTimer(l.wait)
		select {
		case l.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			l.refused.Add(1)
			return nil, errBusy
		case <-hi.Context().Done():
			t.Stop()
			return nil, hi.Context().Err()
		}
		hc.state.Store(holding)
		// The handshake's deadline starts now, not at accept.
		hc.Conn.SetDeadline(time.Now().Add(l.timeout))
	}
	if l.next != nil {
		return l.next(hi)
	}
	return nil, nil
}

// A handshakeConn's slot: not yet taken, taken (and whether the server has
// written since), given back.
const (
	waiting int32 = iota
	holding
	wrote
	released
)

// handshakeConn is the connection under a tls.Conn: it gives its slot
// back at the first read after the server wrote (its flight is out, the
// computing done), or when closed.
type handshakeConn struct {
	net.Conn
	l     *TLSListener
	state atomic.Int32
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if c.state.Load() == wrote {
		c.release(wrote)
	}
	return c.Conn.Read(b)
}

func (c *handshakeConn) Write(b []byte) (int, error) {
	if c.state.Load() == holding {
		c.state.CompareAndSwap(holding, wrote)
	}
	return c.Conn.Write(b)
}

func (c *handshakeConn) Close() error {
	c.release(holding)
	c.release(wrote)
	return c.Conn.Close()
}

func (c *handshakeConn) release(from int32) {
	if c.state.CompareAndSwap(from, released) {
		<-c.l.slots
	}
}

// NetConn returns the connection under c (for ConnContext and netpark).
func (c *handshakeConn) NetConn() net.Conn { return c.Conn }
