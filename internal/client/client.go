// Package client is the hush client engine: everything but presentation.
// It registers this device with a hushd, keeps its prekeys stocked, starts
// secret conversations (PQXDH, then the triple ratchet), sends and
// receives their messages, runs disappearing-message timers, and tracks
// whether each peer's identity is verified. The command line (cmd/hush)
// and the terminal UI (internal/tui) are thin layers over it.
//
// The entry points are [Register] (a new account, this device its secret
// device), [Link] (a further device of an account), [Open] (an existing
// home), then [Client.Send], [Client.Receive], [Client.History] and the
// trust operations ([Client.SafetyNumber], [Client.Verify],
// [Client.Trust], [Client.MakeSecret]).
//
// Durability: receiving decrypts, stores the message and advances the
// ratchet in one SQLite transaction, and acknowledges the message to the
// server only after it commits; sending commits the ratchet step together
// with an outbox row holding the ciphertext, and sends after. A process
// killed at any point therefore loses no message and leaves no session
// half-advanced: an unacknowledged message comes again and is recognized
// as a duplicate; a queued one is sent again and the recipient drops the
// copy.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/termsafe"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// Options tune a Client. The zero value is the default.
type Options struct {
	// Passphrase is asked for when the store is protected by one.
	Passphrase func() ([]byte, error)
	// PreKeys is how many one-time keys of each kind are uploaded at a
	// time (default 100, the server's most).
	PreKeys int
	// PreKeysLow is the server count below which more are uploaded
	// (default 25).
	PreKeysLow int
	// RotateEvery is how often the signed prekey and the last-resort Kyber
	// prekey are replaced (default 7 days).
	RotateEvery time.Duration
	// KeepRetired is how long replaced prekeys are kept for messages in
	// flight (default 30 days, the server's message lifetime).
	KeepRetired time.Duration
	// CheckKeysEvery is the least time between two looks at the server's
	// prekey counts (default 10 minutes).
	CheckKeysEvery time.Duration
	// PingEvery is how often a listening WebSocket (recv --follow, the
	// TUI) pings the server; a pong late by PingTimeout ends the
	// connection, which is then opened again (defaults 30 s and 20 s).
	PingEvery, PingTimeout time.Duration
	// Progress, if set, is told how the upload or download of a file goes
	// (docs/client.md "Files"), every MiB or so.
	Progress func(Progress)
	// Prewarm starts connecting to the server (TLS) before the home's
	// database is even open, while the rest of the work goes on, for a
	// command that will make a request soon (hush send).
	Prewarm bool
}

