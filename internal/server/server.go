// Package server is hushd's logic, apart from any transport: accounts and
// device credentials, the directory, the prekey directory, mailboxes with
// their live delivery sessions, blocks and rate limits. The HTTP and
// WebSocket layer is internal/server/httpapi; persistence is a
// store.Store.
//
// The server is a blind relay: message contents are opaque bytes to it,
// and it imports none of the session, ratchet or key agreement packages
// (the module's deps_test.go checks this). It imports package key only to verify prekey
// signatures on upload.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store"
)

// Config tunes a Server. The zero value of each field means its default.
type Config struct {
	MaxContentBytes int // default api.MaxContentBytes
	MaxQueue        int // messages queued per device; default 10000
	// MaxQueuePerSender bounds what one sender account may queue for one
	// device, so that room is left for others; default MaxQueue/10.
	MaxQueuePerSender int
	MessageTTL        time.Duration // undelivered message lifetime; default 30 days
	MaxDevices        int           // default api.MaxDevices
	// MaxHistoryRecords bounds each account's history; default 1,000,000.
	MaxHistoryRecords int
	Limits            Limits
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; default none.
	Registerer prometheus.Registerer
	// NewLimiter makes the limiter for one kind of limit (name); default
	// ratelimit.New, in memory. A cluster shares its limiters so that a
	// person cannot multiply a limit by the number of nodes.
	NewLimiter func(name string, l ratelimit.Limit) Limiter
	// Cluster links this node to the other nodes sharing the store
	// (internal/server/cluster); nil for a single process.
	Cluster Cluster
	// PollInterval is, in a cluster, how often every session reads its
	// mailbox in case a wake-up was lost; default 10 s.
	PollInterval time.Duration
	// Argon2 cost; defaults are Argon2id t=2, m=19 MiB, p=1 (OWASP).
	Argon2Time, Argon2MemoryKiB uint32
	// Franking is the keyring of reporting-tag keys (docs/franking.md);
	// default a fresh one in memory (tests). hushd keeps it in its data
	// folder; SetFrankingKeys replaces it after a rotation.
	Franking *franking.Keyring

	// BlobData keeps the bytes of blobs (attachments, issue 11): files
	// in the data folder (blobfiles) or the cluster's PostgreSQL
	// (pgstore). Nil: the blob endpoints answer unavailable and sends
	// naming blobs are refused.
	BlobData store.BlobData
	// BlobQuota and BlobQuotaCount bound what one account holds in
	// blobs at a time (declared sizes, and number); defaults
	// DefaultBlobQuota and DefaultBlobQuotaCount.
	BlobQuota      int64
	BlobQuotaCount int
	// MaxBlobChunk bounds one upload request; default DefaultMaxBlobChunk.
	MaxBlobChunk int64
	// BlobUploadTTL is how long a blob no message carries is kept;
	// default DefaultBlobUploadTTL.
	BlobUploadTTL time.Duration
	// BlobSweepInterval is how often expired blobs are deleted; default
	// one minute.
	BlobSweepInterval time.Duration
}

// Limits are the token buckets for what a stranger can trigger.
type Limits struct {
	RegisterPerIP   ratelimit.Limit // POST /v1/accounts per client address (IPv4, IPv6 /64)
	LoginPerIP      ratelimit.Limit // password checks per client address
	LoginPerUser    ratelimit.Limit // password checks per username
	BundlePerPair   ratelimit.Limit // bundle fetches per requester and target account
	BundlePerUser   ratelimit.Limit // bundle fetches per requester account
	BundlePerTarget ratelimit.Limit // bundle fetches per target account, by anyone
	LookupPerUser   ratelimit.Limit // directory lookups per requester account
	MessagesPerDev  ratelimit.Limit // messages per sending device
	MessagesPerPair ratelimit.Limit // messages per sender and recipient account
	BytesPerDev     ratelimit.Limit // content bytes per sending device
	// GroupCopiesPerDev: copies of group messages per sending device, one
	// per recipient device (POST /v1/groups/messages). Its burst must hold
	// api.MaxGroupDevices, the largest request.
	GroupCopiesPerDev ratelimit.Limit
	// History records deposited (and recovery blobs stored) per device,
	// and their bytes.
	HistoryPerDev, HistoryBytesPerDev ratelimit.Limit
	// Requests that prove a link code (hello, box, device) per client
	// address and per link, charged before the link is looked up.
	LinkPerIP, LinkPerLink ratelimit.Limit
	// ReportsPerUser bounds abuse reports (POST /v1/reports) per account,
	// charged before a report is verified.
	ReportsPerUser ratelimit.Limit
	// Blobs: every blob request per device, blobs created per device,
	// bytes uploaded per account, bytes downloaded per device.
	BlobRequestsPerDev, BlobsPerDev, BlobBytesPerAcct, BlobDownloadPerDev ratelimit.Limit
}

