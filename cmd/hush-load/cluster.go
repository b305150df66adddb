package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hushmsg/hush/internal/loadtest"
)

// cluster runs the workload of `run` on three hushd nodes on PostgreSQL
// and NATS (issue 12): every pair's sender and receiver are on different
// nodes, so each message is committed by one node and delivered by
// another, woken over NATS. It reports the nodes' CPU time per message.
func cluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load cluster", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "the hushd binary to run three nodes of")
	store := fs.String("store", os.Getenv("HUSH_TEST_POSTGRES"), "PostgreSQL `URL` of a database to make a fresh schema in (removed at the end); default $HUSH_TEST_POSTGRES")
	nats := fs.String("nats", os.Getenv("HUSH_TEST_NATS"), "NATS `URL`; default $HUSH_TEST_NATS")
	var w loadtest.Workload
	fs.IntVar(&w.Pairs, "pairs", 100, "sender/receiver pairs")
	fs.IntVar(&w.Messages, "messages", 100000, "messages in all (without --rate)")
	fs.IntVar(&w.Size, "size", 256, "message size in bytes")
	fs.IntVar(&w.Window, "window", 32, "unacknowledged sends per sender")
	fs.Float64Var(&w.Rate, "rate", 0, "total messages per second (0: as fast as possible)")
	fs.DurationVar(&w.Duration, "duration", 30*time.Second, "run time with --rate")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	fs.Parse(args)
	if *bin == "" || *store == "" || *nats == "" {
		return errors.New("give --hushd-bin, --store postgres://... and --nats nats://... (or set HUSH_TEST_POSTGRES and HUSH_TEST_NATS)")
	}
	raiseFileLimit(uint64(4*w.Pairs + 1000))
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nodes, stop, err := startCluster(ctx, *bin, *store, *nats, nil)
	if err != nil {
		return err
	}
	defer stop(nodes)
	h := &loadtest.Hushd{URL: nodes[0].URL, Fingerprint: nodes[0].Fingerprint}
	for _, p := range nodes {
		h.URLs = append(h.URLs, p.URL)
	}
	cpu := func() (t [3]time.Duration) {
		for i, p := range nodes {
			t[i], _ = loadtest.ProcessCPU(p.Cmd.Process.Pid)
		}
		return t
	}
	var cpu0 [3]time.Duration
	var self0 time.Duration
	w.Started = func() { cpu0, self0 = cpu(), selfCPU() }
	fmt.Printf("load before: %s\n", loadavg())
	r, err := loadtest.Run(ctx, h, w)
	cpu1, self := cpu(), selfCPU()-self0
	fmt.Println(r)
	n := float64(max(r.Received, 1))
	var total time.Duration
	for i := range cpu1 {
		d := cpu1[i] - cpu0[i]
		total += d
		fmt.Printf("node %d CPU %.2fs; ", i, d.Seconds())
	}
	fmt.Printf("nodes together %.1f µs/msg; hush-load %.1f µs/msg\n", float64(total.Microseconds())/n, float64(self.Microseconds())/n)
	fmt.Printf("load after: %s\n", loadavg())
	return err
}
