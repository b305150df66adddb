// Package apiclient is a small Go client of hushd's API (docs/api.md): one
// method per endpoint, and [Conn] for the WebSocket. It pins the server's
// certificate by its SHA-256 fingerprint, as hushd prints it.
//
// A client may know several URLs of one cluster ([NewCluster]): all its
// nodes present the same certificate, so the one fingerprint is checked on
// every connection to any of them, and a node that presents another is an
// error, never a reason to try the next (failover.go).
package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/api"
)

// Error is an error answer from the server.
type Error struct {
	Status  int
	Code    string
	Message string
	// Mismatches is set with api.CodeDeviceMismatch (an ordinary send
	// whose device lists are not the current ones).
	Mismatches []api.Mismatch
}

func (e *Error) Error() string {
	return fmt.Sprintf("hushd: %d %s: %s", e.Status, e.Code, e.Message)
}

// CertificateError says the server presented a certificate other than the
// pinned one: the connection was refused before any request was sent.
type CertificateError struct {
	Got, Pinned string // hex SHA-256 fingerprints
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("apiclient: the server's certificate has fingerprint %s, not the pinned %s", e.Got, e.Pinned)
}

// IsCode reports whether err is an *Error with the given API code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Options configure a Client.
type Options struct {
	// Fingerprint is the hex SHA-256 of the server's certificate. When set,
	// that certificate is accepted and no other; when empty, the system's
	// roots verify it.
	Fingerprint string
	// Credential is the device credential sent with every request.
	Credential string
	// LocalAddr, if set, is the source address of every connection (the
	// load tool spreads connections over 127.0.0.x with it).
	LocalAddr net.Addr
	// Timeout of each HTTP request (each attempt, with several URLs);
	// default 30 s.
	Timeout time.Duration
	// OnSwitch, if set, is called with the URL that answered when it is
	// another than the one that answered before (several URLs only): to
	// remember it, so that the next process starts there.
	OnSwitch func(base string)
}

// Client talks to one hushd, or to the nodes of one cluster. Its methods
// are safe for concurrent use, except SetCredential.
type Client struct {
	bases []string // e.g. https://127.0.0.1:8443; at least one
	// cur is the index in bases of the URL tried first: the last that
	// answered. suspect is one whose connection was lost (Skip), tried
	// last until some URL answers; -1 for none.
	cur, suspect atomic.Int32
	onSwitch     func(string)
	cred         string
	hc           *http.Client
	// bc is hc without its timeout, for blob transfers: a 100 MiB
	// download may take longer than any fixed timeout; the caller's
	// context bounds it.
	bc *http.Client
}

// New returns a client of the server at base ("https://host:port").
func New(base string, o Options) (*Client, error) {
	return NewCluster([]string{base}, o)
}

// NewCluster returns a client of the nodes of one cluster at bases, tried
// in this order (failover.go); at most MaxURLs, no URL twice.
func NewCluster(bases []string, o Options) (*Client, error) {
	if len(bases) == 0 || len(bases) > MaxURLs {
		return nil, fmt.Errorf("apiclient: 1 to %d server URLs, not %d", MaxURLs, len(bases))
	}
	clean := make([]string, len(bases))
	for i, base := range bases {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("apiclient: bad server URL %q", base)
		}
		clean[i] = strings.TrimRight(base, "/")
		if slices.Contains(clean[:i], clean[i]) {
			return nil, fmt.Errorf("apiclient: server URL %q given twice", base)
		}
	}
	// TLS sessions are resumed (saving the certificate's signature and
	// verification, not the key exchange): after a node's death its
	// clients come back at once (docs/performance.md, "Reconnect storm").
	tc := &tls.Config{MinVersion: tls.VersionTLS13, ClientSessionCache: tls.NewLRUClientSessionCache(MaxURLs)}
	if o.Fingerprint != "" {
		// Every node of a pinned cluster presents the pinned certificate
		// and accepts the tickets of the others (hushd derives the ticket
		// key from the certificate's key), so the last session is offered
		// to whichever node is tried. A resumed session is one that was
		// verified against the pin; VerifyConnection checks it again.
		tc.ClientSessionCache = new(lastSession)
		want, err := hex.DecodeString(strings.ReplaceAll(o.Fingerprint, ":", ""))
		if err != nil || len(want) != sha256.Size {
			return nil, errors.New("apiclient: fingerprint must be 64 hex digits")
		}
		// Pinning replaces chain verification: the certificate is
		// self-signed, and its hash is what the user trusts.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("apiclient: server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return &CertificateError{Got: hex.EncodeToString(got[:]), Pinned: hex.EncodeToString(want)}
			}
			return nil
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: o.LocalAddr}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     60 * time.Second,
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	c := &Client{bases: clean, onSwitch: o.OnSwitch, cred: o.Credential, hc: &http.Client{Transport: tr, Timeout: o.Timeout},
		bc: &http.Client{Transport: tr}}
	c.suspect.Store(-1)
	return c, nil
}