// DefaultLimits are the limits hushd uses unless told otherwise.
var DefaultLimits = Limits{
	RegisterPerIP:   ratelimit.Limit{Rate: 1.0 / 60, Burst: 10},
	LoginPerIP:      ratelimit.Limit{Rate: 1.0 / 6, Burst: 20},
	LoginPerUser:    ratelimit.Limit{Rate: 1.0 / 60, Burst: 10},
	BundlePerPair:   ratelimit.Limit{Rate: 1.0 / 60, Burst: 10},
	BundlePerUser:   ratelimit.Limit{Rate: 1, Burst: 100},
	BundlePerTarget: ratelimit.Limit{Rate: 1.0 / 60, Burst: 30},
	LookupPerUser:   ratelimit.Limit{Rate: 2, Burst: 100},
	MessagesPerDev:  ratelimit.Limit{Rate: 1000, Burst: 2000},
	MessagesPerPair: ratelimit.Limit{Rate: 1, Burst: 300},
	BytesPerDev:     ratelimit.Limit{Rate: 16 << 20, Burst: 32 << 20},
	// A message a second to a group of 1,000 one-device members; two
	// largest requests at once.
	GroupCopiesPerDev: ratelimit.Limit{Rate: 1000, Burst: 2 * api.MaxGroupDevices},
	// A device back after a while deposits a record per message it
	// receives: the burst covers a full mailbox.
	HistoryPerDev:      ratelimit.Limit{Rate: 100, Burst: 10000},
	HistoryBytesPerDev: ratelimit.Limit{Rate: 1 << 20, Burst: 64 << 20},
	// The new device polls for the box once a second for as long as the
	// old one takes: a minute of it is the burst.
	LinkPerIP:   ratelimit.Limit{Rate: 1, Burst: 60},
	LinkPerLink: ratelimit.Limit{Rate: 1, Burst: 60},
	// Reports are rare: 10 an hour, 20 at once.
	ReportsPerUser: ratelimit.Limit{Rate: 10.0 / 3600, Burst: 20},
	// A message with the most attachments (32) creates them at once; a
	// 100 MiB file is 13 chunks of 8 MiB.
	BlobRequestsPerDev: ratelimit.Limit{Rate: 20, Burst: 1000},
	BlobsPerDev:        ratelimit.Limit{Rate: 1, Burst: 100},
	// Two full-size files at once, then 32 MiB/s.
	BlobBytesPerAcct: ratelimit.Limit{Rate: 32 << 20, Burst: 256 << 20},
	// Ten full-size downloads at once, then 64 MiB/s.
	BlobDownloadPerDev: ratelimit.Limit{Rate: 64 << 20, Burst: 1 << 30},
}

// Limiter hands out tokens per key (ratelimit.Limiter, or a shared one).
type Limiter interface {
	Allow(key string, n float64) bool
}

// countedLimiter counts the refusals of the Limiter it wraps.
type countedLimiter struct {
	Limiter
	refused prometheus.Counter
}

func (c countedLimiter) Allow(key string, n float64) bool {
	if c.Limiter.Allow(key, n) {
		return true
	}
	c.refused.Inc()
	return false
}

// Cluster links the hushd nodes that share one store. Messages never go
// through it: it only says "read your mailbox" (Wake) and "drop what you
// cached" (Forget), so a lost call delays, and never loses, anything.
type Cluster interface {
	// Attach makes n receive the other nodes' wake-ups and invalidations.
	Attach(n Node)
	// Present and Absent say that a device's session is, or is no longer,
	// on this node: wake-ups for it come here.
	Present(ref store.DeviceRef)
	Absent(ref store.DeviceRef)
	// Wake tells the nodes holding sessions of refs to read their
	// mailboxes. msgs are the committed messages the wake-ups are for
	// (those of refs, and maybe others): a wake-up may carry a device's
	// messages, which its session takes without reading the store when
	// they follow what it has (store.Message.Prev).
	Wake(refs []store.DeviceRef, msgs []*store.Message)
	// Forget tells every other node to drop what f names.
	Forget(f Forget)
}

// Node is what a Cluster calls on its server.
type Node interface {
	// Wake makes ref's session read its mailbox; or, given msgs (its
	// committed messages in id order, as Cluster.Wake carried them), take
	// them when they follow what it has, and read the mailbox otherwise.
	Wake(ref store.DeviceRef, msgs []*store.Message)
	Forget(f Forget)
	// Resync drops every cache and wakes every session, after the link to
	// the other nodes was down (what it carried meanwhile is lost).
	Resync()
}

// Forget names cached state that a node changed in the store.
type Forget struct {
	Device   *store.DeviceRef `json:"device,omitempty"`   // credential changed or device removed: its session ends
	Username string           `json:"username,omitempty"` // the account's devices or identity changed
	Blocker  int64            `json:"blocker,omitempty"`  // the account's blocks changed
}

