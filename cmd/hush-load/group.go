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

// group measures hushd's fan-out of one message to every member of a
// group (issue 10): one group send (POST /v1/groups/messages) against the
// same number of one-to-one sends, in alternating rounds on one hushd.
func group(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load group", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "start this hushd binary on a fresh data folder")
	url := fs.String("url", "", "URL of a running hushd (started with the limits of `run` off, and --limit-group-copies 0)")
	fp := fs.String("fingerprint", "", "its certificate fingerprint")
	pid := fs.Int("hushd-pid", 0, "with --url: the process id of that hushd, to report its CPU time per delivery")
	var w loadtest.FanoutWorkload
	fs.IntVar(&w.Members, "members", 1000, "members of the group (one device each)")
	fs.IntVar(&w.Rounds, "rounds", 20, "measured rounds of each kind (after one warm-up round each)")
	fs.IntVar(&w.Size, "size", 256, "message size in bytes")
	fs.IntVar(&w.Window, "window", 256, "one-to-one sends in flight")
	bench := fs.String("bench-out", "", "also write the rounds as Go benchmark lines to this file (benchstat -col /kind FILE)")
	plaintext := fs.Bool("plaintext", false, "with --hushd-bin: run hushd with --insecure-plaintext (no TLS)")
	profile := fs.String("cpu-profile", "", "with --hushd-bin: hushd writes a CPU profile here")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after")
	store := fs.String("store", "", "with --nats and --hushd-bin: run three nodes on this PostgreSQL `URL` (a fresh schema, removed at the end) and NATS, the sender on the first and the members spread over all three")
	nats := fs.String("nats", "", "NATS `URL`, with --store")
	fs.Parse(args)
	raiseFileLimit(uint64(2*w.Members + 1000))
	var extra []string
	if *plaintext {
		extra = append(extra, "--insecure-plaintext")
	}
	if *profile != "" {
		extra = append(extra, "--cpu-profile", *profile)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var h *loadtest.Hushd
	if *store != "" || *nats != "" {
		if *bin == "" || *store == "" || *nats == "" {
			return errors.New("a cluster needs --hushd-bin, --store and --nats")
		}
		nodes, stop, err := startCluster(ctx, *bin, *store, *nats, nil)
		if err != nil {
			return err
		}
		defer stop(nodes)
		h = &loadtest.Hushd{URL: nodes[0].URL, Fingerprint: nodes[0].Fingerprint}
		for _, n := range nodes {
			h.URLs = append(h.URLs, n.URL)
		}
		w.CPU = func() (t time.Duration) {
			for _, n := range nodes {
				d, _ := loadtest.ProcessCPU(n.Cmd.Process.Pid)
				t += d
			}
			return t
		}
	} else {
		p, u, f, stop, err := server(*bin, *url, *fp, extra...)
		if err != nil {
			return err
		}
		defer stop()
		if p != nil {
			*pid = p.Cmd.Process.Pid
		}
		if *pid != 0 {
			w.CPU = func() time.Duration {
				d, _ := loadtest.ProcessCPU(*pid)
				return d
			}
		}
		h = &loadtest.Hushd{URL: u, Fingerprint: f}
	}
	fmt.Printf("load before: %s\n", loadavg())
	r, err := h.Fanout(ctx, w)
	fmt.Print(r)
	fmt.Printf("load after: %s\n", loadavg())
	if *bench != "" {
		if werr := os.WriteFile(*bench, []byte(r.Benchstat()), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
