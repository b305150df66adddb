// Command hushd is hush's server: accounts, the prekey directory and
// durable mailboxes for end-to-end encrypted messages, over HTTPS and
// WebSocket, with its state in one SQLite database in its data folder, or,
// for a cluster of nodes, in PostgreSQL (--store postgres://...).
//
// Usage:
//
//	hushd [flags]                        serve
//	hushd fingerprint --data DIR         print the certificate's SHA-256
//	hushd fingerprint --tls-cert FILE    the same, for a given certificate
//	hushd migrate --store URL            bring a PostgreSQL schema up to date
//	hushd backup --data DIR --to FILE    copy the SQLite database, while hushd runs
//	hushd franking-key rotate --data DIR add a franking key; hushd uses it after SIGHUP or a restart
//	hushd reports list --data DIR [--json]    the abuse reports (--store URL for PostgreSQL)
//	hushd reports show ID --data DIR [--json] one report
//
// Every flag can also be set with the environment variable named in
// `hushd --help`; a flag given on the command line wins.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	pprofhttp "net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hushmsg/hush/internal/buildinfo"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/cluster"
	"github.com/hushmsg/hush/internal/server/connlimit"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/memtrim"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store/pgstore"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hushd: error:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line or the environment's
// settings: exit code 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// config is every setting, filled by flags and environment variables.
type config struct {
	addr, data, storeURL                         string
	frankingKeys                                 string
	natsURL, natsPrefix                          string
	pollInterval                                 time.Duration
	tlsCert, tlsKey                              string
	insecurePlaintext                            bool
	logLevel, logFormat                          string
	maxMessageBytes, maxQueue, maxQueuePerSender int
	maxDevices                                   int
	maxHistoryRecords                            int
	maxConnsPerAddr                              int
	messageTTL                                   time.Duration
	shutdownTimeout                              time.Duration
	limits                                       server.Limits
	argon2Time, argon2Memory                     int
	cpuProfile, debugAddr                        string
	version                                      bool
	trustedProxy                                 string
	blobQuota                                    int64
	blobQuotaCount                               int
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hushd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "hushd")
	}
	return "hushd-data"
}