func (o *Options) defaults() {
	if o.PreKeys <= 0 || o.PreKeys > api.MaxKeysPerUpload {
		o.PreKeys = api.MaxKeysPerUpload
	}
	if o.PreKeysLow <= 0 {
		o.PreKeysLow = 25
	}
	if o.RotateEvery <= 0 {
		o.RotateEvery = 7 * 24 * time.Hour
	}
	if o.KeepRetired <= 0 {
		o.KeepRetired = 30 * 24 * time.Hour
	}
	if o.CheckKeysEvery <= 0 {
		o.CheckKeysEvery = 10 * time.Minute
	}
	if o.PingEvery <= 0 {
		o.PingEvery = 30 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
}

// Client is an open hush home. Its methods are safe for concurrent use.
type Client struct {
	st   *store.Store
	api  *apiclient.Client
	acct *store.Account
	opts Options

	// sendMu serializes sending (one ratchet step and post at a time, in
	// order); the store serializes everything else.
	sendMu sync.Mutex
	wake   chan struct{} // pokes the expiry loop
	// receipts are the delivered receipts a receive run still owes.
	receipts     pendingReceipts
	receiptsSent atomic.Int64 // receipts the server accepted (for tests)
	handling     atomic.Int32 // a receive run's Handle is running
	// typingPaused stops typing indicators to a conversation for a while
	// after a rate_limited answer; typingSent counts those the server
	// accepted (for tests).
	typingPaused typingPauses
	typingSent   atomic.Int64

	warm      chan struct{} // closed when the prewarming request is done
	readyOnce sync.Once
	blobs     blobClient // tests: instead of the server's blob API

	sealing sealingKeyring // the keyring a send seals its history record with
}

// Errors a person may see. They say what is wrong, not what to type: the
// front ends (cmd/hush, internal/tui) add that, in their own words.
var (
	ErrUnreachable   = errors.New("cannot reach the server")
	ErrNotRegistered = errors.New("this home has no hush account yet")
	ErrRegistered    = errors.New("this home already has a hush account")
	ErrNotSecret     = errors.New("this device is not your secret device: secret conversations live on one device")
	// ErrSecretUnfinished: Register made the account, but this device
	// could not become its secret device (MakeSecret finishes it).
	ErrSecretUnfinished = errors.New("the account is registered, but this device could not become its secret device")
)

// Open opens the registered home.
func Open(ctx context.Context, home string, o Options) (*Client, error) {
	o.defaults()
	var warm *prewarmed
	if o.Prewarm {
		warm = prewarm(ctx, home)
	}
	st, err := store.Open(ctx, home, store.Options{Passphrase: o.Passphrase})
	if errors.Is(err, store.ErrNoStore) {
		return nil, ErrNotRegistered
	} else if err != nil {
		return nil, err
	}
	acct := st.Account()
	if acct == nil {
		st.Close()
		return nil, ErrNotRegistered
	}
	c, err := newClient(st, acct, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	if warm != nil && slices.Equal(warm.servers, acct.Servers) && warm.fingerprint == acct.Fingerprint {
		// The connection being opened is to a node of the pinned server:
		// use it.
		c.api, c.warm = warm.api, warm.done
	}
	// Whatever expired while no hush ran goes first.
	if _, err := c.Expire(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(st *store.Store, acct *store.Account, o Options) (*Client, error) {
	ac, err := newAPI(st.Home(), acct, acct.Credential, 20*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{st: st, api: ac, acct: acct, opts: o, wake: make(chan struct{}, 1)}, nil
}

type prewarmed struct {
	servers     []string
	fingerprint string
	api         *apiclient.Client
	done        chan struct{}
}

// prewarm opens the TLS connection to the node that answered last, named
// by the hint, in the background, with a request to /healthz (no
// credential) that leaves it in the pool for the next request.
func prewarm(ctx context.Context, home string) *prewarmed {
	h, ok := readServerHint(home)
	if !ok {
		return nil
	}
	a := &store.Account{Servers: h.servers, Fingerprint: h.fingerprint}
	ac, err := newAPI(home, a, "", 20*time.Second)
	if err != nil {
		return nil
	}
	w := &prewarmed{servers: h.servers, fingerprint: h.fingerprint, api: ac, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_ = ac.Do(ctx, "GET", "/healthz", nil, nil)
	}()
	return w
}

// apic returns the API client, once any prewarming request is done (so
// that requests take its connection) and with the device's credential.
func (c *Client) apic() *apiclient.Client {
	c.readyOnce.Do(func() {
		if c.warm != nil {
			<-c.warm
		}
		c.api.SetCredential(c.acct.Credential)
	})
	return c.api
}

// Close closes the store.
func (c *Client) Close() error {
	c.api.CloseIdle()
	return c.st.Close()
}

// A Message is one line of a conversation: a message or a notice.
type Message = store.Message

// Kind says whether a line is a message or a notice from hush.
type Kind = store.Kind

// State says where a message is.
type State = store.State

// The kinds and states of a line.
const (
	KindText      = store.KindText
	KindNotice    = store.KindNotice
	StateReceived = store.StateReceived
	StatePending  = store.StatePending
	StateSent     = store.StateSent
	StateFailed   = store.StateFailed
	// StateDelivered and StateRead come with receipts (docs/multidevice.md
	// section 5).
	StateDelivered = store.StateDelivered
	StateRead      = store.StateRead
)

// Message returns the line with the local id, or an error wrapping
// store.ErrNotFound (it disappeared).
func (c *Client) Message(ctx context.Context, id int64) (*Message, error) {
	return c.st.Read().Message(ctx, id)
}

// MinPassphrase is the shortest passphrase SetPassphrase accepts.
const MinPassphrase = 8

// ErrShortPassphrase refuses a passphrase shorter than MinPassphrase.
var ErrShortPassphrase = fmt.Errorf("a passphrase needs at least %d characters", MinPassphrase)

// SetPassphrase protects the home's data key with a key derived from pass
// and removes the key file; with pass nil, it goes back to the key file.
func (c *Client) SetPassphrase(ctx context.Context, pass []byte) error {
	if pass != nil && len(pass) < MinPassphrase {
		return ErrShortPassphrase
	}
	return c.st.SetPassphrase(ctx, pass)
}

// Account describes this device's registration.
func (c *Client) Account() store.Account { return *c.acct }

// Self is this device's session address.
func (c *Client) Self() session.Address {
	return session.Address{Name: c.acct.Username, Device: key.DeviceID(c.acct.DeviceID)}
}

// IsSecret reports whether this device is its account's secret device, as
// far as this device knows (see [Client.CheckSecret]).
func (c *Client) IsSecret(ctx context.Context) (bool, error) {
	v, err := c.st.Read().MetaInt(ctx, "secret", 0)
	return v == 1, err
}

// CheckSecret asks the server whether this device is its account's secret
// device, with this device's identity key, and records a "no": a device
// that another one replaced learns it here. When the server cannot say,
// it returns what this device knows with the error.
func (c *Client) CheckSecret(ctx context.Context) (bool, error) {
	local, err := c.IsSecret(ctx)
	if err != nil {
		return false, err
	}
	a, err := c.apic().Account(ctx)
	if err != nil {
		return local, explain(err)
	}
	secret := a.SecretDeviceID != nil && *a.SecretDeviceID == c.acct.DeviceID &&
		bytes.Equal(a.IdentityKey, c.st.Identity().Public.Bytes())
	if local && !secret {
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, "secret", 0) }); err != nil {
			return false, err
		}
	}
	c.flushQueued(ctx)
	return secret, nil
}

// ErrBadFingerprint refuses a fingerprint that is not 64 hex digits.
var ErrBadFingerprint = errors.New("a certificate fingerprint is 64 hex digits (a SHA-256), colons allowed")

// NormalizeFingerprint returns fp in lower case without colons, or
// ErrBadFingerprint.
func NormalizeFingerprint(fp string) (string, error) {
	fp = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
		return "", ErrBadFingerprint
	}
	return fp, nil
}

// Repin pins the server's certificate anew, after its operator replaced
// it: it connects, checks that the server presents the certificate with
// fingerprint fp (each of its nodes that can be reached, and at least
// one), and only then stores fp. It must not run beside other calls on c.
func (c *Client) Repin(ctx context.Context, fp string) error {
	fp, err := NormalizeFingerprint(fp)
	if err != nil {
		return err
	}
	// Without the credential: it goes only to the certificate given. Every
	// node that can be reached must present it.
	if _, err := checkServers(ctx, c.acct.Servers, fp); err != nil {
		if errors.Is(err, ErrNoServerReached) {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return err
	}
	acct := *c.acct
	acct.Fingerprint = fp
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetAccount(ctx, &acct, c.st.Identity()) }); err != nil {
		return err
	}
	return c.reconnectAPI()
}

