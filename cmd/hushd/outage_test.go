package main

import (
	"context"
	"io"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
)

// pgProxy forwards TCP to PostgreSQL and can cut every connection, to
// play the database going away without touching the shared one.
type pgProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	p := &pgProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *pgProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection: the database is gone.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *pgProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// eventually retries f until it returns nil or 60 s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// recvContent reads conn until a message with content arrives, acking
// what it reads.
func recvContent(t *testing.T, conn *apiclient.Conn, content string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for {
		f, err := conn.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", content, err)
		}
		if f.Type == api.FrameMessage {
			_ = conn.Ack(ctx, f.Msg.ID)
			if string(f.Msg.Content) == content {
				return
			}
		}
	}
}

// TestOutages takes NATS away, then PostgreSQL, from two running nodes.
// Without NATS, delivery across nodes goes on by polling and wake-ups
// resume when it is back. Without PostgreSQL, sends fail with 503
// unavailable; when it is back the nodes recover by themselves and what
// was acknowledged before is delivered.
func TestOutages(t *testing.T) {
	nats := startNATS(t, 0)
	env := newClusterEnv(t, nats)
	u, err := neturl.Parse(env.store)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.addr
	env.store = u.String()
	n1 := env.node(t, "127.0.0.1:0", "--poll-interval", "1s")
	n2 := env.node(t, "127.0.0.1:0", "--poll-interval", "1s")
	ctx := t.Context()
	alice, bob := n1.client(t), n2.client(t)
	if _, err := alice.Register(ctx, api.Register{Username: "alice", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Register(ctx, api.Register{Username: "bob", Password: "password2"}); err != nil {
		t.Fatal(err)
	}
	conn, err := bob.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	send := func(content string) error {
		_, err := alice.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte(content)})
		return err
	}

	// NATS away: delivery by the poll.
	nats.stop()
	if err := send("during nats outage"); err != nil {
		t.Fatal(err)
	}
	recvContent(t, conn, "during nats outage", 30*time.Second)
	// NATS back, on the same port: the nodes reconnect and deliver.
	nats2 := startNATS(t, nats.port)
	_ = nats2
	if err := send("after nats outage"); err != nil {
		t.Fatal(err)
	}
	recvContent(t, conn, "after nats outage", 30*time.Second)

	// PostgreSQL away: sends fail with 503 unavailable, nothing hangs.
	if err := send("before pg outage"); err != nil {
		t.Fatal(err)
	}
	proxy.cut()
	eventually(t, "a send without PostgreSQL", func() error {
		err := send("during pg outage")
		if err != nil && strings.Contains(err.Error(), api.CodeUnavailable) {
			return nil
		}
		return err
	})
	proxy.restore()
	eventually(t, "a send after PostgreSQL returned", func() error { return send("after pg outage") })
	// Bob's session may have broken on the outage: reconnect if needed;
	// what was acknowledged before the outage is still there.
	conn.CloseNow()
	eventually(t, "reconnecting", func() error {
		conn, err = bob.Connect(ctx)
		return err
	})
	recvContent(t, conn, "before pg outage", 30*time.Second)
	recvContent(t, conn, "after pg outage", 30*time.Second)
}
