package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
)

// Hushd is a hushd under test, reached at URL.
type Hushd struct {
	URL         string
	Fingerprint string
	// SourceAddrs, if set, are the local IPs connections come from, in
	// turn (each gives about 28,000 ports towards one server port).
	SourceAddrs []string
	// Prefix makes the usernames of this run unique.
	Prefix string
	// URLs, if set, are the nodes of a cluster: connection number i goes
	// to URLs[i%len(URLs)] instead of URL, so that with two or three nodes
	// a pair's sender and receiver (connections 2i and 2i+1) are always on
	// different nodes.
	URLs []string

	mu    sync.Mutex
	creds []pairCreds
	conns []*apiclient.Conn
}

type pairCreds struct{ sender, receiver string }

var _ System = (*Hushd)(nil)

// Name implements System.
func (h *Hushd) Name() string { return "hushd" }

// Client returns a client for connection number i with cred.
func (h *Hushd) Client(i int, cred string) (*apiclient.Client, error) {
	o := apiclient.Options{Fingerprint: h.Fingerprint, Credential: cred}
	if n := len(h.SourceAddrs); n > 0 {
		o.LocalAddr = &net.TCPAddr{IP: net.ParseIP(h.SourceAddrs[i%n])}
	}
	u := h.URL
	if n := len(h.URLs); n > 0 {
		u = h.URLs[i%n]
	}
	return apiclient.New(u, o)
}

// Register creates n accounts named Prefix+kind+index, 32 at a time, and
// returns their credentials.
func (h *Hushd) Register(ctx context.Context, kind string, n int) ([]string, error) {
	creds := make([]string, n)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	c, err := h.Client(0, "")
	if err != nil {
		return nil, err
	}
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := fmt.Sprintf("%s%s%d", h.Prefix, kind, i)
			var out api.DeviceCredential
			err := c.Do(ctx, "POST", "/v1/accounts", api.Register{Username: name, Password: "load-test-password"}, &out)
			if err != nil {
				select {
				case errs <- fmt.Errorf("registering %s: %w", name, err):
				default:
				}
				return
			}
			creds[i] = out.Credential
		})
	}
	wg.Wait()
	c.CloseIdle()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return creds, nil
}

// Setup implements System: it registers a sender and a receiver per pair.
func (h *Hushd) Setup(ctx context.Context, n int) error {
	if h.Prefix == "" {
		h.Prefix = "l" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	s, err := h.Register(ctx, "s", n)
	if err != nil {
		return err
	}
	r, err := h.Register(ctx, "r", n)
	if err != nil {
		return err
	}
	h.creds = make([]pairCreds, n)
	for i := range n {
		h.creds[i] = pairCreds{s[i], r[i]}
	}
	return nil
}

// Open implements System.
func (h *Hushd) Open(ctx context.Context, i int, onSent func(), onRecv func([]byte)) (func([]byte) error, error) {
	sc, err := h.Client(2*i, h.creds[i].sender)
	if err != nil {
		return nil, err
	}
	rc, err := h.Client(2*i+1, h.creds[i].receiver)
	if err != nil {
		return nil, err
	}
	sconn, err := sc.Connect(ctx)
	if err != nil {
		return nil, err
	}
	rconn, err := rc.Connect(ctx)
	if err != nil {
		sconn.CloseNow()
		return nil, err
	}
	h.mu.Lock()
	h.conns = append(h.conns, sconn, rconn)
	h.mu.Unlock()
	go func() {
		for {
			fs, err := sconn.NextBatch(ctx)
			if err != nil {
				return
			}
			for _, f := range fs {
				switch f.Type {
				case api.FrameSent:
					onSent()
				case api.FrameError:
					fmt.Fprintf(os.Stderr, "hushd send error: %+v\n", f.Error)
					onSent()
				}
			}
		}
	}()
	go func() {
		var ids []int64
		for {
			fs, err := rconn.NextBatch(ctx)
			if err != nil {
				return
			}
			ids = ids[:0]
			for _, f := range fs {
				if f.Type == api.FrameMessage {
					onRecv(f.Msg.Content)
					ids = append(ids, f.Msg.ID)
				}
			}
			// One ack frame for what one WebSocket message brought.
			for len(ids) > 0 {
				n := min(len(ids), 1000)
				rconn.Ack(ctx, ids[:n]...)
				ids = ids[n:]
			}
		}
	}()
	to := fmt.Sprintf("%sr%d", h.Prefix, i)
	var mu sync.Mutex
	var seq uint64
	return func(content []byte) error {
		mu.Lock()
		seq++
		id := seq
		mu.Unlock()
		return sconn.Send(ctx, id, to, 1, api.SendMessage{Type: 1, Content: content})
	}, nil
}

// Close implements System.
func (h *Hushd) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.CloseNow()
	}
	h.conns = nil
	return nil
}

