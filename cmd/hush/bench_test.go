package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/testutil"
)

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BenchmarkSend measures "hush send" to an online peer as a person runs
// it: real hush and hushd binaries (go build), a fresh hush process each
// time, bob connected with "hush recv --follow". ms-to-ack is from just before the
// process is started to the moment it has the server's answer (its
// HUSH_TRACE line); ms-to-sent-line to its "sent to bob" line, printed
// once the answer is recorded; ns/op is until the process has exited;
// ms-help is "hush help", the cost of starting the binary at all.
func BenchmarkSend(b *testing.B) {
	if _, err := exec.LookPath("go"); err != nil {
		b.Skip("needs the go command to build hush")
	}
	dir := b.TempDir()
	bin, hushdBin := filepath.Join(dir, "hush"), filepath.Join(dir, "hushd")
	// hush is built as it should be shipped: static, without cgo (it needs
	// none; a dynamically linked binary spends some 4 ms more in the
	// dynamic loader at every start). HUSH_BENCH_CGO=1 keeps the default.
	build := exec.Command("go", "build", "-o", dir, ".", "../hushd")
	if os.Getenv("HUSH_BENCH_CGO") == "" {
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building hush and hushd: %v\n%s", err, out)
	}
	s := startHushd(b, hushdBin, b.TempDir(), "127.0.0.1:0")
	alice, bob := newHome(b, "alice"), newHome(b, "bob")
	run := func(h *home, args ...string) {
		cmd := exec.Command(bin, append([]string{"--home", h.dir}, args...)...)
		cmd.Env = append(os.Environ(), "HUSH_PASSWORD=password-for-tests")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("hush %v: %v\n%s", args, err, out)
		}
	}
	for _, h := range []*home{alice, bob} {
		run(h, "register", "--server", s.url, "--server-fingerprint", s.fp, "--user", h.name)
	}
	run(alice, "send", "--secret", "--to", "bob", "first")
	follower := exec.Command(bin, "--home", bob.dir, "recv", "--follow")
	var followed lockedBuffer
	follower.Stdout = &followed
	if err := follower.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { follower.Process.Kill(); follower.Wait() }()
	run(bob, "send", "--secret", "--to", "alice", "answer") // the session is answered: plain SignalMessages from now on
	run(alice, "recv")
	// Bob is online once his follower has shown the first message.
	testutil.Eventually(b, 30*time.Second, func() error {
		if !strings.Contains(followed.String(), ": first") {
			return fmt.Errorf("bob's recv --follow has not shown the first message yet: %q", followed.String())
		}
		return nil
	})

	// The floor: the same binary started for "hush help", which opens
	// nothing and sends nothing.
	floor := make([]time.Duration, 0, 20)
	for range 20 {
		start := time.Now()
		if err := exec.Command(bin, "help").Run(); err != nil {
			b.Fatal(err)
		}
		floor = append(floor, time.Since(start))
	}
	toAck := make([]time.Duration, 0, b.N)
	toLine := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(bin, "--home", alice.dir, "send", "--secret", "--to", "bob", "benchmark message")
		cmd.Env = append(os.Environ(), "HUSH_TRACE=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "sent to bob" {
			b.Fatalf("hush send printed %q", sc.Text())
		}
		toLine = append(toLine, time.Since(start))
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		var ns int64
		for _, l := range strings.Split(stderr.String(), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "hush-trace" && f[2] == "server-answered" {
				ns, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		if ns == 0 {
			b.Fatalf("no trace of the server's answer in %q", stderr.String())
		}
		toAck = append(toAck, time.Unix(0, ns).Sub(start))
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"ms-to-ack", toAck}, {"ms-to-sent-line", toLine}, {"ms-help", floor}} {
		sort.Slice(m.d, func(i, j int) bool { return m.d[i] < m.d[j] })
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds())/1000, m.name+"(median)")
		b.ReportMetric(float64(m.d[len(m.d)*9/10].Microseconds())/1000, m.name+"(p90)")
	}
}
