package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/loadtest"
)

// storm measures a reconnect storm (issue 12): three hushd nodes on
// PostgreSQL and NATS, n clients connected to the first one, which is then
// killed with SIGKILL; the clients reconnect to the two others, as they
// would through a load balancer, and storm reports how long it took until
// every one of them had its WebSocket again (authenticated, its mailbox
// read: the server's first "empty" frame received).
//
// Each client is one apiclient.Client for the whole run, as in hush: it
// knows the three nodes, keeps its TLS session, and after the break skips
// the victim (tried last) and tries the others from a random one
// (internal/apiclient, failover.go). By default it waits as hush did
// until 58c89ea: the first attempt a second after the break, then twice
// as long after each failure, up to 30 s (--backoff changes the first
// wait); --hush-waits waits as hush does now (internal/client, recv.go).
func storm(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load storm", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "the hushd binary to run three nodes of")
	store := fs.String("store", os.Getenv("HUSH_TEST_POSTGRES"), "PostgreSQL `URL` of a database to make a fresh schema in (removed at the end); default $HUSH_TEST_POSTGRES")
	nats := fs.String("nats", os.Getenv("HUSH_TEST_NATS"), "NATS `URL`; default $HUSH_TEST_NATS")
	n := fs.Int("clients", 10000, "clients connected to the node that is killed")
	sources := fs.String("sources", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9", "local source addresses, comma-separated")
	backoff := fs.Duration("backoff", time.Second, "a client's first wait after its connection broke (doubled after each failure, up to 30 s)")
	within := fs.Duration("within", 30*time.Second, "the goal: every client back within this time")
	jitter := fs.Duration("jitter", 0, "add a random wait of up to this much to each client's waits")
	likeHush := fs.Bool("hush-waits", false, "wait as hush does (internal/client, recv.go): 0.5 s plus a random time up to 4 s, then up to 8, 16 ... 60 s; --backoff and --jitter are then ignored")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after")
	profile := fs.String("cpu-profile", "", "nodes 1 and 2 write CPU profiles to `PREFIX`.node1 and PREFIX.node2 (they only take the storm: accounts are registered on node 0)")
	fs.Parse(args)
	if *bin == "" || *store == "" || *nats == "" {
		return errors.New("give --hushd-bin, --store postgres://... and --nats nats://... (or set HUSH_TEST_POSTGRES and HUSH_TEST_NATS)")
	}
	raiseFileLimit(uint64(3**n + 10000))
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var profiles []string
	if *profile != "" {
		profiles = []string{"", *profile + ".node1", *profile + ".node2"}
	}
	nodes, stopCluster, err := startCluster(ctx, *bin, *store, *nats, profiles)
	if err != nil {
		return err
	}
	defer func() { stopCluster(nodes) }()
	victim, fp := nodes[0], nodes[0].Fingerprint
	srcs := strings.Split(*sources, ",")
	hushd := func(p *loadtest.Process) *loadtest.Hushd {
		return &loadtest.Hushd{URL: p.URL, Fingerprint: fp, SourceAddrs: srcs, Prefix: "storm"}
	}
	fmt.Printf("load before: %s\n", loadavg())

	start := time.Now()
	creds, err := hushd(victim).Register(ctx, "c", *n)
	if err != nil {
		return err
	}
	fmt.Printf("registered %d accounts in %.1fs\n", *n, time.Since(start).Seconds())

	// One client per person for the whole run, as hush keeps one (its TLS
	// session cache with it), knowing the three nodes, the victim first.
	clients := make([]*apiclient.Client, *n)
	urls := []string{victim.URL, nodes[1].URL, nodes[2].URL}
	for i := range *n {
		o := apiclient.Options{Fingerprint: fp, Credential: creds[i], LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcs[i%len(srcs)])}}
		if clients[i], err = apiclient.NewCluster(urls, o); err != nil {
			return err
		}
	}

	// Everyone on the victim.
	start = time.Now()
	conns := make([]*apiclient.Conn, *n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	var failed atomic.Int64
	for i := range *n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			conns[i], err = clients[i].Connect(ctx)
			if err == nil {
				_, err = conns[i].Next(ctx) // the "empty" frame: connected
			}
			if err != nil && failed.Add(1) < 5 {
				fmt.Fprintln(os.Stderr, "connect:", err)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d clients could not connect to the first node", failed.Load(), *n)
	}
	fmt.Printf("connected %d clients to node 0 in %.1fs\n", *n, time.Since(start).Seconds())

	// The storm: kill the victim; each client notices its connection
	// break, waits, and reconnects to node 1 or 2.
	back := make([]time.Duration, *n)
	broke := make([]time.Duration, *n) // when each client saw its connection break
	var attempts atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{}
	cpu0 := [2]time.Duration{}
	for j, p := range nodes[1:] {
		cpu0[j], _ = loadtest.ProcessCPU(p.Cmd.Process.Pid)
	}
	killed := time.Now()
	victim.Cmd.Process.Signal(syscall.SIGKILL)
	for i := range *n {
		wg.Go(func() {
			conns[i].Next(ctx) // until it breaks
			broke[i] = time.Since(killed)
			conns[i].CloseNow()
			clients[i].Skip(victim.URL) // as hush does: the others first
			wait := *backoff
			if *likeHush {
				wait = 4 * time.Second
			}
			for ctx.Err() == nil {
				w := wait
				switch {
				case *likeHush: // recv.go, reconnectWait
					w = 500*time.Millisecond + mrand.N(wait)
				case *jitter > 0:
					w += mrand.N(*jitter)
				}
				select {
				case <-time.After(w):
				case <-ctx.Done():
					return
				}
				if *likeHush {
					wait = min(2*wait, 60*time.Second)
				} else {
					wait = min(2*wait, 30*time.Second)
				}
				attempts.Add(1)
				conn, err := clients[i].Connect(ctx)
				if err == nil {
					if _, err = conn.Next(ctx); err != nil {
						conn.CloseNow()
					}
				}
				if err != nil {
					// Each node tried: the victim's refusal is expected.
					errs := []error{err}
					var fe *apiclient.FailoverError
					if errors.As(err, &fe) {
						errs = fe.Unwrap()
					}
					errMu.Lock()
					for _, e := range errs {
						if k := errKind(e); k != "refused" {
							errKinds[k]++
						}
					}
					errMu.Unlock()
					continue
				}
				back[i] = time.Since(killed)
				conns[i] = conn
				return
			}
		})
	}
	wg.Wait()
	all := time.Since(killed)
	loadAfter := loadavg()
	var cpu [2]time.Duration
	for j, p := range nodes[1:] {
		c, _ := loadtest.ProcessCPU(p.Cmd.Process.Pid)
		cpu[j] = c - cpu0[j]
	}
	nodes = nodes[1:] // the victim is gone
	victim.Stop()
	var ok []time.Duration
	for _, d := range back {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	slices.Sort(ok)
	conn1, _ := hushd(nodes[0]).Metric(ctx, "hushd_websocket_connections")
	conn2, _ := hushd(nodes[1]).Metric(ctx, "hushd_websocket_connections")
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
	if len(ok) == 0 {
		return errors.New("no client reconnected")
	}
	pct := func(p float64) float64 { return ok[min(len(ok)-1, int(p*float64(len(ok))))].Seconds() }
	waits := fmt.Sprintf("first wait %v, jitter %v", *backoff, *jitter)
	if *likeHush {
		waits = "hush's waits"
	}
	fmt.Printf("storm: %d of %d clients back in %.1fs (%s): p50 %.2fs, p99 %.2fs, max %.2fs; %d attempts; "+
		"nodes 1 and 2 hold %.0f + %.0f WebSockets; their CPU during the storm %.1fs + %.1fs\n",
		len(ok), *n, all.Seconds(), waits, pct(0.5), pct(0.99), ok[len(ok)-1].Seconds(), attempts.Load(),
		conn1, conn2, cpu[0].Seconds(), cpu[1].Seconds())
	slices.Sort(broke)
	fmt.Printf("the clients saw their connections break after %.2fs (p50) to %.2fs (last)\n", broke[len(broke)/2].Seconds(), broke[len(broke)-1].Seconds())
	fmt.Printf("CPU of nodes 1 and 2 per client back: %.2f ms\n", float64((cpu[0]+cpu[1]).Microseconds())/1000/float64(len(ok)))
	if len(errKinds) > 0 {
		fmt.Printf("failed tries of nodes 1 and 2: %v\n", errKinds)
	}
	fmt.Printf("load after: %s\n", loadAfter)
	if len(ok) < *n {
		return fmt.Errorf("%d clients did not reconnect", *n-len(ok))
	}
	if last := ok[len(ok)-1]; last > *within {
		return fmt.Errorf("the last client was back after %.1fs, over the goal of %v", last.Seconds(), *within)
	}
	return nil
}

// freshSchema creates schema in the database at base and returns base
// with that schema as its search_path, and a function dropping it.
func freshSchema(ctx context.Context, base, schema string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("--store: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("--store: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("--store: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// loadavg is the machine's load (/proc/loadavg): the machine is shared,
// and the figures mean little without it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + " (1, 5, 15 min)"
}

// errKind sorts a failed reconnection: what bounds a storm shows in
// which of these dominate.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return "api:" + ae.Code
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 { // the innermost cause
		s = s[i+2:]
	}
	return s
}

// startCluster starts three hushd nodes presenting one certificate, on a
// fresh schema of the PostgreSQL database at store and a NATS prefix of
// their own. profiles[i], if set, is node i's --cpu-profile. stop stops the
// nodes it is given (a killed one left out), drops the schema and removes
// the data folders.
func startCluster(ctx context.Context, bin, store, nats string, profiles []string) (nodes []*loadtest.Process, stop func([]*loadtest.Process), err error) {
	b := make([]byte, 6)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	storeURL, dropSchema, err := freshSchema(ctx, store, "hushload_"+tag)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "hush-load-")
	if err != nil {
		dropSchema()
		return nil, nil, err
	}
	stop = func(ps []*loadtest.Process) {
		for _, p := range ps {
			p.Stop()
		}
		dropSchema()
		os.RemoveAll(dir)
	}
	// The first node makes the certificate (self-signed, in its data
	// folder), the others are given it.
	common := []string{"--addr", "127.0.0.1:0", "--store", storeURL, "--nats", nats, "--nats-prefix", "hushload" + tag,
		"--log-level", "error", "--limit-register", "0", "--limit-messages", "0", "--limit-messages-pair", "0", "--limit-bytes", "0", "--limit-group-copies", "0",
		"--argon2-time", "1", "--argon2-memory", "8", "--max-queue", "1000000", "--max-queue-per-sender", "1000000",
		"--max-conns-per-addr", "0", "--poll-interval", "1h"}
	for i := range 3 {
		args := append(slices.Clone(common), "--data", filepath.Join(dir, fmt.Sprint("node", i)))
		if i > 0 {
			d0 := filepath.Join(dir, "node0")
			args = append(args, "--tls-cert", filepath.Join(d0, "tls-cert.pem"), "--tls-key", filepath.Join(d0, "tls-key.pem"))
		}
		if i < len(profiles) && profiles[i] != "" {
			args = append(args, "--cpu-profile", profiles[i])
		}
		p, err := loadtest.StartHushd(bin, os.Stderr, args...)
		if err != nil {
			stop(nodes)
			return nil, nil, fmt.Errorf("node %d: %w", i, err)
		}
		nodes = append(nodes, p)
	}
	return nodes, stop, nil
}
