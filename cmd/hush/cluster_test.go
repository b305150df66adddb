package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// TestClusterFailover is issue 12's client failover with the real
// binaries: two hushd nodes on PostgreSQL and NATS presenting one
// certificate, alice and bob registered with both URLs, bob receiving with
// recv --follow, alice sending one message per hush send. The node both
// use (the first of their lists) is killed with SIGKILL while a send is on
// its way. Every send succeeds (through the other node when the first is
// gone), and bob is shown each message exactly once, in order: his recv
// moves to the other node by itself. Needs HUSH_TEST_POSTGRES and
// HUSH_TEST_NATS (it skips without them).
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds hushd and runs two nodes")
	}
	natsURL := os.Getenv("HUSH_TEST_NATS")
	if natsURL == "" {
		t.Skip("HUSH_TEST_NATS is not set: skipping the cluster failover test (set it to e.g. nats://127.0.0.1:4222)")
	}
	store := pgtest.URL(t)
	bin := filepath.Join(t.TempDir(), "hushd")
	if out, err := exec.Command("go", "build", "-o", bin, "../hushd").CombinedOutput(); err != nil {
		t.Fatalf("building hushd: %v\n%s", err, out)
	}
	certDir := t.TempDir()
	if _, _, err := tlscert.LoadOrCreate(certDir); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "hushtest" + hex.EncodeToString(b)
	node := func() *hushdProc {
		return startHushdArgs(t, bin, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--store", store,
			"--nats", natsURL, "--nats-prefix", prefix,
			"--tls-cert", filepath.Join(certDir, tlscert.CertFile), "--tls-key", filepath.Join(certDir, tlscert.KeyFile))
	}
	n1, n2 := node(), node()
	if n1.fp != n2.fp {
		t.Fatalf("the nodes present %s and %s", n1.fp, n2.fp)
	}
	list := n1.url + "," + n2.url
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	for _, h := range []*home{alice, bob} {
		h.must("register", "--server", list, "--server-fingerprint", n1.fp, "--user", h.name)
	}

	// bob listens all along.
	recv := hushCmd(bob.dir, "--json", "recv", "--follow")
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	recv.Stderr = &syncBuilder{b: &stderr}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var shown []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["kind"] == "message" {
				mu.Lock()
				shown = append(shown, m["text"].(string))
				mu.Unlock()
			}
		}
	}()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			recv.Process.Signal(syscall.SIGTERM)
			<-done
			recv.Wait()
		})
	}
	defer stop()
	waitShown := func(n int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			mu.Lock()
			got := len(shown)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("bob was shown %d messages of %d in 90 s\nstderr: %s", got, n, recv.Stderr.(*syncBuilder))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	const total, killAt = 24, 8
	var want []string
	for i := range total {
		text := fmt.Sprintf("m%02d", i)
		want = append(want, text)
		if i == 1 {
			waitShown(1) // bob's WebSocket is up, on the first node
		}
		if i == killAt {
			// SIGKILL while this send is on its way: it either made it to
			// the first node, or goes to the second (perhaps both: bob's
			// hush drops the copy).
			go func() {
				time.Sleep(20 * time.Millisecond) // into the send, not a wait for anything
				n1.cmd.Process.Kill()
			}()
		}
		if o, e, code := alice.run("send", "--to", "bob", text); code != 0 {
			t.Fatalf("send %s: exit %d\nstdout: %s\nstderr: %s", text, code, o, e)
		}
	}
	<-n1.done
	waitShown(total)
	// A copy shown twice would be in bob's output by the time it stops.
	stop()
	mu.Lock()
	got := append([]string(nil), shown...)
	mu.Unlock()
	if !equal(got, want) {
		t.Fatalf("bob was shown %q, want %q", got, want)
	}
	if o := bob.must("status", "--json"); !strings.Contains(o, `"server":"`+n2.url+`"`) {
		t.Fatalf("bob's status after the failover: %s", o)
	}
	if o := alice.must("status"); !strings.Contains(o, "Through "+n2.url) {
		t.Fatalf("alice's status after the failover: %s", o)
	}
}

type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
