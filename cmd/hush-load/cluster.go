package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hushmsg/hush/internal/loadtest"
)

// cluster runs the workload of `run` on three hushd nodes on PostgreSQL
// and NATS (issue 12): every pair's sender and receiver are on different
// nodes, so each message is committed by one node and delivered by
// another, woken over NATS. It reports the CPU time per message of the
// nodes, of PostgreSQL (the nodes' backends, and its WAL writer,
// checkpointer and background writer) and of the NATS server when they
// run on this machine, and the nodes' group commits.
func cluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hush-load cluster", flag.ExitOnError)
	bin := fs.String("hushd-bin", "", "the hushd binary to run three nodes of")
	store := fs.String("store", os.Getenv("HUSH_TEST_POSTGRES"), "PostgreSQL `URL` of a database to make a fresh schema in (removed at the end); default $HUSH_TEST_POSTGRES")
	nats := fs.String("nats", os.Getenv("HUSH_TEST_NATS"), "NATS `URL`; default $HUSH_TEST_NATS")
	profile := fs.String("cpu-profile", "", "write node i's CPU profile to `PREFIX`i")
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
	// The nodes' connections carry an application_name of their own, by
	// which their PostgreSQL backends are found.
	app := fmt.Sprintf("hushload_cluster_%d", os.Getpid())
	u, err := url.Parse(*store)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	var profiles []string
	if *profile != "" {
		profiles = []string{*profile + "0", *profile + "1", *profile + "2"}
	}
	pgc, err := pgx.Connect(ctx, *store)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	defer pgc.Close(context.Background())
	before := schemas(ctx, pgc)
	nodes, stop, err := startCluster(ctx, *bin, u.String(), *nats, profiles)
	if err != nil {
		return err
	}
	defer stop(nodes)
	var schema string // the fresh one, to read its tables' statistics
	for s := range schemas(ctx, pgc) {
		if !before[s] {
			schema = s
		}
	}
	h := &loadtest.Hushd{URL: nodes[0].URL, Fingerprint: nodes[0].Fingerprint}
	var hs []*loadtest.Hushd
	for _, p := range nodes {
		h.URLs = append(h.URLs, p.URL)
		hs = append(hs, &loadtest.Hushd{URL: p.URL, Fingerprint: p.Fingerprint})
	}
	cpu := func() (t [3]time.Duration) {
		for i, p := range nodes {
			t[i], _ = loadtest.ProcessCPU(p.Cmd.Process.Pid)
		}
		return t
	}
	commits := func() (c [3][3]float64) { // seconds, commits, operations
		for i, n := range hs {
			c[i][0], _ = n.Metric(ctx, "hushd_store_commit_seconds_sum")
			c[i][1], _ = n.Metric(ctx, "hushd_store_commit_seconds_count")
			c[i][2], _ = n.Metric(ctx, "hushd_store_commit_operations_sum")
		}
		return c
	}
	tables := func() map[string][3]int64 { // seq_scan, seq_tup_read, idx_scan
		rows, err := pgc.Query(ctx, `SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) FROM pg_stat_user_tables
			WHERE schemaname = $1 AND relname IN ('messages', 'devices')`, schema)
		if err != nil {
			return nil
		}
		out := make(map[string][3]int64)
		var name string
		var v [3]int64
		pgx.ForEachRow(rows, []any{&name, &v[0], &v[1], &v[2]}, func() error { out[name] = v; return nil })
		return out
	}
	natsPID := processNamed("nats-server")
	natsCPU := func() time.Duration {
		if natsPID == 0 {
			return 0
		}
		t, _ := loadtest.ProcessCPU(natsPID)
		return t
	}
	var cpu0 [3]time.Duration
	var self0, nats0 time.Duration
	var pg0 map[int]pgProc
	var com0 [3][3]float64
	var tab0 map[string][3]int64
	w.Started = func() {
		cpu0, self0, pg0, com0, tab0, nats0 = cpu(), selfCPU(), pgCPU(ctx, pgc, app), commits(), tables(), natsCPU()
	}
	fmt.Printf("load before: %s\n", loadavg())
	r, err := loadtest.Run(ctx, h, w)
	cpu1, self, pg1, com1, tab1, natsUsed := cpu(), selfCPU()-self0, pgCPU(ctx, pgc, app), commits(), tables(), natsCPU()-nats0
	fmt.Println(r)
	n := float64(max(r.Received, 1))
	var total time.Duration
	for i := range cpu1 {
		d := cpu1[i] - cpu0[i]
		total += d
		fmt.Printf("node %d CPU %.2fs; ", i, d.Seconds())
	}
	fmt.Printf("nodes together %.1f µs/msg; hush-load %.1f µs/msg\n", float64(total.Microseconds())/n, float64(self.Microseconds())/n)
	var backends, aux time.Duration
	var nb int
	for pid, p := range pg1 {
		d := p.cpu - pg0[pid].cpu // a process started during the run counts whole
		if p.kind == "client backend" {
			backends += d
			nb++
		} else {
			aux += d
		}
	}
	fmt.Printf("PostgreSQL CPU: the nodes' %d backends %.2fs = %.1f µs/msg; WAL writer, checkpointer, background writer %.2fs = %.1f µs/msg\n",
		nb, backends.Seconds(), float64(backends.Microseconds())/n, aux.Seconds(), float64(aux.Microseconds())/n)
	if natsPID != 0 {
		fmt.Printf("NATS server (pid %d, anyone's use of it included) %.2fs = %.1f µs/msg\n", natsPID, natsUsed.Seconds(), float64(natsUsed.Microseconds())/n)
	}
	cl := total + backends + aux + natsUsed
	fmt.Printf("the cluster (nodes, PostgreSQL, NATS) %.2fs = %.1f µs/msg: %.0f msg/s per core; with hush-load %.1f µs/msg\n",
		cl.Seconds(), float64(cl.Microseconds())/n, n/cl.Seconds(), float64((cl+self).Microseconds())/n)
	for i := range com1 {
		s, c, o := com1[i][0]-com0[i][0], com1[i][1]-com0[i][1], com1[i][2]-com0[i][2]
		if c > 0 {
			fmt.Printf("node %d: %.0f group commits, %.2f ms each, %.1f sends each; ", i, c, 1000*s/c, o/c)
		}
	}
	fmt.Println()
	for _, t := range []string{"messages", "devices"} {
		a, b := tab0[t], tab1[t]
		fmt.Printf("%s: %d sequential scans reading %d rows, %d index scans; ", t, b[0]-a[0], b[1]-a[1], b[2]-a[2])
	}
	fmt.Println()
	fmt.Printf("load after: %s\n", loadavg())
	return err
}