// flags declares every flag on fs with its environment variable.
func flags(fs *flag.FlagSet, c *config) {
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+env+")")
		envs[name] = env
	}
	fs.BoolVar(&c.version, "version", false, "print hushd's version and VCS revision, and exit")
	str(&c.addr, "addr", "HUSHD_ADDR", ":8443", "listen on `HOST:PORT`")
	str(&c.data, "data", "HUSHD_DATA", defaultDataDir(), "data `folder`: database, blob files (attachments) and self-signed certificate")
	str(&c.storeURL, "store", "HUSHD_STORE", "", "PostgreSQL `URL` (postgres://...) shared by the nodes of a cluster; default: SQLite in the data folder")
	str(&c.frankingKeys, "franking-keys", "HUSHD_FRANKING_KEYS", "",
		"franking keyring `file` (docs/franking.md), the same on every node of a cluster; default: franking-keys in the data folder, made if missing")
	str(&c.natsURL, "nats", "HUSHD_NATS", "", "NATS `URL`s (comma-separated) linking the nodes of a cluster, with --store")
	str(&c.natsPrefix, "nats-prefix", "HUSHD_NATS_PREFIX", "hush", "NATS subject `prefix`: one per cluster sharing a NATS")
	str(&c.tlsCert, "tls-cert", "HUSHD_TLS_CERT", "", "TLS certificate `file` (PEM); default: self-signed, in the data folder")
	str(&c.tlsKey, "tls-key", "HUSHD_TLS_KEY", "", "TLS private key `file` (PEM), with --tls-cert")
	fs.BoolVar(&c.insecurePlaintext, "insecure-plaintext", false,
		"serve plain HTTP without TLS; only allowed on a loopback address, for tests (env HUSHD_INSECURE_PLAINTEXT)")
	envs["insecure-plaintext"] = "HUSHD_INSECURE_PLAINTEXT"
	str(&c.cpuProfile, "cpu-profile", "HUSHD_CPU_PROFILE", "", "write a CPU profile to `file` until shutdown (for performance work)")
	str(&c.trustedProxy, "trusted-proxy", "HUSHD_TRUSTED_PROXY", "",
		"believe X-Forwarded-For only from these reverse proxies (`CIDR[,CIDR]`, e.g. 127.0.0.1/32); by default from nobody")
	str(&c.debugAddr, "debug-addr", "HUSHD_DEBUG_ADDR", "", "serve Go's /debug/pprof on this loopback `HOST:PORT` (for performance work)")
	str(&c.logLevel, "log-level", "HUSHD_LOG_LEVEL", "info", "log `level`: debug, info, warn, error")
	str(&c.logFormat, "log-format", "HUSHD_LOG_FORMAT", "text", "log `format`: text or json")
	num := func(p *int, name, env string, def int, usage string) {
		fs.IntVar(p, name, def, usage+" (env "+env+")")
		envs[name] = env
	}
	num(&c.maxMessageBytes, "max-message-bytes", "HUSHD_MAX_MESSAGE_BYTES", 256<<10, "largest message content in `bytes`")
	num(&c.maxQueue, "max-queue", "HUSHD_MAX_QUEUE", 10000, "most undelivered `messages` per device")
	num(&c.maxQueuePerSender, "max-queue-per-sender", "HUSHD_MAX_QUEUE_PER_SENDER", 0,
		"most undelivered `messages` per device from one sender account; 0: a tenth of --max-queue")
	num(&c.maxDevices, "max-devices", "HUSHD_MAX_DEVICES", 16, "most `devices` per account")
	num(&c.maxHistoryRecords, "max-history-records", "HUSHD_MAX_HISTORY_RECORDS", 1000000, "most history `records` per account")
	num(&c.maxConnsPerAddr, "max-conns-per-addr", "HUSHD_MAX_CONNS_PER_ADDR", 256,
		"most open `connections` per client address (an IPv4 address or an IPv6 /64), or 0 for no limit")
	fs.Int64Var(&c.blobQuota, "blob-quota", server.DefaultBlobQuota, "most `bytes` of blobs (attachments) one account holds at a time (env HUSHD_BLOB_QUOTA)")
	envs["blob-quota"] = "HUSHD_BLOB_QUOTA"
	num(&c.blobQuotaCount, "blob-quota-count", "HUSHD_BLOB_QUOTA_COUNT", server.DefaultBlobQuotaCount, "most `blobs` one account holds at a time")
	num(&c.argon2Time, "argon2-time", "HUSHD_ARGON2_TIME", 2, "Argon2id passes for password hashes (lower only for load tests)")
	num(&c.argon2Memory, "argon2-memory", "HUSHD_ARGON2_MEMORY", 19*1024, "Argon2id memory in `KiB` for password hashes (lower only for load tests)")
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
		envs[name] = env
	}
	dur(&c.messageTTL, "message-ttl", "HUSHD_MESSAGE_TTL", 30*24*time.Hour, "how long an undelivered message is kept (`duration`)")
	dur(&c.pollInterval, "poll-interval", "HUSHD_POLL_INTERVAL", 10*time.Second, "in a cluster, how often each session rereads its mailbox in case a wake-up was lost (`duration`)")
	dur(&c.shutdownTimeout, "shutdown-timeout", "HUSHD_SHUTDOWN_TIMEOUT", 30*time.Second, "how long a graceful shutdown may take (`duration`)")
	lim := func(p *ratelimit.Limit, name, env string, def ratelimit.Limit, usage string) {
		*p = def
		fs.Var((*limitFlag)(p), name, usage+"; RATE/UNIT,BURST with UNIT s, m or h, or 0 for none (env "+env+")")
		envs[name] = env
	}
	d := server.DefaultLimits
	lim(&c.limits.RegisterPerIP, "limit-register", "HUSHD_LIMIT_REGISTER", d.RegisterPerIP, "registrations per client address (IPv4, IPv6 /64)")
	lim(&c.limits.LoginPerIP, "limit-login-ip", "HUSHD_LIMIT_LOGIN_IP", d.LoginPerIP, "password checks per client address (IPv4, IPv6 /64)")
	lim(&c.limits.LoginPerUser, "limit-login-user", "HUSHD_LIMIT_LOGIN_USER", d.LoginPerUser, "password checks per username")
	lim(&c.limits.BundlePerPair, "limit-bundle-pair", "HUSHD_LIMIT_BUNDLE_PAIR", d.BundlePerPair, "prekey bundle fetches per requester and target")
	lim(&c.limits.BundlePerUser, "limit-bundle-user", "HUSHD_LIMIT_BUNDLE_USER", d.BundlePerUser, "prekey bundle fetches per requester")
	lim(&c.limits.BundlePerTarget, "limit-bundle-target", "HUSHD_LIMIT_BUNDLE_TARGET", d.BundlePerTarget, "prekey bundle fetches per target, by anyone")
	lim(&c.limits.LookupPerUser, "limit-lookup", "HUSHD_LIMIT_LOOKUP", d.LookupPerUser, "directory lookups per requester")
	lim(&c.limits.MessagesPerDev, "limit-messages", "HUSHD_LIMIT_MESSAGES", d.MessagesPerDev, "messages per sending device")
	lim(&c.limits.MessagesPerPair, "limit-messages-pair", "HUSHD_LIMIT_MESSAGES_PAIR", d.MessagesPerPair, "messages per sender and recipient account")
	lim(&c.limits.BytesPerDev, "limit-bytes", "HUSHD_LIMIT_BYTES", d.BytesPerDev, "message bytes per sending device")
	lim(&c.limits.GroupCopiesPerDev, "limit-group-copies", "HUSHD_LIMIT_GROUP_COPIES", d.GroupCopiesPerDev, "group message copies (one per recipient device) per sending device")
	lim(&c.limits.HistoryPerDev, "limit-history", "HUSHD_LIMIT_HISTORY", d.HistoryPerDev, "history records (and recovery blobs) stored per device")
	lim(&c.limits.LinkPerIP, "limit-link-ip", "HUSHD_LIMIT_LINK_IP", d.LinkPerIP, "link code requests (hello, box, device) per client address (IPv4, IPv6 /64)")
	lim(&c.limits.LinkPerLink, "limit-link", "HUSHD_LIMIT_LINK", d.LinkPerLink, "link code requests (hello, box, device) per link")
	lim(&c.limits.ReportsPerUser, "limit-reports", "HUSHD_LIMIT_REPORTS", d.ReportsPerUser, "abuse reports per account")
	lim(&c.limits.HistoryBytesPerDev, "limit-history-bytes", "HUSHD_LIMIT_HISTORY_BYTES", d.HistoryBytesPerDev, "history record (and recovery blob) bytes per device")
	lim(&c.limits.BlobRequestsPerDev, "limit-blob-requests", "HUSHD_LIMIT_BLOB_REQUESTS", d.BlobRequestsPerDev, "blob requests (create, chunk, state, download, delete) per device")
	lim(&c.limits.BlobsPerDev, "limit-blobs", "HUSHD_LIMIT_BLOBS", d.BlobsPerDev, "blobs created per device")
	lim(&c.limits.BlobBytesPerAcct, "limit-blob-bytes", "HUSHD_LIMIT_BLOB_BYTES", d.BlobBytesPerAcct, "blob bytes uploaded per account")
	lim(&c.limits.BlobDownloadPerDev, "limit-blob-download", "HUSHD_LIMIT_BLOB_DOWNLOAD", d.BlobDownloadPerDev, "blob bytes downloaded per device")
}