// Process is a hushd started by StartHushd.
type Process struct {
	Cmd         *exec.Cmd
	URL         string
	Fingerprint string
	done        chan struct{}
}

var (
	fpRe     = regexp.MustCompile(`^fingerprint: ([0-9a-f]{64})$`)
	listenRe = regexp.MustCompile(`^listening: (https?://\S+)$`)
)

// StartHushd runs the hushd binary at bin with args (its stderr goes to
// logw) and waits until it listens.
func StartHushd(bin string, logw io.Writer, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logw
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	for p.URL == "" && sc.Scan() {
		if m := fpRe.FindStringSubmatch(sc.Text()); m != nil {
			p.Fingerprint = m[1]
		}
		if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
			p.URL = m[1]
		}
	}
	go func() { io.Copy(io.Discard, out); cmd.Wait(); close(p.done) }()
	if p.URL == "" {
		cmd.Process.Kill()
		return nil, fmt.Errorf("hushd did not start")
	}
	return p, nil
}

// Stop ends the process with SIGTERM and waits.
func (p *Process) Stop() {
	p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// ProcessCPU returns the CPU time (user and system) process pid has used,
// from /proc (Linux).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, counted in clock ticks.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// RSS returns the resident memory of pid in bytes, from /proc.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Metric reads the unlabelled metric name from the server's /metrics,
// which hushd serves to loopback clients only.
func (h *Hushd) Metric(ctx context.Context, name string) (float64, error) {
	c, err := apiclient.New(h.URL, apiclient.Options{Fingerprint: h.Fingerprint})
	if err != nil {
		return 0, err
	}
	defer c.CloseIdle()
	var b []byte
	if err := c.DoRaw(ctx, "GET", "/metrics", nil, &b); err != nil {
		return 0, err
	}
	v, ok := metricValue(string(b), name)
	if !ok {
		return 0, fmt.Errorf("hushd's /metrics has no %s", name)
	}
	return v, nil
}

// metricValue finds the sample "name value [timestamp]" in Prometheus'
// text format.
func metricValue(text, name string) (float64, bool) {
	for l := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(l, name+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// WaitMemtrim waits until hushd's memory trimmer (internal/server/memtrim,
// every 10 s) has checked twice more. The second check looks at a period
// that began after the call: whatever free memory the work before the call
// left, and hushd gives back when it is quiet, has been given back. It
// returns how many trims hushd has made in all.
func (h *Hushd) WaitMemtrim(ctx context.Context) (trims float64, err error) {
	const checks = "hushd_memtrim_checks_total"
	c0, err := h.Metric(ctx, checks)
	if err != nil {
		return 0, err
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for hushd's memory trimmer: %w", ctx.Err())
		case <-t.C:
		}
		c, err := h.Metric(ctx, checks)
		if err != nil {
			return 0, err
		}
		if c >= c0+2 {
			return h.Metric(ctx, "hushd_memtrim_trims_total")
		}
	}
}
