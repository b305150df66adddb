// Package servertest starts hushd in-process for tests, over real TLS
// sockets (httptest), and makes users with real keys.
package servertest

import (
	"context"
	"crypto/rand"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store/blobfiles"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
	"github.com/hushmsg/hush/internal/server/tlscert"
	"github.com/hushmsg/hush/key"
)

// RequestTimeout is the test server's read and write timeout per request,
// hushd's own. A few seconds is too short: on a busy machine (tests run
// with -race, several packages at once, on two cores) ordinary requests
// take that long, and a request over its deadline loses its answer. The
// client then sees EOF, a reset, or "local error: tls: bad record MAC":
// after a write fails on its deadline, crypto/tls still sends close_notify
// when the connection is closed, sealed with the sequence number of the
// record it failed to send, which the client cannot open.
const RequestTimeout = 60 * time.Second

// ShortRequestTimeout is the request timeout of a server started with
// StartShort, for tests that things outlive request deadlines.
const ShortRequestTimeout = 3 * time.Second

// Env is a running server.
type Env struct {
	URL         string
	Fingerprint string
	Server      *server.Server
	Store       *sqlitestore.Store
	Handler     *httpapi.Handler
	HTTP        *httptest.Server

	cfg     server.Config
	dir     string
	opts    httpapi.Options
	timeout time.Duration // per request, read and write
}

// NoLimits lifts every rate limit, for tests that are not about them.
var NoLimits = server.Limits{}

// Generous are limits no ordinary test reaches.
var Generous = server.Limits{
	RegisterPerIP: ratelimit.Limit{Rate: 1000, Burst: 1000}, LoginPerIP: ratelimit.Limit{Rate: 1000, Burst: 1000},
	LoginPerUser: ratelimit.Limit{Rate: 1000, Burst: 1000}, BundlePerPair: ratelimit.Limit{Rate: 1000, Burst: 1000},
	BundlePerUser:   ratelimit.Limit{Rate: 1000, Burst: 1000},
	BundlePerTarget: ratelimit.Limit{Rate: 1000, Burst: 1000}, LookupPerUser: ratelimit.Limit{Rate: 1000, Burst: 1000},
	MessagesPerDev: ratelimit.Limit{Rate: 1e6, Burst: 1e6}, MessagesPerPair: ratelimit.Limit{Rate: 1e6, Burst: 1e6}, BytesPerDev: ratelimit.Limit{Rate: 1e9, Burst: 1e9},
	GroupCopiesPerDev: ratelimit.Limit{Rate: 1e6, Burst: 1e6},
	HistoryPerDev:     ratelimit.Limit{Rate: 1e6, Burst: 1e6}, HistoryBytesPerDev: ratelimit.Limit{Rate: 1e9, Burst: 1e9},
	LinkPerIP: ratelimit.Limit{Rate: 1000, Burst: 1000}, LinkPerLink: ratelimit.Limit{Rate: 1000, Burst: 1000},
	ReportsPerUser:     ratelimit.Limit{Rate: 1000, Burst: 1000},
	BlobRequestsPerDev: ratelimit.Limit{Rate: 1e6, Burst: 1e6}, BlobsPerDev: ratelimit.Limit{Rate: 1e6, Burst: 1e6},
	BlobBytesPerAcct: ratelimit.Limit{Rate: 1e10, Burst: 1e10}, BlobDownloadPerDev: ratelimit.Limit{Rate: 1e10, Burst: 1e10},
}

// Start runs a server until the test ends. cfg's Argon2 cost defaults to a
// cheap one; its limits are taken as given (use Generous or NoLimits).
func Start(t testing.TB, cfg server.Config) *Env {
	t.Helper()
	return StartIn(t, cfg, t.TempDir())
}

// StartIn is Start with the server's database in dir, for tests that look
// at the server's files.
func StartIn(t testing.TB, cfg server.Config, dir string) *Env {
	t.Helper()
	return StartWith(t, cfg, dir, httpapi.Options{})
}

// StartWith is StartIn with the API handler's options.
func StartWith(t testing.TB, cfg server.Config, dir string, o httpapi.Options) *Env {
	t.Helper()
	return start(t, cfg, dir, o, RequestTimeout)
}

// StartShort is Start with request deadlines of ShortRequestTimeout, far
// shorter than hushd's: WebSockets must outlive them.
func StartShort(t testing.TB, cfg server.Config) *Env {
	t.Helper()
	return start(t, cfg, t.TempDir(), httpapi.Options{}, ShortRequestTimeout)
}

