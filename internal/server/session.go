package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
)

// Sink is a connected device, as the transport (the WebSocket handler)
// presents it to a Session. Deliver and Empty are called from one goroutine
// at a time; Close may be called from any.
type Sink interface {
	// Deliver writes messages to the device, in order.
	Deliver(ctx context.Context, msgs []api.Message) error
	// Empty tells the device that the backlog it had at connect is sent.
	Empty(ctx context.Context) error
	// KeysLow tells the device that its one-time prekeys run low.
	KeysLow(ctx context.Context) error
	// Close ends the connection; reason is for the peer.
	Close(reason string)
}

const (
	sessionQueueMax = 1024 // messages held in memory per session before reading from the store
	pendingBatch    = 256  // messages read from the store at once
	writeTimeout    = 30 * time.Second
)

// Session delivers a device's mailbox to its live connection: first the
// backlog from the store, then each message as soon as it is committed, in
// id order (hence in order per sender). Messages stay queued until the
// device acknowledges them.
//
// A session holds no goroutine while it has nothing to send: one is
// started when messages arrive and ends when they are written.
type Session struct {
	s    *Server
	ref  store.DeviceRef
	sink Sink

	mu        sync.Mutex
	queue     []*store.Message // committed, not yet written
	fromStore bool             // the queue overflowed (or we just connected): read the store
	running   bool             // a goroutine is delivering
	keysLow   bool             // a KeysLow is to be sent
	closed    bool
	tail      int64 // highest id queued or read from the store (offer)
	lastSent  int64 // highest id written; touched only by the delivering goroutine
	sentEmpty bool
}

type hub struct {
	s        *Server
	mu       sync.RWMutex
	sessions map[store.DeviceRef]*Session
}

func (h *hub) init(s *Server) {
	h.s = s
	h.sessions = make(map[store.DeviceRef]*Session)
}

// Connect starts delivering p's mailbox to sink. A session the device
// already had is closed: the newest connection wins.
func (s *Server) Connect(p Principal, sink Sink) (*Session, error) {
	if s.closing() {
		return nil, errClosing
	}
	se := &Session{s: s, ref: p.DeviceRef, sink: sink, fromStore: true, running: true}
	s.hub.mu.Lock()
	old := s.hub.sessions[p.DeviceRef]
	s.hub.sessions[p.DeviceRef] = se
	s.hub.mu.Unlock()
	if old != nil {
		old.end("replaced by a newer connection")
	} else {
		s.m.connections.Inc()
		if s.cfg.Cluster != nil {
			s.cfg.Cluster.Present(p.DeviceRef)
		}
	}
	_ = s.st.TouchDevice(context.Background(), p.DeviceRef, s.nowMs())
	go se.run()
	return se, nil
}

// notify is the store's commit hook: it hands committed messages to the
// sessions of their recipients. It runs in commit order and must not block.
//
// In a cluster, other nodes commit to the same mailboxes, so a message
// this node committed is not necessarily the next one of its mailbox: the
// sessions are only woken, to read the store after the last id they sent,
// and devices connected elsewhere are woken through the cluster.
func (h *hub) notify(msgs []*store.Message) {
	cl := h.s.cfg.Cluster
	var remote []store.DeviceRef
	// seen holds remote once it is long (a group send's commit names up
	// to 4,096 devices: a scan of remote for each would be quadratic).
	var seen map[store.DeviceRef]bool
	isNew := func(to store.DeviceRef) bool {
		switch {
		case len(remote) > 0 && remote[len(remote)-1] == to:
			return false
		case seen != nil:
			return !seen[to]
		case len(remote) < 32:
			return !slices.Contains(remote, to)
		}
		seen = make(map[store.DeviceRef]bool, 2*len(remote))
		for _, r := range remote {
			seen[r] = true
		}
		return !seen[to]
	}
	h.mu.RLock()
	for _, m := range msgs {
		se := h.sessions[m.To]
		switch {
		case cl == nil && se != nil:
			se.push(m)
		case se != nil:
			se.offer(m)
		case cl != nil && isNew(m.To):
			remote = append(remote, m.To)
			if seen != nil {
				seen[m.To] = true
			}
		}
	}
	h.mu.RUnlock()
	if len(remote) > 0 {
		cl.Wake(remote, msgs)
	}
}

