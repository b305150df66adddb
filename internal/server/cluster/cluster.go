// Package cluster links the hushd nodes that share one PostgreSQL store,
// over core NATS (nats.go): it implements server.Cluster.
//
// Presence is NATS interest: a node holding a device's WebSocket
// subscribes to PREFIX.wake.ACCOUNT.DEVICE, and drops the subscription when
// the socket goes. A node that commits messages publishes one wake-up per
// recipient device on that subject, and NATS carries it only to the node
// (or nodes) subscribed. Presence expires by itself: a node that dies
// loses its NATS connection and with it its subscriptions; a stale or
// duplicate wake-up costs the woken session one read of its mailbox.
//
// Nothing depends on NATS for durability: a wake-up carries no message,
// only "read your mailbox". PostgreSQL holds every message until it is
// acknowledged, and the server's slow poll finds what a lost wake-up did
// not announce. When the NATS connection drops or comes back, the node
// resyncs: it forgets its caches (invalidations may have been missed) and
// wakes every local session.
//
// Cache invalidations (a credential changed, a device removed, a block)
// are broadcast on PREFIX.forget to every node.
package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/store"
)

// Cluster is a node's link to the others. Connect makes one.
type Cluster struct {
	nc     *nats.Conn
	prefix string
	id     string // this node, to skip its own broadcasts
	log    *slog.Logger
	closed chan struct{}

	mu   sync.Mutex
	node server.Node
	subs map[store.DeviceRef]*nats.Subscription
	fsub *nats.Subscription
}

var _ server.Cluster = (*Cluster)(nil)

// Options tune Connect.
type Options struct {
	// Prefix starts every subject; default "hush". Clusters sharing one
	// NATS need different prefixes.
	Prefix string
	Logger *slog.Logger
}

// Connect connects to the NATS servers at url (comma-separated). It does
// not fail when NATS is down: it keeps trying in the background, and the
// node serves meanwhile (delivery across nodes falls back to polling).
func Connect(url string, o Options) (*Cluster, error) {
	if o.Prefix == "" {
		o.Prefix = "hush"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if strings.ContainsAny(o.Prefix, " *>\t\r\n") {
		return nil, fmt.Errorf("cluster: bad subject prefix %q", o.Prefix)
	}
	c := &Cluster{prefix: o.Prefix, id: nats.NewInbox(), log: o.Logger, closed: make(chan struct{}),
		subs: make(map[store.DeviceRef]*nats.Subscription)}
	nc, err := nats.Connect(url,
		nats.Name("hushd"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn("nats disconnected; delivery across nodes falls back to polling", "err", err)
			c.resync()
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		nats.ReconnectHandler(func(*nats.Conn) {
			c.log.Info("nats reconnected")
			c.resync()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.nc = nc
	return c, nil
}

// Connected reports whether the NATS connection is up.
func (c *Cluster) Connected() bool { return c.nc.IsConnected() }

func (c *Cluster) resync() {
	c.mu.Lock()
	n := c.node
	c.mu.Unlock()
	if n != nil {
		n.Resync()
	}
}

// Attach implements server.Cluster.
func (c *Cluster) Attach(n server.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node = n
	sub, err := c.nc.Subscribe(c.prefix+".forget", func(m *nats.Msg) {
		var f forgetMsg
		if json.Unmarshal(m.Data, &f) != nil || f.Node == c.id {
			return
		}
		n.Forget(f.Forget)
	})
	if err != nil {
		c.log.Error("nats subscribe", "err", err)
		return
	}
	c.fsub = sub
}

func (c *Cluster) subject(ref store.DeviceRef) string {
	return c.prefix + ".wake." + strconv.FormatInt(ref.Account, 10) + "." + strconv.FormatUint(uint64(ref.Device), 10)
}

// Present implements server.Cluster: wake-ups for ref come here.
func (c *Cluster) Present(ref store.DeviceRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[ref] != nil || c.node == nil {
		return
	}
	n := c.node
	sub, err := c.nc.Subscribe(c.subject(ref), func(*nats.Msg) { n.Wake(ref) })
	if err != nil {
		c.log.Error("nats subscribe", "err", err)
		return
	}
	c.subs[ref] = sub
	// Make sure NATS has the interest before the session first reads its
	// mailbox, so that no commit falls between the read and the interest.
	_ = c.nc.FlushTimeout(time.Second)
}

// Absent implements server.Cluster.
func (c *Cluster) Absent(ref store.DeviceRef) {
	c.mu.Lock()
	sub := c.subs[ref]
	delete(c.subs, ref)
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// Wake implements server.Cluster. Publishing does not wait: while NATS is
// away the wake-ups wait in nats.go's reconnect buffer, or are dropped
// when it is full (the poll covers them).
func (c *Cluster) Wake(refs []store.DeviceRef) {
	for _, ref := range refs {
		_ = c.nc.Publish(c.subject(ref), nil)
	}
}

type forgetMsg struct {
	Node   string        `json:"node"`
	Forget server.Forget `json:"forget"`
}

// Forget implements server.Cluster.
func (c *Cluster) Forget(f server.Forget) {
	b, err := json.Marshal(forgetMsg{Node: c.id, Forget: f})
	if err == nil {
		_ = c.nc.Publish(c.prefix+".forget", b)
	}
}

// Close drops presence and disconnects, after sending what is buffered.
func (c *Cluster) Close() {
	if c.nc.Drain() == nil {
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
		}
	}
	c.nc.Close()
}