func start(t testing.TB, cfg server.Config, dir string, o httpapi.Options, timeout time.Duration) *Env {
	t.Helper()
	st, err := sqlitestore.Open(filepath.Join(dir, "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Argon2Time == 0 {
		cfg.Argon2Time, cfg.Argon2MemoryKiB = 1, 1024
	}
	srv := newServer(t, st, cfg, dir)
	h := httpapi.New(srv, o)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = timeout, timeout
	ts.StartTLS()
	e := &Env{URL: ts.URL, Fingerprint: tlscert.Fingerprint(ts.Certificate().Raw), Server: srv, Store: st, Handler: h, HTTP: ts,
		cfg: cfg, dir: dir, opts: o, timeout: timeout}
	t.Cleanup(e.Stop)
	return e
}

// newServer makes the server over st, its blobs in dir/blobs as hushd
// keeps them in its data folder.
func newServer(t testing.TB, st *sqlitestore.Store, cfg server.Config, dir string) *server.Server {
	t.Helper()
	if cfg.BlobData == nil {
		f, err := blobfiles.Open(filepath.Join(dir, "blobs"), st)
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		cfg.BlobData = f
	}
	return server.New(st, cfg)
}

// BlobDir is the folder of the server's blob files.
func (e *Env) BlobDir() string { return filepath.Join(e.dir, "blobs") }

// Stop stops the server, as a killed hushd: connections are cut and
// requests refused until Restart.
func (e *Env) Stop() {
	if e.HTTP == nil {
		return
	}
	e.HTTP.CloseClientConnections()
	e.HTTP.Close()
	e.Server.Close()
	e.Store.Close()
	e.HTTP = nil
}

// Restart starts a stopped server again at the same address, with the same
// certificate and database, as a restarted hushd.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	if e.HTTP != nil {
		t.Fatal("servertest: Restart of a running server")
	}
	st, err := sqlitestore.Open(filepath.Join(e.dir, "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, st, e.cfg, e.dir)
	h := httpapi.New(srv, e.opts)
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	addr := strings.TrimPrefix(e.URL, "https://")
	// The port was just freed: another process may take it in between,
	// which the deadline turns into a clear failure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ts.Listener, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			st.Close()
			t.Fatalf("servertest: listening again on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = e.timeout, e.timeout
	ts.StartTLS()
	e.Server, e.Store, e.Handler, e.HTTP = srv, st, h, ts
}

// Client returns a client pinned to the server, with cred (may be empty).
func (e *Env) Client(t testing.TB, cred string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(e.URL, apiclient.Options{Fingerprint: e.Fingerprint, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// User is a registered account with one device.
type User struct {
	Name     string
	Cred     api.DeviceCredential
	C        *apiclient.Client
	Identity *key.IdentityKeyPair
}

// NewUser registers name. With keys > 0 its device becomes the secret
// device and uploads keys one-time keys of each kind.
func (e *Env) NewUser(t testing.TB, name string, keys int) *User {
	t.Helper()
	ctx := t.Context()
	c := e.Client(t, "")
	cred, err := c.Register(ctx, api.Register{Username: name, Password: "password-" + name, DisplayName: "The " + name, DeviceName: "phone"})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	u := &User{Name: name, Cred: cred, C: c}
	if keys > 0 {
		u.Identity = NewIdentity(t)
		ku := Keys(t, u.Identity, 1, keys)
		if err := c.MakeSecret(ctx, api.MakeSecret{RegistrationID: 4242, IdentityKey: u.Identity.Public.Bytes(), Keys: &ku}); err != nil {
			t.Fatalf("make secret %s: %v", name, err)
		}
	}
	return u
}

// NewIdentity draws an identity key pair.
func NewIdentity(t testing.TB) *key.IdentityKeyPair {
	t.Helper()
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ik
}

// Keys makes a full, correctly signed upload: a signed prekey with id
// first, n one-time EC prekeys with ids first..first+n-1, n one-time Kyber
// prekeys with ids first+1000.., and a last-resort Kyber prekey with id
// first+5000.
func Keys(t testing.TB, ik *key.IdentityKeyPair, first uint32, n int) api.KeyUpload {
	t.Helper()
	sign := func(b []byte) []byte {
		sig, err := ik.Sign(rand.Reader, b)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	ec := func() []byte {
		kp, err := key.GenerateECKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return kp.Public.Bytes()
	}
	kem := func() []byte {
		kp, err := key.GenerateKEMKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return kp.Public.Bytes()
	}
	spk, lr := ec(), kem()
	u := api.KeyUpload{
		SignedPreKey:    &api.SignedKey{KeyID: first, PublicKey: spk, Signature: sign(spk)},
		KyberLastResort: &api.SignedKey{KeyID: first + 5000, PublicKey: lr, Signature: sign(lr)},
	}
	for i := range uint32(n) {
		u.PreKeys = append(u.PreKeys, api.PreKey{KeyID: first + i, PublicKey: ec()})
		k := kem()
		u.KyberPreKeys = append(u.KyberPreKeys, api.SignedKey{KeyID: first + 1000 + i, PublicKey: k, Signature: sign(k)})
	}
	return u
}

// Recv reads frames until a message or "empty" frame, skipping others,
// with a deadline.
func Recv(t testing.TB, c *apiclient.Conn, d time.Duration) api.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("reading the WebSocket: %v", err)
		}
		if f.Type == api.FrameMessage || f.Type == api.FrameEmpty {
			return f
		}
		if f.Type == api.FrameError {
			t.Fatalf("error frame: %+v", f.Error)
		}
	}
}

// OrdinaryKeys makes a full ordinary upload with registration id reg,
// signed by the account identity ik, with ids as Keys makes them.
func OrdinaryKeys(t testing.TB, ik *key.IdentityKeyPair, reg, first uint32, n int) api.OrdinaryKeyUpload {
	t.Helper()
	return api.OrdinaryKeyUpload{RegistrationID: reg, KeyUpload: Keys(t, ik, first, n)}
}