// SetCredential sets the device credential used from now on.
func (c *Client) SetCredential(cred string) { c.cred = cred }

// Credential returns the device credential in use.
func (c *Client) Credential() string { return c.cred }

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Do sends one request with body (JSON-encoded unless nil) and decodes the
// answer into out (unless nil). It is exported for tests that need
// endpoints in unusual ways.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	return c.DoRaw(ctx, method, path, rd, out)
}

// DoRaw is Do with a raw body. An out of type *[]byte gets the answer's
// bytes as they are. With several URLs, a failed attempt goes on to the
// next node as failover.go says; a body that is not an io.Seeker is sent
// once, to one node.
func (c *Client) DoRaw(ctx context.Context, method, path string, body io.Reader, out any) error {
	rewind := func() error { return nil }
	if body != nil {
		if sk, ok := body.(io.Seeker); ok {
			at, err := sk.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			rewind = func() error { _, err := sk.Seek(at, io.SeekStart); return err }
		} else {
			rewind = func() error { return errors.New("apiclient: the body cannot be sent again") }
		}
	}
	var failed []attemptError
	for i, idx := range c.order() {
		if i > 0 {
			if rewind() != nil {
				break
			}
		}
		how, err := c.attempt(ctx, c.bases[idx], method, path, body, out)
		if how == served {
			if err == nil || !errors.As(err, new(*CertificateError)) {
				c.use(idx)
			}
			return err
		}
		failed = append(failed, attemptError{c.bases[idx], err})
		if ctx.Err() != nil || (how == maybeSent && !repeatable(method, path)) {
			break
		}
	}
	return failure(failed)
}

// attempt sends the request to one node and says how it went.
func (c *Client) attempt(ctx context.Context, base, method, path string, body io.Reader, out any) (outcome, error) {
	var wrote atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(tctx, method, base+path, body)
	if err != nil {
		return served, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cred != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return connFailure(ctx, err, wrote.Load()), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return connFailure(ctx, err, true), err
	}
	if resp.StatusCode >= 300 {
		ae := answerError(resp.StatusCode, b)
		if nodeDown(resp.StatusCode) {
			return maybeSent, ae
		}
		return served, ae
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return served, nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return served, fmt.Errorf("apiclient: decoding %s %s answer: %w", method, path, err)
		}
	}
	return served, nil
}

