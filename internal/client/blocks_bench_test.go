package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// BenchmarkDecryptBlockCheck: receiving one ordinary message (Decrypt:
// the ratchet step, the content, the store's transaction), with nobody
// blocked and with 1,000 people blocked: what the block check adds to
// every message received.
func BenchmarkDecryptBlockCheck(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("blocked=%d", n), func(b *testing.B) {
			ctx := b.Context()
			env := servertest.Start(b, server.Config{Limits: servertest.Generous})
			alice, bob := register(b, env, "alice"), register(b, env, "bob")
			bob.sendOrdinary(b, "alice", "hi")
			check(b, alice.c.Receive(ctx, client.ReceiveOptions{}))
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("user%05d", i)
			}
			check(b, alice.c.Store().Update(ctx, func(tx *store.Tx) error { return tx.SetBlocked(ctx, names) }))
			msgs := make([]*api.Message, b.N)
			for i := range msgs {
				msgs[i] = forgeOrdinary(b, ctx, bob, "alice", &content.Message{ID: content.NewID(),
					SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true, Body: "hello"})
			}
			b.ResetTimer()
			for _, m := range msgs {
				if ids, err := alice.c.Decrypt(ctx, m); err != nil || len(ids) != 1 {
					b.Fatal(ids, err)
				}
			}
		})
	}
}