// flushQueued sends the queued messages, after the server answered a
// request: they go out with any command that reaches it. Not while a send
// is under way (it sends them itself); a failure leaves them queued.
func (c *Client) flushQueued(ctx context.Context) {
	if !c.sendMu.TryLock() {
		return
	}
	defer c.sendMu.Unlock()
	_ = c.flushOutboxLocked(ctx)
}

func (c *Client) cipher(tx *store.Tx) *session.Cipher {
	return &session.Cipher{Store: tx, Local: c.Self(), PQRatchet: session.PQRequired, AllowX3DH: false}
}

// ProbeFingerprint connects to the server at serverURL and returns the
// SHA-256 fingerprint of its certificate, unverified: for a person to
// compare with what the server's operator published, before trusting it.
func ProbeFingerprint(ctx context.Context, serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("server must be https://HOST:PORT, not %q", serverURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "", fmt.Errorf("cannot reach %s: %w", host, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("the server sent no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:]), nil
}

// RegisterParams are what Register needs.
type RegisterParams struct {
	// Server is https://HOST:PORT, or several URLs of one cluster's nodes
	// separated by commas (ParseServers).
	Server      string
	Fingerprint string // hex SHA-256 of the server's certificate
	Username    string
	Password    string
	DisplayName string
	DeviceName  string
}

// NormalizeUsername lower-cases a username as people type it.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func openNew(ctx context.Context, home string, o Options) (*store.Store, error) {
	st, err := store.Open(ctx, home, store.Options{Create: true, Passphrase: o.Passphrase})
	if err != nil {
		return nil, err
	}
	if a := st.Account(); a != nil {
		st.Close()
		return nil, fmt.Errorf("%w (%s on %s)", ErrRegistered, a.Username, a.Server)
	}
	return st, nil
}

// Register creates an account on the server with this device as its first
// device and its secret device: a new identity, and prekeys uploaded.
func Register(ctx context.Context, home string, p RegisterParams, o Options) (*Client, error) {
	o.defaults()
	p.Username = NormalizeUsername(p.Username)
	if p.Fingerprint == "" {
		return nil, errors.New("the server's certificate fingerprint is needed")
	}
	if err := errors.Join(CheckName("display name", p.DisplayName, api.MaxDisplayNameLen),
		CheckName("device name", p.DeviceName, api.MaxDeviceNameLen)); err != nil {
		return nil, err
	}
	servers, err := ParseServers(p.Server)
	if err != nil {
		return nil, err
	}
	st, err := openNew(ctx, home, o)
	if err != nil {
		return nil, err
	}
	ac, err := apiclient.NewCluster(servers, apiclient.Options{Fingerprint: p.Fingerprint, Timeout: 30 * time.Second})
	if err != nil {
		st.Close()
		return nil, err
	}
	cred, err := ac.Register(ctx, api.Register{Username: p.Username, Password: p.Password, DisplayName: p.DisplayName, DeviceName: p.DeviceName})
	if err != nil {
		st.Close()
		return nil, explain(err)
	}
	c, err := saveNewAccount(ctx, st, servers, ac.Current(), p, cred, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := c.MakeSecret(ctx); err != nil {
		return c, fmt.Errorf("%w: %w", ErrSecretUnfinished, err)
	}
	// The account identity and this device's ordinary keys; a failure here
	// is retried by the next command that needs them.
	if err := c.EnsureOrdinary(ctx); err != nil {
		return c, fmt.Errorf("the account is registered, but ordinary conversations could not be set up yet: %w", err)
	}
	return c, nil
}

// Link adds this home as a further device of an existing account. It is
// not the secret device until MakeSecret.
func Link(ctx context.Context, home string, p RegisterParams, o Options) (*Client, error) {
	o.defaults()
	p.Username = NormalizeUsername(p.Username)
	if err := CheckName("device name", p.DeviceName, api.MaxDeviceNameLen); err != nil {
		return nil, err
	}
	servers, err := ParseServers(p.Server)
	if err != nil {
		return nil, err
	}
	st, err := openNew(ctx, home, o)
	if err != nil {
		return nil, err
	}
	ac, err := apiclient.NewCluster(servers, apiclient.Options{Fingerprint: p.Fingerprint, Timeout: 30 * time.Second})
	if err != nil {
		st.Close()
		return nil, err
	}
	cred, err := ac.AddDevice(ctx, api.AddDevice{Username: p.Username, Password: p.Password, DeviceName: p.DeviceName})
	if err != nil {
		st.Close()
		return nil, explain(err)
	}
	c, err := saveNewAccount(ctx, st, servers, ac.Current(), p, cred, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	return c, nil
}

// CheckName checks a name the person gives themselves or their device
// (what others, or their own devices, will see): at most max characters,
// and no control or format character (a bidi override such as U+202E, a
// zero-width space), which could disguise it or act on a terminal.
func CheckName(what, s string, max int) error {
	switch {
	case !termsafe.IsLine(s):
		return fmt.Errorf("the %s may not contain control characters or invisible formatting characters (such as U+202E or U+200B): %q", what, s)
	case utf8.RuneCountInString(s) > max:
		return fmt.Errorf("the %s is too long: at most %d characters", what, max)
	}
	return nil
}

// saveNewAccount records a new device's credential. The identity saved
// here is a placeholder until MakeSecret publishes one.
func saveNewAccount(ctx context.Context, st *store.Store, servers []string, current string, p RegisterParams, cred api.DeviceCredential, o Options) (*Client, error) {
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		return nil, err
	}
	reg, err := key.GenerateRegistrationID(rand.Reader)
	if err != nil {
		return nil, err
	}
	acct := &store.Account{Servers: servers, Fingerprint: p.Fingerprint, Username: cred.Username,
		DeviceID: cred.DeviceID, Credential: cred.Credential, RegistrationID: reg}
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.SetAccount(ctx, acct, ik) }); err != nil {
		return nil, err
	}
	writeServerHint(st.Home(), current, acct.Fingerprint, servers)
	return newClient(st, st.Account(), o)
}

// CertificateChangedError says the server presented a certificate other
// than the one pinned for it: someone may be intercepting the connection,
// or its operator replaced the certificate. Nothing was sent to it.
type CertificateChangedError struct {
	Got, Pinned string // hex SHA-256 fingerprints
}

func (e *CertificateChangedError) Error() string {
	return fmt.Sprintf("the server presented a different certificate (fingerprint %s) from the one pinned for it (%s): "+
		"the connection may be intercepted, and nothing was sent to it", e.Got, e.Pinned)
}

// explain turns server errors into sentences for people.
func explain(err error) error {
	var ce *apiclient.CertificateError
	if errors.As(err, &ce) {
		var done *CertificateChangedError
		if errors.As(err, &done) {
			return err
		}
		return &CertificateChangedError{Got: ce.Got, Pinned: ce.Pinned}
	}
	var e *apiclient.Error
	if !errors.As(err, &e) {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
			return &unreachableError{err}
		}
		return err
	}
	var say string
	switch e.Code {
	case api.CodeUsernameTaken:
		say = "that username is taken"
	case api.CodeUnauthorized:
		say = "the server refused the credentials (wrong username or password, or this device was removed)"
	case api.CodeRateLimited:
		say = "the server asks to slow down (rate limited); try again in a minute"
	case api.CodeNotFound:
		say = "not found: " + e.Message
	case api.CodeBadRequest:
		say = "the server refused the request: " + e.Message
	default:
		say = fmt.Sprintf("the server answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	return &serverError{say: say, err: err}
}

// unreachableError is a request that reached no server, said in a
// sentence (explain): where it went and why, in a few words ("cannot
// reach the server at https://host:8443: no answer in time"), not Go's
// "Post \"https://...\": context deadline exceeded (Client.Timeout
// exceeded while awaiting headers)". It is ErrUnreachable and wraps the
// error.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string {
	var fe *apiclient.FailoverError
	if errors.As(e.err, &fe) {
		return ErrUnreachable.Error() + ": " + fe.Error() // each URL and why
	}
	at := ""
	var ue *url.Error
	if errors.As(e.err, &ue) {
		if u, err := url.Parse(ue.URL); err == nil && u.Host != "" {
			at = " at " + u.Scheme + "://" + u.Host
		}
	}
	return ErrUnreachable.Error() + at + ": " + apiclient.Reason(e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// serverError is the server's refusal said in a sentence (explain); it
// wraps the *apiclient.Error, so that errors.As and apiclient.IsCode see
// the code.
type serverError struct {
	say string
	err error
}

func (e *serverError) Error() string { return e.say }
func (e *serverError) Unwrap() error { return e.err }