// envs maps flag names to their environment variables.
var envs = map[string]string{}

// limitFlag parses "RATE/UNIT,BURST", e.g. "10/m,20".
type limitFlag ratelimit.Limit

func (l *limitFlag) String() string {
	if l == nil || l.Rate == 0 {
		return "0"
	}
	rate, unit := l.Rate, "s"
	if rate < 1 {
		rate, unit = rate*60, "m"
	}
	if rate < 1 {
		rate, unit = rate*60, "h"
	}
	return strconv.FormatFloat(rate, 'f', -1, 64) + "/" + unit + "," + strconv.FormatFloat(l.Burst, 'f', -1, 64)
}

func (l *limitFlag) Set(s string) error {
	if s == "0" {
		*l = limitFlag{}
		return nil
	}
	rate, burst, ok := strings.Cut(s, ",")
	n, unit, ok2 := strings.Cut(rate, "/")
	if !ok || !ok2 {
		return errors.New("want RATE/UNIT,BURST, e.g. 10/m,20")
	}
	r, err1 := strconv.ParseFloat(n, 64)
	b, err2 := strconv.ParseFloat(burst, 64)
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if err1 != nil || err2 != nil || per == 0 || r <= 0 || b < 1 {
		return errors.New("want RATE/UNIT,BURST with UNIT s, m or h, e.g. 10/m,20")
	}
	*l = limitFlag{Rate: r / per, Burst: b}
	return nil
}

