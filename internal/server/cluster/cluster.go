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
// Nothing depends on NATS for durability: a wake-up says "read your
// mailbox", and may carry the messages just committed (as PostgreSQL holds
// them, with store.Message.Prev), which the session takes instead of
// reading when nothing can be missing before them. PostgreSQL holds every
// message until it is acknowledged, and the server's slow poll finds what
// a lost wake-up did not announce. When the NATS connection drops or comes
// back, the node resyncs: it forgets its caches (invalidations may have
// been missed) and wakes every local session.
//
// Cache invalidations (a credential changed, a device removed, a block)
// are broadcast on PREFIX.forget to every node.
package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	sub, err := c.nc.Subscribe(c.subject(ref), func(m *nats.Msg) {
		msgs, err := decodeMessages(ref, m.Data)
		if err != nil {
			c.log.Warn("nats: a wake-up carrying messages that do not decode; reading the mailbox", "err", err)
			msgs = nil
		}
		n.Wake(ref, msgs)
	})
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

// Wake implements server.Cluster. A wake-up carries the device's
// messages of msgs when they all have Prev and come to at most
// maxCarried bytes; otherwise it is empty, and the session reads its
// mailbox. Publishing does not wait: while NATS is away the wake-ups wait
// in nats.go's reconnect buffer, or are dropped when it is full (the poll
// covers them).
func (c *Cluster) Wake(refs []store.DeviceRef, msgs []*store.Message) {
	var by map[store.DeviceRef][]*store.Message
	if len(refs) > 1 {
		by = make(map[store.DeviceRef][]*store.Message, len(refs))
		for _, m := range msgs {
			by[m.To] = append(by[m.To], m)
		}
	}
	for _, ref := range refs {
		mine := msgs
		if by != nil {
			mine = by[ref]
		}
		_ = c.nc.Publish(c.subject(ref), encodeMessages(ref, mine))
	}
}

// maxCarried bounds the messages one wake-up carries, in bytes.
const maxCarried = 64 << 10

// encodeMessages encodes ref's messages of msgs for a wake-up (nil when
// it should carry none): per message its id, Prev, public id, sender,
// type, times, content and franking, as varints and length-prefixed
// bytes.
func encodeMessages(ref store.DeviceRef, msgs []*store.Message) []byte {
	var b []byte
	for _, m := range msgs {
		if m.To != ref {
			continue
		}
		if !m.HasPrev || len(b)+len(m.Content) > maxCarried {
			return nil
		}
		b = binary.AppendVarint(b, m.ID)
		b = binary.AppendVarint(b, m.Prev)
		b = binary.AppendVarint(b, m.PublicID)
		b = binary.AppendVarint(b, m.From.Account)
		b = binary.AppendUvarint(b, uint64(m.From.Device))
		b = binary.AppendVarint(b, int64(m.Type))
		b = binary.AppendVarint(b, m.Timestamp)
		b = binary.AppendVarint(b, m.ExpiresAt)
		b = binary.AppendUvarint(b, uint64(len(m.Content)))
		b = append(b, m.Content...)
		f := store.EncodeFranking(m.Franking)
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeMessages decodes what encodeMessages wrote (nil for nothing).
func decodeMessages(ref store.DeviceRef, b []byte) ([]*store.Message, error) {
	d := decoder{b: b}
	var msgs []*store.Message
	for len(d.b) > 0 && d.err == nil {
		m := &store.Message{To: ref, HasPrev: true}
		m.ID, m.Prev, m.PublicID, m.From.Account = d.varint(), d.varint(), d.varint(), d.varint()
		m.From.Device = uint32(d.uvarint(math.MaxUint32))
		m.Type = int32(d.varint())
		m.Timestamp, m.ExpiresAt = d.varint(), d.varint()
		m.Content = d.bytes()
		if f := d.bytes(); len(f) > 0 && d.err == nil {
			m.Franking, d.err = store.DecodeFranking(f)
		}
		msgs = append(msgs, m)
	}
	if d.err != nil {
		return nil, d.err
	}
	return msgs, nil
}

type decoder struct {
	b   []byte
	err error
}

var errBadWake = errors.New("cluster: bad messages in a wake-up")

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errBadWake, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint(limit uint64) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.err, d.b = errBadWake, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	l := d.uvarint(maxCarried)
	if l > uint64(len(d.b)) {
		d.err, d.b = errBadWake, nil
		return nil
	}
	v := d.b[:l:l]
	d.b = d.b[l:]
	return v
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
