package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

const natsBin = "/usr/sbin/nats-server"

// natsServer is a nats-server of the test's own, on a free port, so that
// stopping it disturbs nobody.
type natsServer struct {
	port int
	cmd  *exec.Cmd
}

// startNATS runs nats-server on port (0: a free one) and waits until it
// accepts connections. It skips t when the binary is missing.
func startNATS(t *testing.T, port int) *natsServer {
	t.Helper()
	if _, err := os.Stat(natsBin); err != nil {
		t.Skipf("%s not found: skipping the NATS cluster test", natsBin)
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &natsServer{port: port, cmd: cmd}
	t.Cleanup(n.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", n.addr())
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *natsServer) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }
func (n *natsServer) url() string  { return "nats://" + n.addr() }

func (n *natsServer) stop() {
	if n.cmd.Process != nil && n.cmd.ProcessState == nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
}

// clusterEnv is a PostgreSQL schema, a NATS and a certificate shared by
// the hushd nodes a test starts.
type clusterEnv struct {
	store, nats, prefix, cert, key string
}

func newClusterEnv(t *testing.T, nats *natsServer) *clusterEnv {
	dir := t.TempDir()
	if _, _, err := tlscert.LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	return &clusterEnv{store: pgtest.URL(t), nats: nats.url(), prefix: "hushtest" + hex.EncodeToString(b),
		cert: filepath.Join(dir, tlscert.CertFile), key: filepath.Join(dir, tlscert.KeyFile)}
}

// node starts a hushd of the cluster. Its poll is slow (an hour), so that
// anything delivered across nodes within a test came by a NATS wake-up.
func (e *clusterEnv) node(t *testing.T, addr string, extra ...string) *proc {
	args := append([]string{"--addr", addr, "--store", e.store, "--nats", e.nats, "--nats-prefix", e.prefix,
		"--data", t.TempDir(), "--tls-cert", e.cert, "--tls-key", e.key, "--limit-register", "0", "--poll-interval", "1h"}, extra...)
	return start(t, args...)
}

// TestCluster runs three hushd nodes on PostgreSQL and NATS with senders
// and receivers spread over them: every message a sender had acknowledged
// is shown once, in order per sender, including when one node is killed
// with SIGKILL mid-stream (its receivers move to another node); the node
// restarted rejoins.
func TestCluster(t *testing.T) {
	nats := startNATS(t, 0)
	env := newClusterEnv(t, nats)
	nodes := []*proc{env.node(t, "127.0.0.1:0"), env.node(t, "127.0.0.1:0"), env.node(t, "127.0.0.1:0")}
	var nodesMu sync.Mutex
	url := func(i int) string {
		nodesMu.Lock()
		defer nodesMu.Unlock()
		return nodes[i%3].url
	}
	fp := nodes[0].fingerprint
	ctx := t.Context()
	client := func(i int, cred string) *apiclient.Client {
		c, err := apiclient.New(url(i), apiclient.Options{Fingerprint: fp, Credential: cred, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const pairs, perSender = 6, 150
	const killed = 2 // the node killed mid-stream
	creds := map[string]string{}
	for i := range pairs {
		for _, name := range []string{fmt.Sprint("snd", i), fmt.Sprint("rcv", i)} {
			c := client(i, "")
			cred, err := c.Register(ctx, api.Register{Username: name, Password: "password1"})
			if err != nil {
				t.Fatal(err)
			}
			creds[name] = cred.Credential
		}
	}

	var mu sync.Mutex
	acked := map[string]bool{}     // contents whose send was acknowledged
	shown := map[string][]string{} // per sender, contents in the order shown
	idOf := map[string]int64{}     // content -> the id it was shown with
	receiversUp := make(chan struct{}, pairs)
	var recvWG, sendWG sync.WaitGroup

	// Receiver i starts on node i+1 (so that its sender, on node i, is on
	// another node) and moves to the next node when its connection breaks.
	stopRecv, stopReceivers := context.WithCancel(ctx)
	defer stopReceivers()
	for i := range pairs {
		recvWG.Go(func() {
			node := i + 1
			seen := map[int64]bool{}
			first := true
			for stopRecv.Err() == nil {
				conn, err := client(node, creds[fmt.Sprint("rcv", i)]).Connect(stopRecv)
				if err != nil {
					node++
					continue
				}
				if first {
					receiversUp <- struct{}{}
					first = false
				}
				for {
					f, err := conn.Next(stopRecv)
					if err != nil {
						conn.CloseNow()
						node++
						break
					}
					if f.Type != api.FrameMessage {
						continue
					}
					m := f.Msg
					if !seen[m.ID] { // a client shows each id once
						seen[m.ID] = true
						c := string(m.Content)
						mu.Lock()
						if old, ok := idOf[c]; ok {
							t.Errorf("%s shown again with id %d (first %d)", c, m.ID, old)
						}
						idOf[c] = m.ID
						sender, _, _ := strings.Cut(c, "-")
						shown[sender] = append(shown[sender], c)
						mu.Unlock()
					}
					_ = conn.Ack(stopRecv, m.ID)
				}
			}
		})
	}
	for range pairs {
		<-receiversUp
	}

	// Sender i sends through node i, in order, waiting for each answer;
	// when its node fails it moves on. A send that got no answer is not
	// retried (it may or may not have been stored).
	var sentMu sync.Mutex
	sent := 0
	kill := make(chan struct{})
	for i := range pairs {
		sendWG.Go(func() {
			node := i
			c := client(node, creds[fmt.Sprint("snd", i)])
			for seq := range perSender {
				content := fmt.Sprintf("s%d-%04d", i, seq)
				_, err := c.Send(ctx, fmt.Sprint("rcv", i), 1, api.SendMessage{Type: 1, Content: []byte(content)})
				if err != nil {
					node++
					c = client(node, creds[fmt.Sprint("snd", i)])
					continue
				}
				mu.Lock()
				acked[content] = true
				mu.Unlock()
				sentMu.Lock()
				sent++
				if sent == pairs*perSender/2 {
					close(kill)
				}
				sentMu.Unlock()
			}
		})
	}
	<-kill
	nodesMu.Lock()
	victim := nodes[killed]
	nodesMu.Unlock()
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	victim.exited <- nil
	sendWG.Wait()
	// Wait (with a deadline) until every acknowledged message was shown.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		missing := 0
		for c := range acked {
			if idOf[c] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
	}
	stopReceivers()
	recvWG.Wait()

	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for c := range acked {
		if idOf[c] == 0 {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged %s never shown", c)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged messages lost", lost, len(acked))
	}
	for sender, cs := range shown {
		for j := 1; j < len(cs); j++ {
			if cs[j] <= cs[j-1] {
				t.Errorf("%s's messages shown out of order: %s after %s", sender, cs[j], cs[j-1])
				break
			}
		}
	}
	if len(acked) < pairs*perSender*2/3 {
		t.Errorf("only %d of %d sends acknowledged", len(acked), pairs*perSender)
	}

	// The killed node, restarted, rejoins: a message through it reaches a
	// receiver on another node at once (by a wake-up, the poll is slow).
	n := env.node(t, strings.TrimPrefix(victim.url, "https://"))
	nodesMu.Lock()
	nodes[killed] = n
	nodesMu.Unlock()
	conn, err := client(0, creds["rcv0"]).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if _, err := client(killed, creds["snd0"]).Send(ctx, "rcv0", 1, api.SendMessage{Type: 1, Content: []byte("rejoined")}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		f, err := conn.Next(rctx)
		if err != nil {
			t.Fatalf("no message through the restarted node: %v", err)
		}
		if f.Type == api.FrameMessage && string(f.Msg.Content) == "rejoined" {
			break
		}
		if f.Type == api.FrameMessage {
			_ = conn.Ack(ctx, f.Msg.ID)
		}
	}
}