// forget drops what f names here and on the other nodes.
func (s *Server) forget(f Forget) {
	s.Forget(f)
	if s.cfg.Cluster != nil {
		s.cfg.Cluster.Forget(f)
	}
}

// Forget drops what f names from this node's caches (another node changed
// it), and ends the session of a device whose credential changed.
func (s *Server) Forget(f Forget) {
	if f.Device != nil {
		s.auth.forget(*f.Device)
		s.hub.disconnect(*f.Device)
	}
	if f.Username != "" {
		s.users.forget(f.Username)
	}
	if f.Blocker != 0 {
		s.blocks.forget(f.Blocker)
	}
}

// Resync implements Node.
func (s *Server) Resync() {
	s.auth.forgetAll()
	s.users.forgetAll()
	s.blocks.forgetAll()
	s.hub.wakeAll()
}

// pollLoop wakes every session now and then, in a cluster: a wake-up lost
// between nodes delays a message by at most PollInterval.
func (s *Server) pollLoop() {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.hub.wakeAll()
		}
	}
}

// Error is an error a client caused or may see: an API error code
// (api.Code*) and a message for people. How a transport shows it (an HTTP
// status, a WebSocket error frame) is the transport's business: httpapi
// maps codes to statuses.
type Error struct {
	Code    string
	Message string
	// Mismatches goes with api.CodeDeviceMismatch.
	Mismatches []api.Mismatch
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return newError(api.CodeBadRequest, format, args...)
}

var (
	errUnauthorized = newError(api.CodeUnauthorized, "missing or invalid credential")
	errRateLimited  = newError(api.CodeRateLimited, "too many requests, slow down")
	errNoUser       = newError(api.CodeNotFound, "no such user")
	errNoDevice     = newError(api.CodeNotFound, "no such device")
	errClosing      = newError(api.CodeUnavailable, "server is shutting down")
	errUnavailable  = newError(api.CodeUnavailable, "storage unreachable, try again")
)

// cacheEntries bounds each of the server's caches.
const cacheEntries = 100000

// Server is hushd's logic. Make one with New; it is safe for concurrent use.
type Server struct {
	st  store.Store
	cfg Config
	log *slog.Logger
	now func() time.Time
	m   *metrics

	limRegister, limLoginIP, limLoginUser, limBundlePair, limBundleUser, limBundleTarget, limLookup, limMsgs, limMsgPair, limBytes, limGroupCopies Limiter
	limHistory, limHistoryBytes, limLinkIP, limLink                                                                                                Limiter
	limReport                                                                                                                                      Limiter
	limBlobReqs, limBlobs, limBlobBytes, limBlobDown                                                                                               Limiter

	// franking is the keyring of reporting-tag keys (docs/franking.md).
	franking atomic.Pointer[franking.Keyring]

	hashSem chan struct{} // bounds concurrent Argon2id computations
	// dummyHash is checked against when a username does not exist, so that
	// the answer takes as long as for a wrong password.
	dummyHash string

	auth   *cache[store.DeviceRef, authEntry]
	users  *cache[string, *userEntry]
	blocks *cache[int64, map[int64]bool]
	names  *cache[int64, string]
	hub    hub

	stop     chan struct{}
	stopOnce sync.Once
	bg       sync.WaitGroup
	shred    chan []byte // blobs whose bytes blobLoop removes (blobs.go)
}