// answerError is the *Error of an error answer with body b.
func answerError(status int, b []byte) *Error {
	var e api.Error
	if json.Unmarshal(b, &e) != nil || e.Err.Code == "" {
		return &Error{Status: status, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return &Error{Status: status, Code: e.Err.Code, Message: e.Err.Message, Mismatches: e.Err.Mismatches}
}

// Register creates an account and its first device, and uses the new
// device's credential from then on.
func (c *Client) Register(ctx context.Context, r api.Register) (api.DeviceCredential, error) {
	var out api.DeviceCredential
	err := c.Do(ctx, "POST", "/v1/accounts", r, &out)
	if err == nil {
		c.cred = out.Credential
	}
	return out, err
}

// AddDevice creates a new device of an account and uses its credential.
func (c *Client) AddDevice(ctx context.Context, r api.AddDevice) (api.DeviceCredential, error) {
	var out api.DeviceCredential
	err := c.Do(ctx, "POST", "/v1/devices", r, &out)
	if err == nil {
		c.cred = out.Credential
	}
	return out, err
}

// Login gets a new credential for an existing device and uses it.
func (c *Client) Login(ctx context.Context, r api.Login) (api.DeviceCredential, error) {
	var out api.DeviceCredential
	err := c.Do(ctx, "POST", "/v1/login", r, &out)
	if err == nil {
		c.cred = out.Credential
	}
	return out, err
}

// Account describes the caller's account.
func (c *Client) Account(ctx context.Context) (api.Account, error) {
	var out api.Account
	return out, c.Do(ctx, "GET", "/v1/account", nil, &out)
}

// Devices lists the caller's devices.
func (c *Client) Devices(ctx context.Context) (api.Devices, error) {
	var out api.Devices
	return out, c.Do(ctx, "GET", "/v1/devices", nil, &out)
}

// RemoveDevice removes one of the caller's devices.
func (c *Client) RemoveDevice(ctx context.Context, id uint32) error {
	return c.Do(ctx, "DELETE", "/v1/devices/"+strconv.FormatUint(uint64(id), 10), nil, nil)
}

// MakeSecret makes the calling device the secret device.
func (c *Client) MakeSecret(ctx context.Context, r api.MakeSecret) error {
	return c.Do(ctx, "PUT", "/v1/devices/self/secret", r, nil)
}

// Directory looks a person up.
func (c *Client) Directory(ctx context.Context, username string) (api.DirectoryEntry, error) {
	var out api.DirectoryEntry
	return out, c.Do(ctx, "GET", "/v1/directory/"+url.PathEscape(username), nil, &out)
}

// UploadKeys uploads prekeys of the (secret) calling device.
func (c *Client) UploadKeys(ctx context.Context, k api.KeyUpload) error {
	return c.Do(ctx, "PUT", "/v1/keys", k, nil)
}

// KeyCounts tells how many one-time keys the calling device has left.
func (c *Client) KeyCounts(ctx context.Context) (api.KeyCounts, error) {
	var out api.KeyCounts
	return out, c.Do(ctx, "GET", "/v1/keys", nil, &out)
}

// Bundle fetches a prekey bundle of username's secret device (device 0:
// whichever it is).
func (c *Client) Bundle(ctx context.Context, username string, device uint32) (api.Bundle, error) {
	var out api.Bundle
	p := "/v1/keys/" + url.PathEscape(username)
	if device != 0 {
		p += "/" + strconv.FormatUint(uint64(device), 10)
	}
	return out, c.Do(ctx, "GET", p, nil, &out)
}

// Send posts a message; it returns once the server has it on disk.
func (c *Client) Send(ctx context.Context, username string, device uint32, m api.SendMessage) (api.SendResult, error) {
	var out api.SendResult
	p := "/v1/messages/" + url.PathEscape(username) + "/" + strconv.FormatUint(uint64(device), 10)
	return out, c.Do(ctx, "POST", p, m, &out)
}

// Report sends an abuse report (docs/franking.md); the server verifies
// every message's franking before it keeps it.
func (c *Client) Report(ctx context.Context, r api.Report) (api.ReportResult, error) {
	var out api.ReportResult
	return out, c.Do(ctx, "POST", "/v1/reports", r, &out)
}

// Block makes the server drop what username sends to the caller.
func (c *Client) Block(ctx context.Context, username string) error {
	return c.Do(ctx, "PUT", "/v1/blocks/"+url.PathEscape(username), nil, nil)
}

// Unblock undoes Block.
func (c *Client) Unblock(ctx context.Context, username string) error {
	return c.Do(ctx, "DELETE", "/v1/blocks/"+url.PathEscape(username), nil, nil)
}

// Blocked lists whom the caller blocks.
func (c *Client) Blocked(ctx context.Context) (api.Blocks, error) {
	var out api.Blocks
	return out, c.Do(ctx, "GET", "/v1/blocks", nil, &out)
}

// Conn is the device's WebSocket: it receives messages and may send them.
// Read from one goroutine; writes may come from any.
type Conn struct {
	c       *websocket.Conn
	base    string      // the URL of the node it is connected to
	pending []api.Frame // frames of the last WebSocket message not yet returned
}

// Base is the URL of the node the connection is to (for [Client.Skip]).
func (c *Conn) Base() string { return c.base }

// Connect opens the WebSocket. Queued messages arrive at once, then
// {"type":"empty"}, then new messages as they come. With several URLs it
// connects to the first node that takes it (failover.go).
func (c *Client) Connect(ctx context.Context) (*Conn, error) {
	var failed []attemptError
	for _, idx := range c.order() {
		conn, how, err := c.connect(ctx, c.bases[idx])
		if how == served {
			if err == nil {
				c.use(idx)
			}
			return conn, err
		}
		// Opening a WebSocket changes nothing: always repeatable.
		failed = append(failed, attemptError{c.bases[idx], err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, failure(failed)
}

func (c *Client) connect(ctx context.Context, base string) (*Conn, outcome, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cred)
	var wrote atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	ws, resp, err := websocket.Dial(tctx, u, &websocket.DialOptions{HTTPClient: &http.Client{Transport: c.hc.Transport}, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			// The server's error body, as for any request (coder/websocket
			// keeps its first 1 KiB), so that a refused credential is
			// unauthorized here too and not a failure to retry.
			e := &Error{Status: resp.StatusCode, Code: "websocket", Message: err.Error()}
			var body api.Error
			if resp.Body != nil && json.NewDecoder(io.LimitReader(resp.Body, 1024)).Decode(&body) == nil && body.Err.Code != "" {
				e.Code, e.Message = body.Err.Code, body.Err.Message
			} else if resp.StatusCode == http.StatusUnauthorized {
				e.Code = api.CodeUnauthorized
			}
			if nodeDown(resp.StatusCode) {
				return nil, maybeSent, e
			}
			return nil, served, e
		}
		return nil, connFailure(ctx, err, wrote.Load()), err
	}
	ws.SetReadLimit(4 << 20)
	return &Conn{c: ws, base: base}, served, nil
}

// Next returns the next frame from the server.
func (c *Conn) Next(ctx context.Context) (api.Frame, error) {
	if len(c.pending) == 0 {
		fs, err := c.NextBatch(ctx)
		if err != nil {
			return api.Frame{}, err
		}
		c.pending = fs
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

// NextBatch returns the frames of the next WebSocket message (the server
// puts several frames in one message under load). Do not mix it with Next.
func (c *Conn) NextBatch(ctx context.Context) ([]api.Frame, error) {
	_, b, err := c.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.Frame
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f, ok := api.ParseFrame(line)
		if !ok {
			if err := json.Unmarshal(line, &f); err != nil {
				return nil, fmt.Errorf("apiclient: bad frame from the server: %w", err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// Ack acknowledges delivered messages; the server then deletes them.
func (c *Conn) Ack(ctx context.Context, ids ...int64) error {
	return c.write(ctx, api.Frame{Type: api.FrameAck, IDs: ids})
}

// Send sends a message over the WebSocket; the server answers with a
// "sent" (or "error") frame carrying reqID once it is durable.
func (c *Conn) Send(ctx context.Context, reqID uint64, to string, device uint32, m api.SendMessage) error {
	return c.write(ctx, api.Frame{Type: api.FrameSend, ReqID: reqID, To: to, Device: device, Send: &m})
}

func (c *Conn) write(ctx context.Context, f api.Frame) error {
	b, err := api.AppendFrame(nil, &f)
	if err != nil {
		return err
	}
	return c.c.Write(ctx, websocket.MessageText, b)
}

// Ping sends a WebSocket ping and waits for the pong, which another
// goroutine's pending [Conn.Next] reads.
func (c *Conn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

// KeepAlive pings the server every interval until ctx ends, and closes
// the connection at once (so that the pending [Conn.Next] fails and the
// caller reconnects) when a pong has not come within timeout. It blocks:
// run it on a goroutine of its own, beside a goroutine that keeps calling
// Next (the pong is read there). The pings keep a load balancer's idle
// timeout from cutting a quiet connection, and find a connection whose
// peer went away without a word (a node's machine lost, a NAT entry
// dropped) long before TCP would (docs/operations.md, "Load balancer").
func (c *Conn) KeepAlive(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.c.CloseNow()
			}
			return
		}
	}
}

// Close closes the connection.
func (c *Conn) Close() error {
	return c.c.Close(websocket.StatusNormalClosure, "")
}

// CloseNow closes the connection without the closing handshake.
func (c *Conn) CloseNow() error { return c.c.CloseNow() }

// lastSession is a tls.ClientSessionCache of one session, whatever the
// server's name: for the nodes of one cluster, which share a certificate
// and a ticket key.
type lastSession struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (l *lastSession) Get(string) (*tls.ClientSessionState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cs, l.cs != nil
}

func (l *lastSession) Put(_ string, cs *tls.ClientSessionState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cs = cs
}