// parse fills c from args and the environment.
func parse(name string, args []string, stderr io.Writer, c *config, declare func(*flag.FlagSet, *config)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	declare(fs, c)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  %s [flags]\n  hushd fingerprint --data DIR | --tls-cert FILE\n  hushd migrate --store URL\n  hushd backup --data DIR --to FILE\n  hushd franking-key rotate --data DIR\n  hushd reports list|show ID --data DIR | --store URL [--json]\n\nFlags (a flag given on the command line wins over its environment variable):\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envs[f.Name]
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", env, v, e)}
			}
		}
	})
	return err
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "fingerprint" {
		return fingerprint(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "backup" {
		return backup(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "franking-key" {
		return frankingKey(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "reports" {
		return reports(args[1:], stdout, stderr)
	}
	var c config
	if err := parse("hushd", args, stderr, &c, flags); err != nil {
		return err
	}
	if c.version {
		fmt.Fprintln(stdout, buildinfo.String("hushd"))
		// What a rolling upgrade needs to compare (docs/operations.md).
		fmt.Fprintf(stdout, "store schema: sqlite %d, postgres %d\n", sqlitestore.SchemaVersion, pgstore.Version)
		return nil
	}
	if c.argon2Time < 1 || c.argon2Memory < 8 || c.maxMessageBytes < 1 || c.maxQueue < 1 || c.maxQueuePerSender < 0 || c.maxDevices < 1 || c.maxHistoryRecords < 1 ||
		c.blobQuota < 1 || c.blobQuotaCount < 1 {
		return usageError{errors.New("--argon2-time, --argon2-memory (>= 8), --max-message-bytes, --max-queue, --max-devices, --max-history-records, --blob-quota and --blob-quota-count must be positive, --max-queue-per-sender not negative")}
	}
	if c.maxConnsPerAddr < 0 {
		return errors.New("--max-conns-per-addr must not be negative")
	}
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)

	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}
	proxies, err := parseProxies(c.trustedProxy)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if c.insecurePlaintext {
		if err := checkLoopback(c.addr); err != nil {
			return err
		}
	} else {
		cert, fp, err := certificate(c)
		if err != nil {
			return err
		}
		// TLS 1.3 only: its suites are all AEAD, and hush's clients (apiclient,
		// hence hush and hush-load) require it.
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
		// Session tickets that every node of the cluster (one
		// certificate) accepts: a client resumes on any of them.
		tk, err := tlscert.SessionTicketKey(cert)
		if err != nil {
			return err
		}
		tlsCfg.SetSessionTicketKeys([][32]byte{tk})
		fmt.Fprintf(stdout, "fingerprint: %s\n", fp)
	}

	if c.natsURL != "" && c.storeURL == "" {
		return errors.New("--nats links nodes sharing a --store postgres://...; without --store there is nothing to share")
	}
	if c.pollInterval <= 0 {
		return errors.New("--poll-interval must be positive")
	}
	keysPath := frankingKeysPath(c)
	ring, err := franking.LoadOrCreate(keysPath)
	if err != nil {
		return fmt.Errorf("franking keys: %w", err)
	}
	st, err := openStore(c, log)
	if err != nil {
		return err
	}
	var srvCluster server.Cluster
	if c.natsURL != "" {
		cl, err := cluster.Connect(c.natsURL, cluster.Options{Prefix: c.natsPrefix, Logger: log})
		if err != nil {
			st.Close()
			return err
		}
		defer cl.Close()
		srvCluster = cl
	} else if c.storeURL != "" {
		log.Warn("no --nats: other nodes' messages reach this node's sessions only by polling", "poll-interval", c.pollInterval)
		srvCluster = pollOnly{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	commitDur := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hushd_store_commit_seconds",
		Help: "Duration of one group commit (transaction and fsync).", Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}})
	commitOps := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hushd_store_commit_operations",
		Help: "Operations (callers) sharing one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	reg.MustRegister(commitDur, commitOps,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hushd_memtrim_checks_total",
			Help: "Checks whether to give free memory back to the system (every 10 s)."},
			func() float64 { c, _ := memtrim.Counts(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hushd_memtrim_trims_total",
			Help: "Checks that gave free memory back to the system."},
			func() float64 { _, t := memtrim.Counts(); return float64(t) }))
	st.onCommit(func(ops int, d time.Duration) {
		commitDur.Observe(d.Seconds())
		commitOps.Observe(float64(ops))
	})
	srv := server.New(st, server.Config{
		MaxContentBytes: c.maxMessageBytes, MaxQueue: c.maxQueue, MaxQueuePerSender: c.maxQueuePerSender,
		MessageTTL: c.messageTTL, MaxDevices: c.maxDevices, MaxHistoryRecords: c.maxHistoryRecords,
		Limits: c.limits, Logger: log, Registerer: reg, Cluster: srvCluster, PollInterval: c.pollInterval,
		NewLimiter: st.newLimiter,
		BlobData:   st.blobs, BlobQuota: c.blobQuota, BlobQuotaCount: c.blobQuotaCount,
		Argon2Time: uint32(c.argon2Time), Argon2MemoryKiB: uint32(c.argon2Memory),
		Franking: ring,
	})
	// SIGHUP rereads the franking keyring (after `hushd franking-key
	// rotate`); a keyring that does not load leaves the one in use.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			r, err := franking.Load(keysPath)
			if err != nil {
				log.Error("SIGHUP: franking keys not reloaded", "err", err)
				continue
			}
			srv.SetFrankingKeys(r)
			log.Info("SIGHUP: franking keys reloaded", "current", r.Current().ID)
		}
	}()
	h := httpapi.New(srv, httpapi.Options{Logger: log, Registerer: reg, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		TrustedProxies: proxies})

	tcp, err := net.Listen("tcp", c.addr)
	if err != nil {
		srv.Close()
		st.Close()
		return err
	}
	// Connections per client address are capped, and those beyond what the
	// open-file limit allows (less a reserve) serve health and metrics only.
	var ln net.Listener = connlimit.Wrap(tcp, connlimit.ForDescriptors(c.maxConnsPerAddr))
	hs := &http.Server{
		Handler:           connlimit.Guard(h, "/healthz", "/metrics"),
		ConnContext:       connlimit.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // whole request, so that a slow body cannot hold a connection
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		// Handshakes are computed a few at a time, the others waiting
		// for a slot: a surge of connections is set up at the rate the
		// processors allow instead of timing out half done.
		ln = connlimit.NewTLSListener(ln, tlsCfg, connlimit.Handshakes{})
	}
	fmt.Fprintf(stdout, "listening: %s://%s\n", scheme, ln.Addr())
	log.Info("hushd serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "data", c.data, "store", st.kind)

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if c.debugAddr != "" {
		if err := checkLoopback(c.debugAddr); err != nil {
			return fmt.Errorf("--debug-addr: %v", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprofhttp.Index)
		mux.HandleFunc("/debug/pprof/profile", pprofhttp.Profile)
		dl, err := net.Listen("tcp", c.debugAddr)
		if err != nil {
			return err
		}
		defer dl.Close()
		go http.Serve(dl, mux)
	}
	trimCtx, stopTrim := context.WithCancel(context.Background())
	defer stopTrim()
	go memtrim.Run(trimCtx, 10*time.Second, log)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err = <-served:
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	}

	// Graceful shutdown: stop accepting, finish HTTP requests, answer the
	// WebSocket sends in flight, end the sessions, and let the store commit
	// what is queued. Anything acknowledged is on disk already.
	ctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if e := hs.Shutdown(ctx); e != nil {
		log.Warn("http shutdown", "err", e)
	}
	if e := h.Shutdown(ctx); e != nil {
		log.Warn("websocket shutdown", "err", e)
	}
	srv.Close()
	if e := h.WaitClosed(ctx); e != nil {
		log.Warn("closing websockets", "err", e)
	}
	if e := st.Close(); e != nil {
		log.Error("closing store", "err", e)
	}
	log.Info("stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func certificate(c config) (tls.Certificate, string, error) {
	if c.tlsCert != "" || c.tlsKey != "" {
		if c.tlsCert == "" || c.tlsKey == "" {
			return tls.Certificate{}, "", errors.New("--tls-cert and --tls-key go together")
		}
		return tlscert.Load(c.tlsCert, c.tlsKey)
	}
	return tlscert.LoadOrCreate(c.data)
}

// parseProxies parses --trusted-proxy: CIDR prefixes or single addresses,
// separated by commas.
func parseProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, err2 := netip.ParseAddr(f)
			if err2 != nil {
				return nil, fmt.Errorf("--trusted-proxy: %q is not a CIDR prefix or an address", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkLoopback refuses plain HTTP on anything but a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--insecure-plaintext is only allowed on a loopback address (127.0.0.1, ::1), not %q", addr)
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %v", level, err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// fingerprint prints the SHA-256 of the certificate hushd serves.
func fingerprint(args []string, stdout, stderr io.Writer) error {
	var c config
	err := parse("hushd fingerprint", args, stderr, &c, func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.data, "data", defaultDataDir(), "data `folder` (env HUSHD_DATA)")
		envs["data"] = "HUSHD_DATA"
		fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file`, if not self-signed (env HUSHD_TLS_CERT)")
		envs["tls-cert"] = "HUSHD_TLS_CERT"
		fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key `file`, with --tls-cert (env HUSHD_TLS_KEY)")
		envs["tls-key"] = "HUSHD_TLS_KEY"
	})
	if err != nil {
		return err
	}
	var fp string
	if c.tlsCert != "" && c.tlsKey == "" {
		// The certificate alone: what every node of a cluster presents.
		fp, err = tlscert.FileFingerprint(c.tlsCert)
	} else {
		_, fp, err = certificate(c)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fingerprint: %s\n", fp)
	return nil
}

// migrate brings a PostgreSQL schema to this hushd's version (hushd does
// it at start too; this is for upgrades run ahead of the nodes).
func migrate(args []string, stdout, stderr io.Writer) error {
	var c config
	err := parse("hushd migrate", args, stderr, &c, func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.storeURL, "store", "", "PostgreSQL `URL` (env HUSHD_STORE)")
		envs["store"] = "HUSHD_STORE"
	})
	if err != nil {
		return err
	}
	if !isPostgresURL(c.storeURL) {
		return errors.New("hushd migrate needs --store postgres://... (SQLite migrates itself)")
	}
	if err := pgstore.MigrateURL(context.Background(), c.storeURL); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", pgstore.Version)
	return nil
}

// backup writes a consistent copy of the SQLite database in --data to
// --to while hushd may be serving from it (docs/operations.md, "Backups").
func backup(args []string, stdout, stderr io.Writer) error {
	var c config
	var to string
	err := parse("hushd backup", args, stderr, &c, func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.data, "data", defaultDataDir(), "data `folder` of the hushd to back up (env HUSHD_DATA)")
		envs["data"] = "HUSHD_DATA"
		fs.StringVar(&to, "to", "", "write the copy to this `file`, which must not exist")
	})
	if err != nil {
		return err
	}
	if to == "" {
		return usageError{errors.New("hushd backup needs --to FILE")}
	}
	db := filepath.Join(c.data, "hushd.db")
	if err := sqlitestore.Backup(context.Background(), db, to); err != nil {
		return err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %s (%d bytes) of %s\n", to, fi.Size(), db)
	return nil
}