// processNamed returns the pid of a process of this machine whose command
// is name, 0 if there is none (or several).
func processNamed(name string) int {
	ents, _ := os.ReadDir("/proc")
	pid := 0
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(b)) == name {
			if pid != 0 {
				return 0
			}
			pid = n
		}
	}
	return pid
}

// schemas returns the hushload_ schemas of the database.
func schemas(ctx context.Context, c *pgx.Conn) map[string]bool {
	out := make(map[string]bool)
	rows, err := c.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hushload\_%'`)
	if err != nil {
		return out
	}
	var s string
	pgx.ForEachRow(rows, []any{&s}, func() error { out[s] = true; return nil })
	return out
}

type pgProc struct {
	kind string
	cpu  time.Duration
}

// pgCPU returns the CPU time of the PostgreSQL backends whose
// application_name is app and of its background processes that work for
// every client (WAL writer, checkpointer, background writer), by pid. It
// reads /proc, so PostgreSQL must run on this machine.
func pgCPU(ctx context.Context, c *pgx.Conn, app string) map[int]pgProc {
	rows, err := c.Query(ctx, `SELECT pid, backend_type FROM pg_stat_activity
		WHERE application_name = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`, app)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg_stat_activity:", err)
		return nil
	}
	out := make(map[int]pgProc)
	var pid int
	var kind string
	_, err = pgx.ForEachRow(rows, []any{&pid, &kind}, func() error {
		t, err := loadtest.ProcessCPU(pid)
		if err == nil {
			out[pid] = pgProc{kind: strings.TrimSpace(kind), cpu: t}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg_stat_activity:", err)
	}
	return out
}
