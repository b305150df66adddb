package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkSend measures "hush send" to an online peer as a person runs
// it: a real hush binary (go build), a fresh process each time, bob
// connected with "hush recv --follow". ms-to-ack is from the process's
// start to its "sent" line, which it prints after the server's answer
// (and after recording it); ms/op is until the process has exited.
func BenchmarkSend(b *testing.B) {
	if _, err := exec.LookPath("go"); err != nil {
		b.Skip("needs the go command to build hush")
	}
	bin := filepath.Join(b.TempDir(), "hush")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("building hush: %v\n%s", err, out)
	}
	s := startServer(b)
	alice, bob := newHome(b, "alice"), newHome(b, "bob")
	run := func(h *home, args ...string) {
		cmd := exec.Command(bin, append([]string{"--home", h.dir}, args...)...)
		cmd.Env = append(os.Environ(), "HUSH_PASSWORD=password-for-tests")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("hush %v: %v\n%s", args, err, out)
		}
	}
	for _, h := range []*home{alice, bob} {
		run(h, "register", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", h.name)
	}
	run(alice, "send", "--secret", "--to", "bob", "first")
	follower := exec.Command(bin, "--home", bob.dir, "recv", "--follow")
	if err := follower.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { follower.Process.Kill(); follower.Wait() }()
	run(bob, "send", "--secret", "--to", "alice", "answer") // the session is answered: plain SignalMessages from now on
	run(alice, "recv")
	time.Sleep(300 * time.Millisecond)

	toAck := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		cmd := exec.Command(bin, "--home", alice.dir, "send", "--secret", "--to", "bob", "benchmark message")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "sent to bob" {
			b.Fatalf("hush send printed %q", sc.Text())
		}
		toAck = append(toAck, time.Since(start))
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sort.Slice(toAck, func(i, j int) bool { return toAck[i] < toAck[j] })
	b.ReportMetric(float64(toAck[len(toAck)/2].Microseconds())/1000, "ms-to-ack(median)")
	b.ReportMetric(float64(toAck[len(toAck)*9/10].Microseconds())/1000, "ms-to-ack(p90)")
}
