package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// node is one TLS test server of a "cluster": httptest's servers all
// present the same certificate, as a cluster's nodes do.
type node struct {
	*httptest.Server
	hits   atomic.Int32
	bodies chan string // bodies of POSTs, as received
	// answer, if set, answers instead of the default 200 {}.
	answer func(w http.ResponseWriter, r *http.Request)
}

func newNode(t *testing.T) *node {
	n := &node{bodies: make(chan string, 16)}
	n.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.hits.Add(1)
		if r.URL.Path == "/v1/ws" {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer ws.CloseNow()
			_ = ws.Write(r.Context(), websocket.MessageText, []byte(`{"type":"empty"}`))
			_, _, _ = ws.Read(r.Context())
			return
		}
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			n.bodies <- string(b)
		}
		if n.answer != nil {
			n.answer(w, r)
			return
		}
		w.Write([]byte(`{}`))
	}))
	n.StartTLS()
	t.Cleanup(n.Close)
	return n
}

func fingerprintOf(s *httptest.Server) string {
	sum := sha256.Sum256(s.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// closedURL is the URL of a node that is gone: nothing listens there.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "https://" + ln.Addr().String()
	ln.Close()
	return u
}

func cluster(t *testing.T, o Options, urls ...string) *Client {
	t.Helper()
	c, err := NewCluster(urls, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// TestFailoverFirstDown: the first node of three is gone; requests go to
// another, which is remembered (OnSwitch) and tried first from then on,
// and the WebSocket connects there too.
func TestFailoverFirstDown(t *testing.T) {
	ctx := context.Background()
	b, c3 := newNode(t), newNode(t)
	dead := closedURL(t)
	var switched []string
	var mu sync.Mutex
	c := cluster(t, Options{Fingerprint: fingerprintOf(b.Server), OnSwitch: func(u string) {
		mu.Lock()
		switched = append(switched, u)
		mu.Unlock()
	}}, dead, b.URL, c3.URL)
	if err := c.Do(ctx, "GET", "/healthz", nil, nil); err != nil {
		t.Fatal(err)
	}
	cur := c.Current()
	if cur == dead || (cur != b.URL && cur != c3.URL) {
		t.Fatalf("current %s after the first was down", cur)
	}
	mu.Lock()
	if len(switched) != 1 || switched[0] != cur {
		t.Fatalf("OnSwitch got %q, want [%s]", switched, cur)
	}
	mu.Unlock()
	other := b
	if cur == b.URL {
		other = c3
	}
	before := other.hits.Load()
	for range 5 {
		if err := c.Do(ctx, "GET", "/v1/account", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if other.hits.Load() != before {
		t.Fatalf("requests went to %s, not only to %s", other.URL, cur)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if conn.Base() != cur {
		t.Fatalf("WebSocket on %s, want %s", conn.Base(), cur)
	}
	if f, err := conn.Next(ctx); err != nil || f.Type != api.FrameEmpty {
		t.Fatalf("frame %+v %v", f, err)
	}
}

// TestFailoverConnectSkip: a WebSocket whose first node is gone connects
// to the next; after Skip (the connection was lost), the next connection
// goes to another node first, and a node that answers clears it.
func TestFailoverConnectSkip(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	c := cluster(t, Options{Fingerprint: fingerprintOf(a.Server)}, closedURL(t), a.URL, b.URL)
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := conn.Base()
	conn.CloseNow()
	c.Skip(first)
	conn, err = c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if conn.Base() == first {
		t.Fatalf("connected to %s again after Skip", first)
	}
	if c.Current() != conn.Base() || c.suspect.Load() != -1 {
		t.Fatalf("current %s suspect %d after connecting to %s", c.Current(), c.suspect.Load(), conn.Base())
	}
}

// TestFailoverRepeatable: a node's 503 (or a gateway's 502) moves a send
// to the next node with its body whole; a registration, which must not
// happen twice, is not moved.
func TestFailoverRepeatable(t *testing.T) {
	ctx := context.Background()
	down, up := newNode(t), newNode(t)
	down.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/history" {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"storage unreachable, try again"}}`))
	}
	c := cluster(t, Options{Fingerprint: fingerprintOf(up.Server)}, down.URL, up.URL)
	body := `{"type":3,"content":"AAEC"}`
	var res api.SendResult
	if err := c.DoRaw(ctx, "POST", "/v1/messages/bob/1", strings.NewReader(body), &res); err != nil {
		t.Fatal(err)
	}
	if got := <-down.bodies; got != body {
		t.Fatalf("first node got %q", got)
	}
	if got := <-up.bodies; got != body {
		t.Fatalf("second node got %q, want the whole body", got)
	}
	if c.Current() != up.URL {
		t.Fatalf("current %s", c.Current())
	}
	// A gateway's 502 (no hushd JSON) moves a repeatable request too.
	c.Prefer(down.URL)
	if err := c.Do(ctx, "POST", "/v1/history", api.HistoryDeposit{}, nil); err != nil {
		t.Fatal(err)
	}
	<-down.bodies
	<-up.bodies

	c.Prefer(down.URL)
	upHits := up.hits.Load()
	_, err := c.Register(ctx, api.Register{Username: "alice", Password: "password1"})
	if !IsCode(err, api.CodeUnavailable) {
		t.Fatalf("register: %v, want unavailable from the first node", err)
	}
	if up.hits.Load() != upHits {
		t.Fatal("a registration went to a second node after the first may have made it")
	}
	<-down.bodies
}

// TestFailoverAfterSent: a node that takes a request and drops the
// connection without answering may have acted on it: a read goes on to
// the next node, a new device does not.
func TestFailoverAfterSent(t *testing.T) {
	ctx := context.Background()
	drop, up := newNode(t), newNode(t)
	drop.answer = func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	c := cluster(t, Options{Fingerprint: fingerprintOf(up.Server)}, drop.URL, up.URL)
	if _, err := c.Devices(ctx); err != nil {
		t.Fatalf("a read after a dropped connection: %v", err)
	}
	c.Prefer(drop.URL)
	upHits := up.hits.Load()
	if _, err := c.AddDevice(ctx, api.AddDevice{Username: "alice", Password: "password1"}); err == nil {
		t.Fatal("adding a device through a node that dropped the connection succeeded")
	}
	if up.hits.Load() != upHits {
		t.Fatal("a new device was asked of a second node after the first may have made it")
	}
	<-drop.bodies
}

// TestFailoverCertificate: a node presenting another certificate is an
// error at once; the node after it, which presents the pinned one, is not
// tried, over HTTP or WebSocket.
func TestFailoverCertificate(t *testing.T) {
	ctx := context.Background()
	cert, _, err := tlscert.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	other.StartTLS()
	defer other.Close()
	good := newNode(t)
	fp := fingerprintOf(good.Server)
	c := cluster(t, Options{Fingerprint: fp}, other.URL, good.URL)
	var ce *CertificateError
	if err := c.Do(ctx, "GET", "/v1/account", nil, nil); !errors.As(err, &ce) || ce.Pinned != fp {
		t.Fatalf("HTTP: %v, want a certificate error", err)
	}
	if _, err := c.Connect(ctx); !errors.As(err, &ce) {
		t.Fatalf("WebSocket: %v, want a certificate error", err)
	}
	if good.hits.Load() != 0 {
		t.Fatal("went on to the next node after a certificate mismatch")
	}
	if c.Current() != other.URL {
		t.Fatal("the node with the wrong certificate stopped being current")
	}
}

// TestFailoverAllDown: every node gone: one error naming each, in which
// errors.As finds the network error.
func TestFailoverAllDown(t *testing.T) {
	a, b := closedURL(t), closedURL(t)
	c := cluster(t, Options{Fingerprint: strings.Repeat("ab", 32), Timeout: 5 * time.Second}, a, b)
	err := c.Do(context.Background(), "GET", "/v1/account", nil, nil)
	var ne net.Error
	var fe *FailoverError
	if !errors.As(err, &fe) || !errors.As(err, &ne) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("%v", err)
	}
	if _, err := c.Connect(context.Background()); !errors.As(err, &fe) {
		t.Fatalf("WebSocket: %v", err)
	}
}

// TestFailoverStreamedBody: a body that cannot be read again goes to one
// node only.
func TestFailoverStreamedBody(t *testing.T) {
	up := newNode(t)
	c := cluster(t, Options{Fingerprint: fingerprintOf(up.Server)}, closedURL(t), up.URL)
	err := c.DoRaw(context.Background(), "POST", "/v1/messages/bob/1", io.MultiReader(bytes.NewReader([]byte("{}"))), nil)
	if err == nil || up.hits.Load() != 0 {
		t.Fatalf("%v; second node hit %d times", err, up.hits.Load())
	}
}

// TestNewClusterRefuses: bad lists are refused whole.
func TestNewClusterRefuses(t *testing.T) {
	many := make([]string, MaxURLs+1)
	for i := range many {
		many[i] = "https://h" + string(rune('a'+i)) + ":1"
	}
	for _, urls := range [][]string{
		nil,
		many,
		{"https://a:1", "https://a:1/"},
		{"https://a:1", "ftp://b"},
		{"https://a:1", "https://"},
		{"https://a:1", "https://b:1\x1b[2J"},
		{"https://a:1", ""},
	} {
		if _, err := NewCluster(urls, Options{}); err == nil {
			t.Errorf("%q accepted", urls)
		}
	}
	if _, err := NewCluster(many[:MaxURLs], Options{}); err != nil {
		t.Errorf("%d URLs: %v", MaxURLs, err)
	}
}

// TestOrder: the first is the current URL; the rest are each other URL
// once, starting anywhere among them; a suspect current URL goes last.
func TestOrder(t *testing.T) {
	c := cluster(t, Options{}, "https://a:1", "https://b:1", "https://c:1", "https://d:1")
	starts := map[int]bool{}
	for range 200 {
		c.Prefer("https://b:1")
		o := c.order()
		seen := map[int]bool{}
		for _, i := range o {
			seen[i] = true
		}
		if len(o) != 4 || len(seen) != 4 || o[0] != 1 {
			t.Fatalf("order %v", o)
		}
		starts[o[1]] = true
		c.Skip("https://b:1")
		if o := c.order(); o[3] != 1 || o[0] == 1 {
			t.Fatalf("order after Skip %v", o)
		}
		c.suspect.Store(-1)
	}
	if len(starts) != 3 {
		t.Fatalf("failover started at %v only", starts)
	}
}

func TestRepeatable(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v1/history?after=3", true},
		{"GET", "/v1/keys/bob", true},
		{"PUT", "/v1/keys", true},
		{"PUT", "/v1/recovery", false},
		{"PUT", "/v1/links/abc/box", false},
		{"POST", "/v1/links/abc/box", true},
		{"POST", "/v1/messages/bob/1", true},
		{"POST", "/v1/ordinary/messages", true},
		{"POST", "/v1/history", true},
		{"POST", "/v1/accounts", false},
		{"POST", "/v1/devices", false},
		{"POST", "/v1/login", false},
		{"POST", "/v1/links", false},
		{"POST", "/v1/links/abc/hello", false},
		{"POST", "/v1/links/abc/device", false},
		{"DELETE", "/v1/devices/2", false},
		{"DELETE", "/v1/blocks/bob", true},
	} {
		if got := repeatable(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %v", tc.method, tc.path, got)
		}
	}
}
