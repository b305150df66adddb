// Command hush-load measures a hushd: message throughput and latency with
// N sender/receiver pairs, and the server memory taken by idle
// authenticated WebSocket connections. The comparison with NATS JetStream
// is in the bench module (bench/), which runs the same workloads.
//
// Usage:
//
//	hush-load run  [--hushd-bin BIN | --url URL --fingerprint HEX [--hushd-pid PID]] [--pairs N] [--messages M] [--size B] [--window W] [--rate R --duration D] [--warmup D] [--timeline D] [--disk-probe DIR]
//	hush-load idle --hushd-bin BIN --conns N [--sources 127.0.0.2,127.0.0.3,...] [--hold D]
//	hush-load storm --hushd-bin BIN --store postgres://... --nats nats://... [--clients N] [--backoff D]
//	hush-load cluster --hushd-bin BIN --store postgres://... --nats nats://... [run's workload flags]
//	hush-load group [--hushd-bin BIN [--store postgres://... --nats nats://...] | --url URL --fingerprint HEX [--hushd-pid PID]] [--members N] [--rounds R] [--size B] [--window W] [--bench-out FILE]
//
// idle measures hushd's memory in its steady state: before and after the
// connections are opened it waits until hushd's memory trimmer has looked
// at a quiet period (two checks, 10 to 20 s), so that the garbage of the
// registrations and the TLS handshakes, which hushd gives back when it is
// quiet, is not counted; --hold measures after a fixed time instead.
//
// storm starts three hushd nodes on PostgreSQL (a fresh schema, dropped at
// the end) and NATS, connects --clients clients to the first, kills it with
// SIGKILL, and reports how long the clients took to be back on the other
// two (issue 12's reconnect storm). cluster runs run's workload on three
// such nodes, each pair's sender and receiver on different nodes.
//
// group measures the fan-out of one message to every member of a group of
// --members one-device accounts (issue 10): one group send (POST
// /v1/groups/messages) against the same number of one-to-one sends over
// the sender's WebSocket, in alternating rounds on one hushd; a round ends
// when the last member has the message. It reports deliveries per second,
// the p50 and p99 from the send to the last member's delivery, and
// hushd's CPU time per delivery, each kind and as ratios. With --store
// and --nats it runs on three nodes (as cluster does), the sender on the
// first and the members spread over the three, their CPU times summed.
//
// A hushd started from --hushd-bin gets a fresh hush-load-* folder in the
// temporary directory, removed when hush-load ends (also on Ctrl-C).
//
// When it knows the server's process (--hushd-bin, or --hushd-pid on this
// machine), run also reports the CPU time hushd and hush-load itself spent
// per message received, counted from the first message sent (account
// setup and connections left out): on a shared machine that is a steadier
// measure than messages per second. On Linux it reports the share of the
// machine's CPU time the hypervisor gave to other guests meanwhile
// (steal), and with --disk-probe the latency of a 4 KiB write and
// datasync on the disk every 10 ms (per timeline period too): a run's tail
// often follows one or the other, not the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/loadtest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hush-load run|idle|storm|cluster|group [flags]; hush-load run --help")
		os.Exit(2)
	}
	// hush-load's own live heap is mostly the TLS buffers of its
	// connections (about 40 MB for 2,000), which the default GOGC had
	// marked every 0.6-1 s: each cycle took 35-50 ms of marking and its
	// assists on the two cores it shares with hushd, and most of the
	// periods whose delivery p99 stood above 25 ms had one in them
	// (docs/performance.md, "Latency"). Collecting a fifth as often costs
	// this tool memory only; hushd, its child, keeps its own setting.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(500)
	}
	// Interrupted, the commands stop their hushd and remove its folder.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctx, os.Args[2:])
	case "idle":
		err = idle(ctx, os.Args[2:])
	case "storm":
		err = storm(ctx, os.Args[2:])
	case "cluster":
		err = cluster(ctx, os.Args[2:])
	case "group":
		err = group(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hush-load: error:", err)
		stop()
		os.Exit(1)
	}
}

// RaiseFileLimit lifts the open-file limit (as root, past the hard limit),
// so that many connections fit; a hushd started by this tool inherits it.
func raiseFileLimit(n uint64) {
	var l syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	if l.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		fmt.Fprintf(os.Stderr, "hush-load: open files limited to %d (%v)\n", l.Max, err)
	}
}

