// Package connlimit caps a listener's connections: per client address, so
// that one host cannot take every file descriptor with idle connections,
// and in all, keeping a reserve of connections that serve only the health
// and metrics endpoints, so that those answer when the server is full.
//
// A client address is an IPv4 address (/32) or an IPv6 /64, the block one
// host usually holds.
package connlimit

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/hushmsg/hush/internal/api"
)

// Limits configures a Listener. Zero means no limit.
type Limits struct {
	PerAddr int // connections per client address
	Total   int // connections in all, beyond which only Reserve more are taken
	// Reserve connections beyond Total are taken, to be served only the
	// paths Guard allows (health and metrics).
	Reserve int
}

// Listener applies Limits to the connections of the listener it wraps: a
// connection over a limit is closed at once, before any byte is read.
type Listener struct {
	net.Listener
	lim Limits

	mu       sync.Mutex
	byAddr   map[netip.Prefix]int
	total    int
	reserved int
}

// Wrap returns ln with lim applied. Wrap the TCP listener, under TLS.
func Wrap(ln net.Listener, lim Limits) *Listener {
	return &Listener{Listener: ln, lim: lim, byAddr: make(map[netip.Prefix]int)}
}

// Key is the client address a connection from addr counts against: the
// IPv4 address, or the IPv6 /64. ok is false for an address that is not
// IP (a Unix socket), which is not limited per address.
func Key(addr net.Addr) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	a := ap.Addr().Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p, true
}

// Accept returns the next connection within the limits; those over a
// limit are closed and not returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, ok := l.admit(c); ok {
			return lc, nil
		}
		c.Close()
	}
}

func (l *Listener) admit(c net.Conn) (*Conn, bool) {
	key, keyed := Key(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if keyed && l.lim.PerAddr > 0 && l.byAddr[key] >= l.lim.PerAddr {
		return nil, false
	}
	reserved := l.lim.Total > 0 && l.total >= l.lim.Total
	if reserved && l.reserved >= l.lim.Reserve {
		return nil, false
	}
	if keyed {
		l.byAddr[key]++
	}
	l.total++
	if reserved {
		l.reserved++
	}
	return &Conn{Conn: c, l: l, key: key, keyed: keyed, Reserved: reserved}, true
}

func (l *Listener) release(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.keyed {
		if l.byAddr[c.key]--; l.byAddr[c.key] <= 0 {
			delete(l.byAddr, c.key)
		}
	}
	l.total--
	if c.Reserved {
		l.reserved--
	}
}

// Count returns the open connections from key's address and in all.
func (l *Listener) Count(key netip.Prefix) (fromAddr, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byAddr[key], l.total
}

// Conn is an accepted connection; it counts until closed.
type Conn struct {
	net.Conn
	l        *Listener
	key      netip.Prefix
	keyed    bool
	once     sync.Once
	Reserved bool // taken from the reserve: serve only what Guard allows
}

// NetConn returns the connection under c, for packages that look through
// wrappers (netpark parks the socket beneath).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and gives its place back.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

type reservedKey struct{}

// ConnContext is for http.Server.ConnContext: it marks the requests of a
// connection taken from the reserve (looking through crypto/tls.Conn).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for {
		if lc, ok := c.(*Conn); ok {
			if lc.Reserved {
				ctx = context.WithValue(ctx, reservedKey{}, true)
			}
			return ctx
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return ctx
		}
		c = w.NetConn()
	}
}

// Guard serves requests on connections taken from the reserve only if
// their path is one of paths, and closes those connections after the
// answer; other requests there get 503 unavailable.
func Guard(next http.Handler, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(reservedKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		for _, p := range paths {
			if r.URL.Path == p {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(api.Error{Err: api.ErrorBody{Code: api.CodeUnavailable, Message: "the server is at its connection limit"}})
	})
}

// DefaultReserve is how many connections beyond Total ForDescriptors
// keeps for health and metrics requests.
const DefaultReserve = 32

// headroom is the descriptors ForDescriptors leaves for the server's own
// files.
const headroom = 64

func limitsFor(nofile, perAddr int) Limits {
	total := nofile - DefaultReserve - headroom
	if total < nofile/2 {
		total = nofile / 2
	}
	return Limits{PerAddr: perAddr, Total: total, Reserve: DefaultReserve}
}