// Wake implements Node: a node of the cluster committed messages for ref,
// whose session, if it is on this node, takes msgs or reads its mailbox.
func (s *Server) Wake(ref store.DeviceRef, msgs []*store.Message) {
	s.hub.mu.RLock()
	se := s.hub.sessions[ref]
	s.hub.mu.RUnlock()
	switch {
	case se == nil:
	case len(msgs) == 0:
		se.wake()
	default:
		for _, m := range msgs {
			se.offer(m)
		}
	}
}

// wakeAll makes every session read its mailbox.
func (h *hub) wakeAll() {
	h.mu.RLock()
	all := make([]*Session, 0, len(h.sessions))
	for _, se := range h.sessions {
		all = append(all, se)
	}
	h.mu.RUnlock()
	for _, se := range all {
		se.wake()
	}
}

// keysLow tells ref's session, if any, that its one-time keys run low.
func (h *hub) keysLow(ref store.DeviceRef) {
	h.mu.RLock()
	se := h.sessions[ref]
	h.mu.RUnlock()
	if se == nil {
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.closed {
		return
	}
	se.keysLow = true
	if !se.running {
		se.running = true
		go se.run()
	}
}

// disconnect ends ref's session, if any.
func (h *hub) disconnect(ref store.DeviceRef) {
	h.mu.Lock()
	se := h.sessions[ref]
	delete(h.sessions, ref)
	h.mu.Unlock()
	if se != nil {
		h.s.m.connections.Dec()
		h.absent(ref)
		se.end("device logged out or removed")
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	all := h.sessions
	h.sessions = make(map[store.DeviceRef]*Session)
	h.mu.Unlock()
	for ref, se := range all {
		h.s.m.connections.Dec()
		h.absent(ref)
		se.end("server shutting down")
	}
}

// Sessions returns how many devices are connected.
func (s *Server) Sessions() int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return len(s.hub.sessions)
}

// absent tells the cluster that ref has no session here any more.
func (h *hub) absent(ref store.DeviceRef) {
	if cl := h.s.cfg.Cluster; cl != nil {
		cl.Absent(ref)
	}
}

// wake makes the session read its mailbox from the store (after the last
// id it sent), whatever it holds in memory.
func (se *Session) wake() {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.closed {
		return
	}
	se.fromStore = true
	se.queue = nil
	if !se.running {
		se.running = true
		go se.run()
	}
}

// offer hands the session a message committed for it, in a cluster. It
// is queued when nothing can be missing before it: m.Prev, the mailbox's
// newest message when m was committed, is at most the newest id the
// session has queued or read (a message in between was deleted before
// m's commit). Otherwise the session reads its mailbox.
func (se *Session) offer(m *store.Message) {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.closed {
		return
	}
	switch {
	case se.fromStore: // a read is due: it finds m
	case m.ID <= se.tail: // queued or read already
		return
	case m.HasPrev && m.Prev <= se.tail && len(se.queue) < sessionQueueMax:
		se.queue = append(se.queue, m)
		se.tail = m.ID
	default:
		se.fromStore = true
		se.queue = nil
	}
	if !se.running {
		se.running = true
		go se.run()
	}
}

func (se *Session) push(m *store.Message) {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.closed {
		return
	}
	if !se.fromStore {
		if len(se.queue) >= sessionQueueMax {
			se.fromStore = true
			se.queue = nil
		} else {
			se.queue = append(se.queue, m)
		}
	}
	if !se.running {
		se.running = true
		go se.run()
	}
}

// run delivers until there is nothing left, then returns.
func (se *Session) run() {
	for {
		se.mu.Lock()
		if se.closed {
			se.running = false
			se.mu.Unlock()
			return
		}
		if se.keysLow {
			se.keysLow = false
			se.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := se.sink.KeysLow(ctx)
			cancel()
			if err != nil {
				se.fail("write failed")
				return
			}
			continue
		}
		var msgs []*store.Message
		sendEmpty := false
		if se.fromStore {
			se.fromStore = false
			se.mu.Unlock()
			var err error
			msgs, err = se.s.st.Pending(context.Background(), se.ref, se.lastSent, se.s.nowMs(), pendingBatch)
			if err != nil {
				se.s.log.Error("reading mailbox", "err", err)
				se.fail("server error")
				return
			}
			se.mu.Lock()
			if n := len(msgs); n > 0 {
				se.tail = max(se.tail, msgs[n-1].ID)
			}
			if len(msgs) == pendingBatch {
				se.fromStore = true // more to read
			} else if !se.sentEmpty {
				sendEmpty = true
			}
			se.mu.Unlock()
		} else {
			msgs = se.queue
			se.queue = nil
			if len(msgs) == 0 {
				se.running = false
				se.mu.Unlock()
				return
			}
			se.mu.Unlock()
		}
		if err := se.deliver(msgs, sendEmpty); err != nil {
			se.fail("write failed")
			return
		}
	}
}

func (se *Session) deliver(msgs []*store.Message, sendEmpty bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	now := se.s.now()
	nowMs := now.UnixMilli()
	out := make([]api.Message, 0, len(msgs))
	for _, m := range msgs {
		// The store's reads and the commit hook can overlap: skip what was
		// written already. Expired messages are not delivered.
		if m.ID <= se.lastSent || m.ExpiresAt <= nowMs {
			continue
		}
		am, err := se.s.toAPI(ctx, m)
		if err != nil {
			se.s.log.Error("delivering: the sender's username", "err", err)
			return err
		}
		out = append(out, am)
		se.lastSent = m.ID
	}
	if len(out) > 0 {
		if err := se.sink.Deliver(ctx, out); err != nil {
			return err
		}
		se.s.m.delivered.Add(float64(len(out)))
		for _, m := range out {
			se.s.m.deliveryLatency.Observe(float64(nowMs-m.Timestamp) / 1000)
		}
	}
	if sendEmpty {
		se.sentEmpty = true
		return se.sink.Empty(ctx)
	}
	return nil
}

// fail ends a session whose delivery broke.
func (se *Session) fail(reason string) {
	se.mu.Lock()
	se.running = false
	se.mu.Unlock()
	se.Close()
	se.sink.Close(reason)
}

// end marks the session closed and closes its sink.
func (se *Session) end(reason string) {
	se.mu.Lock()
	already := se.closed
	se.closed = true
	se.queue = nil
	se.mu.Unlock()
	if !already {
		se.sink.Close(reason)
	}
}

// Ack deletes delivered messages from the device's mailbox.
func (se *Session) Ack(ids []int64) error {
	if len(ids) == 0 || len(ids) > 1000 {
		return badRequest("ack 1 to 1000 ids at a time")
	}
	if err := se.s.st.Ack(context.Background(), se.ref, ids); err != nil {
		return se.s.internal("ack", err)
	}
	se.s.m.acked.Add(float64(len(ids)))
	return nil
}

// Close ends the session (the transport calls it when the connection
// ends). Unacknowledged messages stay queued.
func (se *Session) Close() {
	se.mu.Lock()
	se.closed = true
	se.queue = nil
	se.mu.Unlock()
	h := &se.s.hub
	h.mu.Lock()
	if h.sessions[se.ref] == se {
		delete(h.sessions, se.ref)
		se.s.m.connections.Dec()
		h.absent(se.ref)
	}
	h.mu.Unlock()
}

// Closed reports whether the session was ended.
func (se *Session) Closed() bool {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.closed
}
