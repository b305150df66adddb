package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/tlscert"
	"github.com/hushmsg/hush/internal/testutil"
)

var tlscertFingerprint = tlscert.Fingerprint

var hushdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hushd-test-")
	if err != nil {
		panic(err)
	}
	hushdBin = filepath.Join(dir, "hushd")
	if out, err := exec.Command("go", "build", "-o", hushdBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building hushd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running hushd.
type proc struct {
	cmd         *exec.Cmd
	url         string
	fingerprint string
	stderr      *strings.Builder
	exited      chan error
}

var (
	fpLine     = regexp.MustCompile(`^fingerprint: ([0-9a-f]{64})$`)
	listenLine = regexp.MustCompile(`^listening: (https?://\S+)$`)
)

// start runs hushd with args and waits for its "listening:" line.
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(hushdBin, args...)
	cmd.Env = append(os.Environ(), "HUSHD_LOG_LEVEL=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &strings.Builder{}, exited: make(chan error, 1)}
	cmd.Stderr = &syncWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.exited <- cmd.Wait() }()
	timeout := time.After(20 * time.Second)
	for p.url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("hushd exited before listening: %s", p.stderr)
			}
			if m := fpLine.FindStringSubmatch(l); m != nil {
				p.fingerprint = m[1]
			}
			if m := listenLine.FindStringSubmatch(l); m != nil {
				p.url = m[1]
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("hushd did not start: %s", p.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (p *proc) client(t *testing.T) *apiclient.Client {
	c, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("hushd exited with %v after SIGTERM: %s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hushd did not stop after SIGTERM")
	}
}

func TestCommandLine(t *testing.T) {
	out, err := exec.Command(hushdBin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, env := range []string{"HUSHD_ADDR", "HUSHD_DATA", "HUSHD_TLS_CERT", "HUSHD_TLS_KEY", "HUSHD_INSECURE_PLAINTEXT",
		"HUSHD_MAX_QUEUE", "HUSHD_MESSAGE_TTL", "HUSHD_LIMIT_MESSAGES", "HUSHD_LIMIT_REGISTER", "HUSHD_LOG_LEVEL", "HUSHD_MAX_CONNS_PER_ADDR"} {
		if !strings.Contains(string(out), env) {
			t.Errorf("--help does not name %s", env)
		}
	}
	out, err = exec.Command(hushdBin, "--addr", "0.0.0.0:0", "--insecure-plaintext", "--data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback") {
		t.Errorf("plain HTTP on 0.0.0.0 was not refused: %v %s", err, out)
	}
	cmd := exec.Command(hushdBin, "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "HUSHD_ADDR=0.0.0.0:0", "HUSHD_INSECURE_PLAINTEXT=true")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "loopback") {
		t.Errorf("plain HTTP on 0.0.0.0 from the environment was not refused: %v %s", err, out)
	}
	// Mistakes in the command line exit 2.
	for _, args := range [][]string{{"--limit-messages", "lots"}, {"--bogus"}, {"--data", t.TempDir(), "serve"},
		{"fingerprint", "--bogus"}, {"--max-queue", "0", "--data", t.TempDir()}} {
		out, err := exec.Command(hushdBin, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("hushd %q: %v, want exit status 2\n%s", args, err, out)
		}
	}
	cmd = exec.Command(hushdBin, "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "HUSHD_MAX_QUEUE=many")
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "HUSHD_MAX_QUEUE") {
		t.Errorf("a bad HUSHD_MAX_QUEUE: %v, want exit status 2\n%s", err, out)
	}
	if out, err := exec.Command(hushdBin, "--version").Output(); err != nil || !regexp.MustCompile(`^hushd \S+.*, go1\.\S+\nstore schema: sqlite [1-9][0-9]*, postgres [1-9][0-9]*\n$`).Match(out) {
		t.Errorf("hushd --version: %v %q", err, out)
	}
	if out, err := exec.Command(hushdBin, "--tls-cert", "/nonexistent.pem", "--data", t.TempDir()).CombinedOutput(); err == nil {
		t.Errorf("--tls-cert without --tls-key was accepted: %s", out)
	}
}

// TestServe runs hushd as users do and talks to it over real sockets:
// fingerprint, register, keys, bundle, send, receive, ack, restart,
// backlog.
func TestServe(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	// Debug logs, so that the check for secrets in them at the end sees
	// everything hushd can log.
	p := start(t, "--addr", "127.0.0.1:0", "--data", data, "--log-level", "debug")
	fp, err := exec.Command(hushdBin, "fingerprint", "--data", data).Output()
	if err != nil || strings.TrimSpace(string(fp)) != "fingerprint: "+p.fingerprint {
		t.Fatalf("hushd fingerprint printed %q (%v), hushd printed %s at start", fp, err, p.fingerprint)
	}
	// Another certificate is refused by a pinned client.
	wrong, _ := apiclient.New(p.url, apiclient.Options{Fingerprint: strings.Repeat("ab", 32)})
	if _, err := wrong.Register(ctx, api.Register{Username: "mallory", Password: "password1"}); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("a client pinning another fingerprint connected: %v", err)
	}

	// Operations endpoints: health, and metrics for loopback clients.
	for _, c := range []struct{ path, want string }{{"/healthz", "ok"}, {"/metrics", "hushd_websocket_connections"},
		{"/metrics", "\nhushd_memtrim_checks_total "}, {"/metrics", "\nhushd_memtrim_trims_total "}} {
		body := fetch(t, p, c.path)
		if !strings.Contains(body, c.want) {
			t.Fatalf("GET %s does not show %q: %.200s", c.path, c.want, body)
		}
	}

	alice, bob := p.client(t), p.client(t)
	if _, err := alice.Register(ctx, api.Register{Username: "alice", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Register(ctx, api.Register{Username: "bob", Password: "password2"}); err != nil {
		t.Fatal(err)
	}
	ik := servertest.NewIdentity(t)
	ku := servertest.Keys(t, ik, 1, 3)
	if err := bob.MakeSecret(ctx, api.MakeSecret{RegistrationID: 5, IdentityKey: ik.Public.Bytes(), Keys: &ku}); err != nil {
		t.Fatal(err)
	}
	// Alice's device is her secret device: secret messages go between
	// secret devices only.
	if err := alice.MakeSecret(ctx, api.MakeSecret{RegistrationID: 6, IdentityKey: servertest.NewIdentity(t).Public.Bytes()}); err != nil {
		t.Fatal(err)
	}
	b, err := alice.Bundle(ctx, "bob", 0)
	if err != nil || b.PreKeyID == nil || !ik.Public.Verify(b.SignedPreKeySignature, b.SignedPreKey) {
		t.Fatalf("bundle %+v %v", b, err)
	}
	var ids []int64
	for i := range 3 {
		r, err := alice.Send(ctx, "bob", 1, api.SendMessage{Type: 3, Content: fmt.Appendf(nil, "ciphertext-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	conn, err := bob.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := recvN(t, conn, 3)
	for i, m := range got {
		if m.ID != ids[i] || string(m.Content) != fmt.Sprint("ciphertext-", i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if err := conn.Ack(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	// The ack frame has no answer: wait until the server counts it, which
	// it does once the store has committed it.
	testutil.Eventually(t, 10*time.Second, func() error {
		if m := fetch(t, p, "/metrics"); !strings.Contains(m, "\nhushd_messages_acked_total 1\n") {
			return errors.New("the ack is not committed yet")
		}
		return nil
	})

	// A graceful stop loses nothing; after the restart the unacknowledged
	// messages come again.
	p.stop(t)
	logs := p.stderr.String()
	p = start(t, "--addr", strings.TrimPrefix(p.url, "https://"), "--data", data, "--log-level", "debug")
	bob = p.client(t)
	if _, err := bob.Login(ctx, api.Login{Username: "bob", Password: "password2", DeviceID: 1}); err != nil {
		t.Fatal(err)
	}
	conn, err = bob.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = recvN(t, conn, 2)
	if got[0].ID != ids[1] || got[1].ID != ids[2] {
		t.Fatalf("after restart: %+v", got)
	}
	if f, err := conn.Next(ctx); err != nil || f.Type != api.FrameEmpty {
		t.Fatalf("after the backlog: %+v %v", f, err)
	}
	conn.Close()
	p.stop(t)
	logs += p.stderr.String()
	if !strings.Contains(logs, "account registered") {
		t.Fatalf("no debug log to check: %s", logs)
	}
	secret := bob.Credential()[strings.LastIndexByte(bob.Credential(), '.')+1:]
	for _, s := range []string{"password1", "password2", secret, "ciphertext-", base64.StdEncoding.EncodeToString([]byte("ciphertext-0"))} {
		if strings.Contains(logs, s) {
			t.Errorf("the log shows %q: %s", s, logs)
		}
	}
}

// fetch GETs path from the server, pinning its certificate, and returns the
// body.
func fetch(t *testing.T, p *proc, path string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if tlscertFingerprint(cs.PeerCertificates[0].Raw) != p.fingerprint {
			return fmt.Errorf("wrong certificate")
		}
		return nil
	}}}
	resp, err := (&http.Client{Transport: tr}).Get(p.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func recvN(t *testing.T, c *apiclient.Conn, n int) []api.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []api.Message
	for len(out) < n {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		if f.Type == api.FrameMessage {
			out = append(out, *f.Msg)
		}
	}
	return out
}

// TestCrash kills hushd with SIGKILL at random moments under a steady
// stream of messages, restarts it, and checks that every message it
// acknowledged reaches the receiver, which shows each exactly once.
func TestCrash(t *testing.T) {
	kills := 10
	if testing.Short() {
		kills = 3
	}
	restarts(t, kills, syscall.SIGKILL)
}

// TestGracefulRestart does the same with SIGTERM: hushd must exit cleanly
// under load and lose nothing it acknowledged.
func TestGracefulRestart(t *testing.T) {
	restarts(t, 3, syscall.SIGTERM)
}

func restarts(t *testing.T, kills int, sig syscall.Signal) {
	ctx := t.Context()
	data := t.TempDir()
	p := start(t, "--addr", "127.0.0.1:0", "--data", data, "--limit-register", "0")
	addr := strings.TrimPrefix(p.url, "https://")
	fp := p.fingerprint

	reg := func(name string) string {
		c := p.client(t)
		cred, err := c.Register(ctx, api.Register{Username: name, Password: "password1"})
		if err != nil {
			t.Fatal(err)
		}
		return cred.Credential
	}
	senderCred, httpSenderCred, recvCred := reg("sender"), reg("httpsender"), reg("receiver")
	client := func(cred string) *apiclient.Client {
		c, err := apiclient.New("https://"+addr, apiclient.Options{Fingerprint: fp, Credential: cred, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	var mu sync.Mutex
	acked := map[string]bool{}     // contents the server acknowledged
	received := map[string]int64{} // content -> server id
	shown := 0                     // messages the receiver displayed (after de-duplication by id)
	seenIDs := map[int64]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// A WebSocket sender with up to 32 unacknowledged sends. Sends that
	// were not acknowledged when the connection broke are not retried.
	wg.Go(func() {
		c := client(senderCred)
		seq := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			conn, err := c.Connect(ctx)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			inflight := map[uint64]string{}
			done := make(chan struct{})
			var imu sync.Mutex
			window := make(chan struct{}, 32)
			go func() {
				defer close(done)
				for {
					f, err := conn.Next(ctx)
					if err != nil {
						return
					}
					if f.Type == api.FrameSent {
						imu.Lock()
						content := inflight[f.ReqID]
						delete(inflight, f.ReqID)
						imu.Unlock()
						mu.Lock()
						acked[content] = true
						mu.Unlock()
						<-window
					}
				}
			}()
		send:
			for {
				select {
				case <-stop:
					break send
				case <-done:
					break send
				case window <- struct{}{}:
				}
				seq++
				content := fmt.Sprintf("ws-%d", seq)
				imu.Lock()
				inflight[uint64(seq)] = content
				imu.Unlock()
				if err := conn.Send(ctx, uint64(seq), "receiver", 1, api.SendMessage{Type: 1, Content: []byte(content)}); err != nil {
					break
				}
			}
			conn.CloseNow()
			<-done
		}
	})
	// An HTTP sender.
	wg.Go(func() {
		c := client(httpSenderCred)
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			content := fmt.Sprintf("http-%d", seq)
			if _, err := c.Send(ctx, "receiver", 1, api.SendMessage{Type: 1, Content: []byte(content)}); err == nil {
				mu.Lock()
				acked[content] = true
				mu.Unlock()
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	// The receiver: de-duplicates by server id, acknowledges everything.
	recvDone := make(chan struct{})
	var failure string
	go func() {
		defer close(recvDone)
		c := client(recvCred)
		for {
			select {
			case <-stop:
				mu.Lock()
				all := len(acked) > 0
				for content := range acked {
					if _, ok := received[content]; !ok {
						all = false
						break
					}
				}
				mu.Unlock()
				if all {
					return
				}
			default:
			}
			conn, err := c.Connect(ctx)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			for {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				f, err := conn.Next(rctx)
				cancel()
				if err != nil {
					break
				}
				if f.Type != api.FrameMessage {
					continue
				}
				m := f.Msg
				mu.Lock()
				if !seenIDs[m.ID] {
					seenIDs[m.ID] = true
					shown++
					if prev, ok := received[string(m.Content)]; ok && prev != m.ID {
						failure = fmt.Sprintf("%q stored twice, as ids %d and %d", m.Content, prev, m.ID)
					}
					received[string(m.Content)] = m.ID
				}
				mu.Unlock()
				conn.Ack(ctx, m.ID)
			}
			conn.CloseNow()
		}
	}()

	// progress waits until the senders have had more sends acknowledged:
	// each stop lands amid work, at a random point of it.
	progress := func(more int) int {
		t.Helper()
		mu.Lock()
		want := len(acked) + more
		mu.Unlock()
		n := 0
		testutil.Eventually(t, 60*time.Second, func() error {
			mu.Lock()
			n = len(acked)
			mu.Unlock()
			if n < want {
				return fmt.Errorf("%d sends acknowledged, waiting for %d", n, want)
			}
			return nil
		})
		return n
	}
	for i := range kills {
		n := progress(1 + rand.IntN(300))
		t.Logf("%v %d: %d messages acknowledged so far", sig, i+1, n)
		if sig == syscall.SIGKILL {
			p.cmd.Process.Kill()
			<-p.exited
			p.exited <- nil
		} else {
			p.stop(t) // fails the test unless hushd exits with status 0
		}
		p = start(t, "--addr", addr, "--data", data, "--limit-register", "0")
	}
	progress(50) // the last server takes sends too
	close(stop)
	wg.Wait()
	select {
	case <-recvDone:
	case <-time.After(60 * time.Second):
		t.Error("the receiver did not get every acknowledged message within 60 s")
		mu.Lock()
		missing := 0
		for content := range acked {
			if _, ok := received[content]; !ok {
				missing++
			}
		}
		mu.Unlock()
		t.Fatalf("%d of the acknowledged messages never arrived", missing)
	}
	mu.Lock()
	defer mu.Unlock()
	if failure != "" {
		t.Fatal(failure)
	}
	if len(acked) < 10 {
		t.Fatalf("only %d messages were acknowledged: the test did not exercise the server", len(acked))
	}
	// A graceful stop answers every send it took: only the sends the test
	// itself abandons when it stops (one window and one HTTP request) may
	// be stored without their answer.
	if extra := len(received) - len(acked); sig == syscall.SIGTERM && extra > 33 {
		t.Errorf("%d stored messages were never acknowledged to their sender across graceful restarts", extra)
	}
	if shown != len(received) {
		t.Fatalf("the receiver showed %d messages for %d distinct contents", shown, len(received))
	}
	t.Logf("%d restarts, %d messages acknowledged, %d received (%d unacknowledged ones arrived too)", kills, len(acked), len(received), len(received)-len(acked))
	p.stop(t)
}

// TestPostgresNodes runs hushd on PostgreSQL (--store): migrate by hand
// (twice), then two nodes on one schema presenting one certificate, whose
// fingerprint `hushd fingerprint --tls-cert` prints: what a message sent
// through one node is read through the other.
func TestPostgresNodes(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	for range 2 {
		out, err := exec.Command(hushdBin, "migrate", "--store", url).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "schema at version") {
			t.Fatalf("hushd migrate: %v %s", err, out)
		}
	}
	for _, args := range [][]string{{"migrate"}, {"migrate", "--store", "sqlite:x"}, {"--store", "mysql://x", "--data", t.TempDir()}} {
		if out, err := exec.Command(hushdBin, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), "postgres://") {
			t.Errorf("hushd %q: %v %s", args, err, out)
		}
	}
	// One certificate for the cluster: the first node's self-signed one.
	certDir := t.TempDir()
	if _, _, err := tlscert.LoadOrCreate(certDir); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certDir, tlscert.CertFile), filepath.Join(certDir, tlscert.KeyFile)
	out, err := exec.Command(hushdBin, "fingerprint", "--tls-cert", cert).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(hushdBin, "fingerprint", "--tls-cert", key).CombinedOutput(); err == nil {
		t.Errorf("fingerprint of a key file: %s", out)
	}
	node := func() *proc {
		p := start(t, "--addr", "127.0.0.1:0", "--store", url, "--data", t.TempDir(), "--tls-cert", cert, "--tls-key", key)
		if strings.TrimSpace(string(out)) != "fingerprint: "+p.fingerprint {
			t.Fatalf("hushd fingerprint --tls-cert printed %q, the node %s", out, p.fingerprint)
		}
		return p
	}
	n1, n2 := node(), node()
	alice, bob := n1.client(t), n2.client(t)
	if _, err := alice.Register(ctx, api.Register{Username: "alice", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Register(ctx, api.Register{Username: "bob", Password: "password2"}); err != nil {
		t.Fatal(err)
	}
	r, err := alice.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("across nodes")})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := bob.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := recvN(t, conn, 1); got[0].ID != r.ID || string(got[0].Content) != "across nodes" {
		t.Fatalf("bob got %+v", got)
	}

	// Rate limits hold across nodes: password guesses for one username,
	// alternating between the nodes, get the per-username burst (10) once.
	for i := range 12 {
		c := []*proc{n1, n2}[i%2].client(t)
		_, err := c.Login(ctx, api.Login{Username: "alice", Password: "wrong-password", DeviceID: 1})
		limited := err != nil && strings.Contains(err.Error(), api.CodeRateLimited)
		if limited != (i >= 10) {
			t.Fatalf("guess %d (node %d): %v", i+1, i%2+1, err)
		}
	}
}

// TestTLS13Only reproduces part of finding 9 of issue 14: hushd accepted
// TLS 1.2 with CBC suites although its clients need 1.3. A TLS 1.2 client,
// CBC or not, gets no connection; a TLS 1.3 one does.
func TestTLS13Only(t *testing.T) {
	p := start(t, "--addr", "127.0.0.1:0", "--data", t.TempDir())
	defer p.stop(t)
	addr := strings.TrimPrefix(p.url, "https://")
	for _, suites := range [][]uint16{{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, nil} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err == nil {
			c.Close()
			t.Fatalf("a TLS 1.2 handshake (suites %v) succeeded", suites)
		}
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("negotiated version %x", v)
	}
}
