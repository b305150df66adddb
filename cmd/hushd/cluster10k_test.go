package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/tlscert"
	"github.com/hushmsg/hush/internal/testutil"
)

// sharedClusterEnv is a clusterEnv on the machine's NATS (HUSH_TEST_NATS),
// with a subject prefix of its own so that parallel runs never meet. It
// skips t when HUSH_TEST_NATS or HUSH_TEST_POSTGRES is unset.
func sharedClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	natsURL := os.Getenv("HUSH_TEST_NATS")
	if natsURL == "" {
		t.Skip("HUSH_TEST_NATS is not set: skipping the cluster test (set it to e.g. nats://127.0.0.1:4222)")
	}
	store := pgtest.URL(t)
	dir := t.TempDir()
	if _, _, err := tlscert.LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	return &clusterEnv{store: store, nats: natsURL, prefix: "hushtest" + hex.EncodeToString(b),
		cert: filepath.Join(dir, tlscert.CertFile), key: filepath.Join(dir, tlscert.KeyFile)}
}

// TestCluster10k is issue 12's check of a cluster: three hushd nodes on
// PostgreSQL and NATS, 50 pairs sending 10,000 messages in all across
// nodes (each sender turns to the next node at every send, each receiver
// starts on another node than its sender), one node killed with SIGKILL
// after a third of them and restarted at once. Every message whose send
// was acknowledged is shown exactly once (receivers drop repeated ids, as
// clients do; the same content under two ids fails), in order per sender;
// receivers of the killed node move to another one; the restarted node
// takes sends again. The nodes' poll is slow (an hour), so delivery across
// nodes is by NATS wake-ups and by reconnections.
//
// -short: 10 pairs, 500 messages. HUSH_CLUSTER_MESSAGES sets the total
// (e.g. 100000 for a longer run).
func TestCluster10k(t *testing.T) {
	pairs, total := 50, 10000
	if testing.Short() {
		pairs, total = 10, 500
	}
	if v := os.Getenv("HUSH_CLUSTER_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < pairs {
			t.Fatalf("HUSH_CLUSTER_MESSAGES=%q: want a number of at least %d", v, pairs)
		}
		total = n
	}
	perSender := total / pairs
	env := sharedClusterEnv(t)
	// Fast password hashing and no rate limits: this is about delivery.
	extra := []string{"--argon2-time", "1", "--argon2-memory", "1024",
		"--limit-messages", "0", "--limit-messages-pair", "0", "--limit-bytes", "0"}
	nodes := []*proc{env.node(t, "127.0.0.1:0", extra...), env.node(t, "127.0.0.1:0", extra...), env.node(t, "127.0.0.1:0", extra...)}
	urls := []string{nodes[0].url, nodes[1].url, nodes[2].url} // a restarted node keeps its address
	fp := nodes[0].fingerprint
	ctx := t.Context()
	client := func(node int, cred string) *apiclient.Client {
		c, err := apiclient.New(urls[node%3], apiclient.Options{Fingerprint: fp, Credential: cred, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	start := time.Now()
	creds := make([][2]string, pairs) // sender's, receiver's
	var regWG sync.WaitGroup
	for i := range pairs {
		regWG.Go(func() {
			for j, name := range []string{fmt.Sprint("snd", i), fmt.Sprint("rcv", i)} {
				c, err := client(i+j, "").Register(ctx, api.Register{Username: name, Password: "password1"})
				if err != nil {
					t.Errorf("registering %s: %v", name, err)
					return
				}
				creds[i][j] = c.Credential
			}
		})
	}
	regWG.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var mu sync.Mutex
	acked := map[string]bool{}  // contents whose send was acknowledged
	shown := map[string][]int{} // per sender, the seqs in the order shown
	idOf := map[string]int64{}  // content -> the id it was shown with
	moves := 0                  // receivers' reconnections
	var ackedN, shownAcked atomic.Int64

	// Receiver i starts on node i+1 (its sender's first send goes to node
	// i) and moves to the next node when its connection breaks.
	stopRecv, stopReceivers := context.WithCancel(ctx)
	defer stopReceivers()
	var recvWG sync.WaitGroup
	up := make(chan struct{}, pairs)
	for i := range pairs {
		recvWG.Go(func() {
			node := i + 1
			seen := map[int64]bool{}
			first := true
			for stopRecv.Err() == nil {
				conn, err := client(node, creds[i][1]).Connect(stopRecv)
				if err != nil {
					node++
					continue
				}
				if first {
					up <- struct{}{}
					first = false
				}
				for {
					f, err := conn.Next(stopRecv)
					if err != nil {
						conn.CloseNow()
						node++
						if stopRecv.Err() == nil {
							mu.Lock()
							moves++
							mu.Unlock()
						}
						break
					}
					if f.Type != api.FrameMessage {
						continue
					}
					m := f.Msg
					if !seen[m.ID] { // a client shows each id once
						seen[m.ID] = true
						c := string(m.Content)
						var sender, seq int
						if _, err := fmt.Sscanf(c, "s%d-%d", &sender, &seq); err != nil || sender != i {
							t.Errorf("receiver %d got %q", i, c)
						}
						mu.Lock()
						if old, ok := idOf[c]; ok {
							t.Errorf("%s shown again with id %d (first %d)", c, m.ID, old)
						}
						idOf[c] = m.ID
						shown[c[:strings.IndexByte(c, '-')]] = append(shown[c[:strings.IndexByte(c, '-')]], seq)
						if acked[c] {
							shownAcked.Add(1)
						}
						mu.Unlock()
					}
					_ = conn.Ack(stopRecv, m.ID)
				}
			}
		})
	}
	for range pairs {
		<-up
	}

	// Sender i sends its messages in order, each to the next node round
	// the ring, waiting for each answer, until perSender were acknowledged.
	// A send that failed is not retried: it may or may not have been
	// stored (a receiver may show it, in its place), and the next one
	// takes the next seq.
	kill := make(chan struct{})
	var killOnce sync.Once
	var sendWG sync.WaitGroup
	var failed atomic.Int64
	sendCtx, cancelSends := context.WithTimeout(ctx, 10*time.Minute)
	defer cancelSends()
	for i := range pairs {
		sendWG.Go(func() {
			cs := []*apiclient.Client{client(0, creds[i][0]), client(1, creds[i][0]), client(2, creds[i][0])}
			for seq, ok := 0, 0; ok < perSender; seq++ {
				if sendCtx.Err() != nil {
					t.Errorf("sender %d: %d of %d sends acknowledged when time ran out", i, ok, perSender)
					return
				}
				content := fmt.Sprintf("s%d-%06d", i, seq)
				_, err := cs[(i+seq)%3].Send(sendCtx, fmt.Sprint("rcv", i), 1, api.SendMessage{Type: 1, Content: []byte(content)})
				if err != nil {
					failed.Add(1)
					continue
				}
				ok++
				mu.Lock()
				acked[content] = true
				if idOf[content] != 0 { // shown before its answer came
					shownAcked.Add(1)
				}
				mu.Unlock()
				if ackedN.Add(1) == int64(total/3) {
					killOnce.Do(func() { close(kill) })
				}
			}
		})
	}

	// A third of the way: SIGKILL node 2, and start it again at once on
	// the same address while the others carry on.
	const victim = 2
	select {
	case <-kill:
	case <-sendCtx.Done():
		t.Fatalf("only %d sends acknowledged before the deadline", ackedN.Load())
	}
	killedAt := ackedN.Load()
	nodes[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[victim].exited
	nodes[victim].exited <- nil
	restarted := env.node(t, strings.TrimPrefix(urls[victim], "https://"), extra...)
	restartedAt := ackedN.Load()
	sendWG.Wait()
	sent := time.Since(start)

	// Every acknowledged message shown, within a generous deadline.
	testutil.Eventually(t, 2*time.Minute, func() error {
		if n, want := shownAcked.Load(), ackedN.Load(); n < want {
			return fmt.Errorf("%d of %d acknowledged messages shown", n, want)
		}
		return nil
	})
	stopReceivers()
	recvWG.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(acked) != pairs*perSender {
		t.Errorf("%d sends acknowledged, want %d", len(acked), pairs*perSender)
	}
	for c := range acked {
		if idOf[c] == 0 {
			t.Errorf("acknowledged %s never shown", c)
			break
		}
	}
	for sender, seqs := range shown {
		for j := 1; j < len(seqs); j++ {
			if seqs[j] <= seqs[j-1] {
				t.Errorf("%s's messages shown out of order: %d after %d", sender, seqs[j], seqs[j-1])
				break
			}
		}
	}
	// The restarted node took sends (a third of them after its restart).
	metrics := fetch(t, restarted, "/metrics")
	m := regexp.MustCompile(`(?m)^hushd_messages_received_total (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatal("no hushd_messages_received_total in the restarted node's metrics")
	}
	if n, _ := strconv.ParseFloat(m[1], 64); n < 1 {
		t.Errorf("the restarted node stored %v messages", n)
	}
	t.Logf("%d pairs, %d acknowledged (%d sends failed around the kill, %d shown without an answer), sent in %v (%.0f/s); "+
		"node %d killed after %d, back after %d; receivers reconnected %d times; restarted node stored %s",
		pairs, len(acked), failed.Load(), len(idOf)-len(acked), sent.Round(time.Millisecond), float64(len(acked))/sent.Seconds(),
		victim, killedAt, restartedAt, moves, m[1])
}