// server returns the hushd to test: started from bin on a fresh folder,
// or at url. stop stops the hushd it started and removes its folder, as
// bench does (for a hushd at url it does nothing).
func server(bin, url, fp string, extra ...string) (p *loadtest.Process, u, f string, stop func(), err error) {
	if bin == "" {
		if url == "" {
			return nil, "", "", nil, fmt.Errorf("give --hushd-bin, or --url and --fingerprint")
		}
		return nil, url, fp, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "hush-load-")
	if err != nil {
		return nil, "", "", nil, err
	}
	args := append([]string{"--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--log-level", "warn",
		"--limit-register", "0", "--limit-messages", "0", "--limit-messages-pair", "0", "--limit-bytes", "0", "--limit-group-copies", "0",
		"--argon2-time", "1", "--argon2-memory", "8", "--max-queue", "1000000", "--max-queue-per-sender", "1000000",
		"--max-conns-per-addr", "0"}, extra...)
	p, err = loadtest.StartHushd(bin, os.Stderr, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", "", nil, err
	}
	return p, p.URL, p.Fingerprint, func() { p.Stop(); os.RemoveAll(dir) }, nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load run", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "start this hushd binary on a fresh data folder")
	url := fs.String("url", "", "URL of a running hushd (started with --limit-register 0 --limit-messages 0 --limit-messages-pair 0 --limit-bytes 0 --max-conns-per-addr 0)")
	fp := fs.String("fingerprint", "", "its certificate fingerprint")
	var w loadtest.Workload
	fs.IntVar(&w.Pairs, "pairs", 100, "sender/receiver pairs")
	fs.IntVar(&w.Messages, "messages", 200000, "messages in all (without --rate)")
	fs.IntVar(&w.Size, "size", 256, "message size in bytes")
	fs.IntVar(&w.Window, "window", 32, "unacknowledged sends per sender")
	fs.Float64Var(&w.Rate, "rate", 0, "total messages per second (0: as fast as possible)")
	fs.DurationVar(&w.Duration, "duration", 30*time.Second, "run time with --rate")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	plaintext := fs.Bool("plaintext", false, "with --hushd-bin: run hushd with --insecure-plaintext (no TLS)")
	profile := fs.String("cpu-profile", "", "with --hushd-bin: hushd writes a CPU profile here")
	pid := fs.Int("hushd-pid", 0, "with --url: the process id of that hushd, to report its CPU time per message")
	fs.DurationVar(&w.Warmup, "warmup", 0, "also print the delivery latency of what was sent after this much of the run")
	fs.DurationVar(&w.Timeline, "timeline", 0, "also print delivery latency per period of this length (by send time)")
	selfProfile := fs.String("self-cpu-profile", "", "write hush-load's own CPU profile (the run, set-up left out) here")
	probeDir := fs.String("disk-probe", "", "also measure the disk that holds this folder (hushd's: with --hushd-bin, the temporary directory) with a 4 KiB write and datasync every 10 ms")
	fs.Parse(args)
	if *probeDir != "" {
		if fi, err := os.Stat(*probeDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--disk-probe %q: not a folder", *probeDir)
		}
	}
	raiseFileLimit(uint64(4*w.Pairs + 1000))
	var extra []string
	if *plaintext {
		extra = append(extra, "--insecure-plaintext")
	}
	if *profile != "" {
		extra = append(extra, "--cpu-profile", *profile)
	}
	p, u, f, stop, err := server(*bin, *url, *fp, extra...)
	if err != nil {
		return err
	}
	defer stop()
	if p != nil {
		*pid = p.Cmd.Process.Pid
	}
	var srv0, self0 time.Duration
	var cpuErr error
	var start time.Time
	var total0, steal0 int64
	var probe *loadtest.DiskProbe
	var probeErr error
	w.Started = func() {
		if *probeDir != "" {
			probe, probeErr = loadtest.StartDiskProbe(*probeDir, 10*time.Millisecond)
		}
		total0, steal0, _ = loadtest.CPUTimes()
		start = time.Now()
		if *selfProfile != "" {
			startProfile(*selfProfile)
		}
		self0 = selfCPU()
		if *pid != 0 {
			srv0, cpuErr = loadtest.ProcessCPU(*pid)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := loadtest.Run(ctx, &loadtest.Hushd{URL: u, Fingerprint: f}, w)
	self := selfCPU() - self0
	stopProfile()
	var samples []loadtest.ProbeSample
	if probe != nil {
		samples = probe.Stop()
	}
	fmt.Println(r)
	if total1, steal1, err := loadtest.CPUTimes(); err == nil && total1 > total0 {
		fmt.Printf("host: %.1f%% of the CPU time went to other guests (steal)\n", 100*float64(steal1-steal0)/float64(total1-total0))
	}
	if probeErr != nil {
		fmt.Fprintln(os.Stderr, "hush-load: disk probe:", probeErr)
	} else if probe != nil {
		fmt.Println(loadtest.Summarize(samples, 20*time.Millisecond))
	}
	if len(r.Timeline) > 0 {
		head := "start_ms messages p50_ms p99_ms max_ms"
		if probe != nil {
			head += " disk_probe_max_ms"
		}
		fmt.Printf("timeline (by send time; first send at %s): %s\n", start.UTC().Format("15:04:05.000"), head)
		for _, p := range r.Timeline {
			fmt.Printf("%8d %6d %8.2f %8.2f %8.2f", p.Start.Milliseconds(), p.Messages, ms(p.P50), ms(p.P99), ms(p.Max))
			if probe != nil {
				// Probe times count from the probe's start, just before start.
				off := start.Sub(probe.Started())
				fmt.Printf(" %8.2f", ms(loadtest.MaxIn(samples, p.Start+off, w.Timeline)))
			}
			fmt.Println()
		}
	}
	if n := float64(max(r.Received, 1)); *pid != 0 && cpuErr == nil {
		srv, err := loadtest.ProcessCPU(*pid)
		if err == nil {
			fmt.Printf("hushd CPU %.2fs = %.1f µs/msg; hush-load CPU %.2fs = %.1f µs/msg\n",
				(srv - srv0).Seconds(), float64((srv-srv0).Microseconds())/n, self.Seconds(), float64(self.Microseconds())/n)
		}
	}
	return err
}

var profileFile *os.File

// startProfile starts a CPU profile of this process into path.
func startProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hush-load:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "hush-load:", err)
		f.Close()
		return
	}
	profileFile = f
}

