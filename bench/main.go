// Command bench runs one workload through hushd and through an embedded
// NATS JetStream server (file-backed stream, publish with ack, durable pull
// consumers with explicit ack, the same window of unacknowledged messages
// per sender), once with JetStream's default sync and once with
// sync_interval: always, and prints the figures side by side.
//
// It is its own module so that nats-server stays out of hush's go.mod.
//
//	go build -o /tmp/hushd ./cmd/hushd && cd bench && go run . --hushd-bin /tmp/hushd
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hushmsg/hush/internal/loadtest"
)

func main() {
	bin := flag.String("hushd-bin", "", "hushd binary to start on a fresh data folder (required)")
	systems := flag.String("systems", "hushd,jetstream,jetstream-always", "systems to run, comma-separated")
	pgURL := flag.String("postgres", "", "PostgreSQL URL for the system hushd-postgres (hushd --store; use a fresh database or schema)")
	plaintext := flag.Bool("plaintext", false, "run hushd without TLS (JetStream runs without TLS in any case)")
	var w loadtest.Workload
	flag.IntVar(&w.Pairs, "pairs", 100, "sender/receiver pairs")
	flag.IntVar(&w.Messages, "messages", 200000, "messages in all (without --rate)")
	flag.IntVar(&w.Size, "size", 256, "message size in bytes")
	flag.IntVar(&w.Window, "window", 32, "unacknowledged sends per sender")
	flag.Float64Var(&w.Rate, "rate", 0, "total messages per second (0: as fast as possible)")
	flag.DurationVar(&w.Duration, "duration", 30*time.Second, "run time with --rate")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up on one system after")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "bench: --hushd-bin is required")
		os.Exit(2)
	}
	var l syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	if want := uint64(8*w.Pairs + 1000); l.Cur < want {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(want, l.Max)})
	}
	var results []loadtest.Result
	failed := false
	for _, name := range strings.Split(*systems, ",") {
		r, err := runOne(name, *bin, *pgURL, *plaintext, w, *timeout)
		fmt.Println(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", name+":", err)
			failed = true
		}
		results = append(results, r)
	}
	for i, a := range results {
		if !strings.HasPrefix(a.System, "hushd") {
			continue
		}
		for _, b := range results[i+1:] {
			if b.PerSecond > 0 {
				fmt.Printf("%s / %s: %.2fx\n", a.System, b.System, a.PerSecond/b.PerSecond)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

func runOne(name, bin, pgURL string, plaintext bool, w loadtest.Workload, timeout time.Duration) (loadtest.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "hush-bench-")
	if err != nil {
		return loadtest.Result{}, err
	}
	defer os.RemoveAll(dir)
	switch name {
	case "hushd", "hushd-postgres":
		args := []string{"--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "hushd"), "--log-level", "warn",
			"--limit-register", "0", "--limit-messages", "0", "--limit-messages-pair", "0", "--limit-bytes", "0",
			"--argon2-time", "1", "--argon2-memory", "8", "--max-queue", "1000000", "--max-conns-per-addr", "0"}
		if plaintext {
			args = append(args, "--insecure-plaintext")
		}
		if name == "hushd-postgres" {
			if pgURL == "" {
				return loadtest.Result{}, fmt.Errorf("hushd-postgres needs --postgres URL")
			}
			args = append(args, "--store", pgURL)
		}
		p, err := loadtest.StartHushd(bin, os.Stderr, args...)
		if err != nil {
			return loadtest.Result{}, err
		}
		defer p.Stop()
		r, err := loadtest.Run(ctx, &loadtest.Hushd{URL: p.URL, Fingerprint: p.Fingerprint}, w)
		r.System = name
		return r, err
	case "jetstream", "jetstream-always":
		js, err := newJetStream(filepath.Join(dir, "js"), name == "jetstream-always", w.Window)
		if err != nil {
			return loadtest.Result{}, err
		}
		defer js.shutdown()
		return loadtest.Run(ctx, js, w)
	}
	return loadtest.Result{}, fmt.Errorf("unknown system %q", name)
}

// jetStream is an embedded NATS server with JetStream on disk.
type jetStream struct {
	srv    *server.Server
	name   string
	window int

	mu    sync.Mutex
	conns []*nats.Conn
	ccs   []jetstream.ConsumeContext
}

func newJetStream(dir string, always bool, window int) (*jetStream, error) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		MaxPayload: 1 << 20}
	name := "jetstream (default sync)"
	if always {
		opts.SyncAlways = true
		name = "jetstream (sync always)"
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("nats-server did not start")
	}
	return &jetStream{srv: s, name: name, window: window}, nil
}

func (j *jetStream) Name() string { return j.name }

func (j *jetStream) connect() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(j.srv.ClientURL())
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(j.window))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	j.mu.Lock()
	j.conns = append(j.conns, nc)
	j.mu.Unlock()
	return nc, js, nil
}

// Setup creates a file-backed work-queue stream (a message is deleted once
// acknowledged, as in a mailbox) and one durable pull consumer per
// receiver.
func (j *jetStream) Setup(ctx context.Context, n int) error {
	_, js, err := j.connect()
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy}); err != nil {
		return err
	}
	for i := range n {
		if _, err := js.CreateOrUpdateConsumer(ctx, "MAIL", jetstream.ConsumerConfig{Durable: fmt.Sprintf("r%d", i),
			FilterSubject: fmt.Sprintf("mail.%d", i), AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000}); err != nil {
			return err
		}
	}
	return nil
}

// Open connects a publisher and a consumer for pair i, each on its own
// connection, as hushd's pairs use two WebSockets.
func (j *jetStream) Open(ctx context.Context, i int, onSent func(), onRecv func([]byte)) (func([]byte) error, error) {
	_, pub, err := j.connect()
	if err != nil {
		return nil, err
	}
	_, sub, err := j.connect()
	if err != nil {
		return nil, err
	}
	cons, err := sub.Consumer(ctx, "MAIL", fmt.Sprintf("r%d", i))
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		onRecv(m.Data())
		m.Ack()
	})
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.ccs = append(j.ccs, cc)
	j.mu.Unlock()
	subject := fmt.Sprintf("mail.%d", i)
	return func(b []byte) error {
		f, err := pub.PublishAsync(subject, b)
		if err != nil {
			return err
		}
		go func() {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				fmt.Fprintln(os.Stderr, "jetstream publish:", err)
			}
			onSent()
		}()
		return nil
	}, nil
}

func (j *jetStream) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, cc := range j.ccs {
		cc.Stop()
	}
	for _, nc := range j.conns {
		nc.Close()
	}
	j.ccs, j.conns = nil, nil
	return nil
}

func (j *jetStream) shutdown() {
	j.srv.Shutdown()
	j.srv.WaitForShutdown()
}