// New returns a Server over st. Call Close when done; it does not close st.
func New(st store.Store, cfg Config) *Server {
	if cfg.MaxContentBytes == 0 {
		cfg.MaxContentBytes = api.MaxContentBytes
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 10000
	}
	if cfg.MaxQueuePerSender == 0 {
		cfg.MaxQueuePerSender = max(1, cfg.MaxQueue/10)
	}
	if cfg.MessageTTL == 0 {
		cfg.MessageTTL = 30 * 24 * time.Hour
	}
	if cfg.MaxDevices == 0 {
		cfg.MaxDevices = api.MaxDevices
	}
	if cfg.MaxHistoryRecords == 0 {
		cfg.MaxHistoryRecords = 1000000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Argon2Time == 0 {
		cfg.Argon2Time = 2
	}
	if cfg.Argon2MemoryKiB == 0 {
		cfg.Argon2MemoryKiB = 19 * 1024
	}
	if cfg.BlobQuota == 0 {
		cfg.BlobQuota = DefaultBlobQuota
	}
	if cfg.BlobQuotaCount == 0 {
		cfg.BlobQuotaCount = DefaultBlobQuotaCount
	}
	if cfg.MaxBlobChunk == 0 {
		cfg.MaxBlobChunk = DefaultMaxBlobChunk
	}
	if cfg.BlobUploadTTL == 0 {
		cfg.BlobUploadTTL = DefaultBlobUploadTTL
	}
	if cfg.BlobSweepInterval == 0 {
		cfg.BlobSweepInterval = time.Minute
	}
	l := cfg.Limits
	base := cfg.NewLimiter
	if base == nil {
		base = func(_ string, l ratelimit.Limit) Limiter { return ratelimit.New(l, cfg.Now) }
	}
	// Every limit's refusals are counted by name, so that an operator sees
	// which limit clients meet (docs/operations.md, "What to monitor").
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hushd_rate_limited_total",
		Help: "Requests refused by a rate limit, by limit (one refused by two limits counts in both)."}, []string{"limit"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(refused)
	}
	newLimiter := func(name string, l ratelimit.Limit) Limiter {
		return countedLimiter{Limiter: base(name, l), refused: refused.WithLabelValues(name)}
	}
	s := &Server{
		st: st, cfg: cfg, log: cfg.Logger, now: cfg.Now,
		limRegister:     newLimiter("register", l.RegisterPerIP),
		limLoginIP:      newLimiter("login-ip", l.LoginPerIP),
		limLoginUser:    newLimiter("login-user", l.LoginPerUser),
		limBundlePair:   newLimiter("bundle-pair", l.BundlePerPair),
		limBundleUser:   newLimiter("bundle-user", l.BundlePerUser),
		limBundleTarget: newLimiter("bundle-target", l.BundlePerTarget),
		limLookup:       newLimiter("lookup", l.LookupPerUser),
		limMsgs:         newLimiter("messages", l.MessagesPerDev),
		limMsgPair:      newLimiter("messages-pair", l.MessagesPerPair),
		limBytes:        newLimiter("bytes", l.BytesPerDev),
		limGroupCopies:  newLimiter("group-copies", l.GroupCopiesPerDev),
		limHistory:      newLimiter("history", l.HistoryPerDev),
		limHistoryBytes: newLimiter("history-bytes", l.HistoryBytesPerDev),
		limLinkIP:       newLimiter("link-ip", l.LinkPerIP),
		limLink:         newLimiter("link", l.LinkPerLink),
		limReport:       newLimiter("reports", l.ReportsPerUser),
		limBlobReqs:     newLimiter("blob-requests", l.BlobRequestsPerDev),
		limBlobs:        newLimiter("blobs", l.BlobsPerDev),
		limBlobBytes:    newLimiter("blob-bytes", l.BlobBytesPerAcct),
		limBlobDown:     newLimiter("blob-download", l.BlobDownloadPerDev),
		hashSem:         make(chan struct{}, runtime.GOMAXPROCS(0)),
		stop:            make(chan struct{}),
	}
	if cfg.Franking == nil {
		cfg.Franking = franking.NewKeyring()
	}
	s.franking.Store(cfg.Franking)
	s.dummyHash, _ = s.hashPassword(context.Background(), "no such user")
	s.auth = newCache[store.DeviceRef, authEntry](cacheEntries)
	s.users = newCache[string, *userEntry](cacheEntries)
	s.blocks = newCache[int64, map[int64]bool](cacheEntries)
	s.names = newCache[int64, string](cacheEntries)
	s.hub.init(s)
	s.m = newMetrics(cfg.Registerer, s)
	st.SetNotify(s.hub.notify)
	s.bg.Go(s.expireLoop)
	if cfg.BlobData != nil {
		s.shred = make(chan []byte, shredQueue)
		s.bg.Go(s.blobLoop)
	}
	if cfg.Cluster != nil {
		if cfg.PollInterval <= 0 {
			s.cfg.PollInterval = 10 * time.Second
		}
		cfg.Cluster.Attach(s)
		s.bg.Go(s.pollLoop)
	}
	return s
}

// Close ends every live session (their unacknowledged messages stay
// queued) and stops background work. The store stays open.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.hub.closeAll()
	s.bg.Wait()
}

func (s *Server) closing() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Server) nowMs() int64 { return s.now().UnixMilli() }

// expireLoop deletes expired messages every minute.
func (s *Server) expireLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			n, err := s.st.DeleteExpired(context.Background(), s.nowMs())
			if err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Error("deleting expired messages", "err", err)
			} else if n > 0 {
				s.log.Info("deleted expired messages", "count", n)
				s.m.expired.Add(float64(n))
			}
		}
	}
}

// internal logs err and returns the generic 500 error, so that nothing
// internal (paths, SQL) reaches a client.
func (s *Server) internal(op string, err error) error {
	if errors.Is(err, store.ErrClosed) {
		return errClosing
	}
	if errors.Is(err, store.ErrUnavailable) {
		s.log.Error(op, "err", err)
		return errUnavailable
	}
	s.log.Error(op, "err", err)
	return newError(api.CodeInternal, "internal error")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}