// stopProfile ends what startProfile started.
func stopProfile() {
	if profileFile != nil {
		pprof.StopCPUProfile()
		profileFile.Close()
		profileFile = nil
	}
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idle opens n authenticated WebSocket connections that then do nothing,
// and reports the server's resident memory per connection.
func idle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load idle", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "start this hushd binary on a fresh data folder (needed to read its memory)")
	n := fs.Int("conns", 10000, "connections")
	sources := fs.String("sources", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9", "local source addresses, comma-separated")
	plaintext := fs.Bool("plaintext", false, "run hushd with --insecure-plaintext (no TLS)")
	hold := fs.Duration("hold", 0, "keep the connections open this long before measuring (default: until hushd's memory trimmer has looked at a quiet period, the steady state)")
	hushdArgs := fs.String("hushd-args", "", "more hushd flags, space-separated")
	fs.Parse(args)
	if *bin == "" {
		return fmt.Errorf("--hushd-bin is needed: the tool reads the server's memory from /proc")
	}
	raiseFileLimit(uint64(2**n + 10000))
	var extra []string
	if *plaintext {
		extra = append(extra, "--insecure-plaintext")
	}
	extra = append(extra, strings.Fields(*hushdArgs)...)
	p, u, f, stop, err := server(*bin, "", "", extra...)
	if err != nil {
		return err
	}
	defer stop()
	h := &loadtest.Hushd{URL: u, Fingerprint: f, SourceAddrs: strings.Split(*sources, ","), Prefix: "idle"}
	// settle waits for the steady state (or --hold).
	settle := func(what string) error {
		start := time.Now()
		if *hold > 0 {
			select {
			case <-time.After(*hold):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		trims, err := h.WaitMemtrim(wctx)
		if err != nil {
			return fmt.Errorf("%w (or give --hold)", err)
		}
		fmt.Printf("%s: hushd's memory trimmer looked at a quiet period after %.1fs (%.0f trims so far)\n", what, time.Since(start).Seconds(), trims)
		return nil
	}
	start := time.Now()
	creds, err := h.Register(ctx, "c", *n)
	if err != nil {
		return err
	}
	fmt.Printf("registered %d accounts in %.1fs\n", *n, time.Since(start).Seconds())
	if err := settle("before"); err != nil {
		return err
	}
	before, err := loadtest.RSS(p.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	start = time.Now()
	conns := make([]*apiclient.Conn, *n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range *n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := h.Client(i, creds[i])
			if err == nil {
				conns[i], err = c.Connect(ctx)
			}
			if err != nil {
				if failed.Add(1) < 5 {
					fmt.Fprintln(os.Stderr, "connect:", err)
				}
				return
			}
			// Read the "empty" frame, then leave the connection idle.
			conns[i].Next(ctx)
		})
	}
	wg.Wait()
	open := int64(*n) - failed.Load()
	fmt.Printf("opened %d connections (%d failed) in %.1fs\n", open, failed.Load(), time.Since(start).Seconds())
	if err := settle("with the connections"); err != nil {
		return err
	}
	after, err := loadtest.RSS(p.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("hushd RSS: %.1f MiB before, %.1f MiB with %d idle connections: %.2f KiB per connection (tls=%v)\n",
		float64(before)/(1<<20), float64(after)/(1<<20), open, float64(after-before)/float64(max(open, 1))/1024, !*plaintext)
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
