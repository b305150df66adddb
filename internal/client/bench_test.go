package client_test

import (
	"context"
	"testing"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// BenchmarkSend is the engine's part of sending to an online peer, in a
// running process: one ratchet step and its transaction, one HTTPS request
// answered once the server has the message on disk, and the record of the
// answer. (cmd/hush's BenchmarkSend measures the whole command.)
func BenchmarkSend(b *testing.B) {
	ctx := b.Context()
	env := servertest.Start(b, server.Config{Limits: servertest.NoLimits})
	alice, bob := register(b, env, "alice"), register(b, env, "bob")
	alice.send(b, "bob", "first", 0)
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bob.c.Receive(bctx, client.ReceiveOptions{Follow: true, Handle: func(*store.Message) {}})
	}()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	for range b.N {
		if _, err := alice.c.Send(ctx, "bob", "benchmark message", 0); err != nil {
			b.Fatal(err)
		}
	}
}
