// Package httpapi serves hushd's API (docs/api.md) over HTTP and WebSocket:
// it decodes requests, authenticates devices, and calls internal/server.
// It holds no logic of its own beyond the transport.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// maxBody bounds every request body; the largest legitimate ones are a
// 256 KiB message in base64 and a full key upload (~220 KiB).
const maxBody = 1 << 20

// Options configure a Handler.
type Options struct {
	Logger *slog.Logger
	// Metrics, if set, is served at /metrics to loopback clients only.
	Metrics http.Handler
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed. A request from one of them counts as coming from the
	// rightmost address of X-Forwarded-For that is not itself a trusted
	// proxy (for rate limits and the loopback check of /metrics); from
	// anyone else, X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// Registerer receives the HTTP metrics; may be nil.
	Registerer prometheus.Registerer
	// Linger is how long an idle WebSocket keeps its goroutine before it
	// is parked (2 s if zero; negative: park as soon as nothing is
	// buffered, which tests use to park between every two messages).
	Linger time.Duration
}

// Handler is the http.Handler of the API.
type Handler struct {
	srv *server.Server
	log *slog.Logger
	mux *http.ServeMux

	trusted []netip.Prefix

	reqDur *prometheus.HistogramVec
	linger time.Duration
	parked atomic.Int64 // WebSockets parked (may be off by one for a moment)

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // WebSocket send batches being processed
	conns    sync.WaitGroup // WebSocket connections being served
}

// New returns the API handler for srv.
func New(srv *server.Server, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Handler{srv: srv, log: o.Logger, mux: http.NewServeMux(), linger: o.Linger, trusted: o.TrustedProxies}
	if h.linger == 0 {
		h.linger = defaultLinger
	}
	h.reqDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hushd_http_request_seconds",
		Help: "HTTP request latency by route and status.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
		[]string{"route", "code"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.reqDur, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hushd_websocket_parked",
			Help: "WebSocket connections idle and parked (holding no goroutine)."}, func() float64 { return float64(h.Parked()) }))
	}
	m := h.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	if o.Metrics != nil {
		m.Handle("GET /metrics", h.loopbackOnly(o.Metrics))
	}
	// Each endpoint is one call of the server (docs/api.md), adapted by
	// endpoint: public ones get no Principal.
	m.HandleFunc("POST /v1/accounts", public(endpoint(201, func(r *http.Request, _ server.Principal, req api.Register) (api.DeviceCredential, error) {
		return srv.Register(r.Context(), h.clientIP(r), req)
	})))
	m.HandleFunc("POST /v1/devices", public(endpoint(201, func(r *http.Request, _ server.Principal, req api.AddDevice) (api.DeviceCredential, error) {
		return srv.AddDevice(r.Context(), h.clientIP(r), req)
	})))
	m.HandleFunc("POST /v1/login", public(endpoint(200, func(r *http.Request, _ server.Principal, req api.Login) (api.DeviceCredential, error) {
		return srv.Login(r.Context(), h.clientIP(r), req)
	})))
	m.HandleFunc("GET /v1/account", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.Account, error) {
		return srv.Account(r.Context(), p)
	})))
	m.HandleFunc("GET /v1/devices", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.Devices, error) {
		return srv.Devices(r.Context(), p)
	})))
	m.HandleFunc("DELETE /v1/devices/{id}", h.authed(endpoint(204, func(r *http.Request, p server.Principal, _ none) (none, error) {
		id, err := parseDevice(r.PathValue("id"))
		if err != nil {
			return none{}, err
		}
		return none{}, srv.RemoveDevice(r.Context(), p, id)
	})))
	m.HandleFunc("PUT /v1/devices/self/secret", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.MakeSecret) (none, error) {
		return none{}, srv.MakeSecret(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/directory/{username}", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.DirectoryEntry, error) {
		return srv.Directory(r.Context(), p, r.PathValue("username"))
	})))
	m.HandleFunc("PUT /v1/keys", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.KeyUpload) (none, error) {
		return none{}, srv.UploadKeys(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/keys", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.KeyCounts, error) {
		return srv.KeyCounts(r.Context(), p)
	})))
	bundle := h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.Bundle, error) {
		var dev uint32 // 0: the secret device
		if d := r.PathValue("device"); d != "" {
			var err error
			if dev, err = parseDevice(d); err != nil {
				return api.Bundle{}, err
			}
		}
		return srv.FetchBundle(r.Context(), p, r.PathValue("username"), dev)
	}))
	m.HandleFunc("GET /v1/keys/{username}", bundle)
	m.HandleFunc("GET /v1/keys/{username}/{device}", bundle)
	m.HandleFunc("POST /v1/messages/{username}/{device}", h.authed(endpoint(200, func(r *http.Request, p server.Principal, req api.SendMessage) (api.SendResult, error) {
		dev, err := parseDevice(r.PathValue("device"))
		if err != nil {
			return api.SendResult{}, err
		}
		res := srv.Send(r.Context(), p, []server.Outgoing{{To: r.PathValue("username"), Device: dev, Msg: req}})
		return res[0].Result, res[0].Err
	})))
	m.HandleFunc("GET /v1/ws", h.authed(h.websocket))
	m.HandleFunc("GET /v1/blocks", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.Blocks, error) {
		return srv.Blocked(r.Context(), p)
	})))
	m.HandleFunc("PUT /v1/blocks/{username}", h.authed(endpoint(204, func(r *http.Request, p server.Principal, _ none) (none, error) {
		return none{}, srv.Block(r.Context(), p, r.PathValue("username"), true)
	})))
	m.HandleFunc("DELETE /v1/blocks/{username}", h.authed(endpoint(204, func(r *http.Request, p server.Principal, _ none) (none, error) {
		return none{}, srv.Block(r.Context(), p, r.PathValue("username"), false)
	})))
	m.HandleFunc("POST /v1/reports", h.authed(endpoint(201, func(r *http.Request, p server.Principal, req api.Report) (api.ReportResult, error) {
		return srv.Report(r.Context(), p, req)
	})))
	h.ordinaryRoutes(m)
	h.historyRoutes(m)
	h.linkRoutes(m)
	h.blobRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &server.Error{Code: api.CodeNotFound, Message: "no such endpoint"})
	})
	return h
}

// Parked returns how many of the handler's WebSockets are parked: idle,
// holding no goroutine.
func (h *Handler) Parked() int { return int(h.parked.Load()) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: 200}
	h.mux.ServeHTTP(sw, r)
	if r.Pattern != "GET /v1/ws" {
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		h.reqDur.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	}
}

// Shutdown stops taking WebSocket sends and waits for those being
// processed to be answered, so that nothing acknowledged is lost. Call it
// after http.Server.Shutdown and before closing the server.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitClosed waits until every WebSocket connection has finished its
// closing handshake (or ctx ends). Call it after closing the server, whose
// sessions start those handshakes.
func (h *Handler) WaitClosed(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true // no new connection from now on
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (and the WebSocket hijack) reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *Handler) loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, ok := h.clientAddr(r); !ok || !ip.IsLoopback() {
			writeError(w, &server.Error{Code: api.CodeForbidden, Message: "metrics are served to loopback clients only"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) isTrusted(ip netip.Addr) bool {
	for _, p := range h.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddr is the client's address: the peer's, or behind a trusted
// proxy the rightmost X-Forwarded-For entry that is not a trusted proxy.
// ok is false when the address is not known: a malformed entry, where
// the walk stops at the last address known good.
func (h *Handler) clientAddr(r *http.Request) (ip netip.Addr, ok bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip = ap.Addr().Unmap()
	if len(h.trusted) == 0 || !h.isTrusted(ip) {
		return ip, true
	}
	hops := r.Header.Values("X-Forwarded-For")
	if len(hops) == 0 {
		return ip, true // the trusted proxy itself, not forwarding
	}
	hops = strings.Split(strings.Join(hops, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip, false
		}
		ip = hop.Unmap()
		if !h.isTrusted(ip) {
			return ip, true
		}
	}
	return ip, true
}

// clientIP is the key of the client's address for rate limits.
func (h *Handler) clientIP(r *http.Request) string {
	ip, _ := h.clientAddr(r)
	if !ip.IsValid() {
		return r.RemoteAddr
	}
	return ip.String()
}

// statuses maps every API error code to the HTTP status it is answered
// with: the table of docs/api.md ("Errors"), which a test holds to this one.
// A code missing here is answered 500 (and a test fails).
var statuses = map[string]int{
	api.CodeBadRequest:        400,
	api.CodeBadSignature:      400,
	api.CodeUnauthorized:      401,
	api.CodeForbidden:         403,
	api.CodeNotFound:          404,
	api.CodeUsernameTaken:     409,
	api.CodeMailboxFull:       409,
	api.CodeNotSecretDevice:   409,
	api.CodeStaleSecretDevice: 409,
	api.CodeTooManyDevices:    409,
	api.CodeDeviceMismatch:    409,
	api.CodeLinkUsed:          409,
	api.CodeConflict:          409,
	api.CodeHistoryFull:       409,
	api.CodeNotReady:          409,
	api.CodeBadOffset:         409,
	api.CodeTooLarge:          413,
	api.CodeQuotaExceeded:     413,
	api.CodeReportRefused:     422,
	api.CodeRateLimited:       429,
	api.CodeInternal:          500,
	api.CodeUnavailable:       503,
}

// errInternal is what a client sees of an error that is not a
// *server.Error: nothing.
var errInternal = &server.Error{Code: api.CodeInternal, Message: "internal error"}

// statusError is an error of the HTTP layer whose status is not its
// code's: 415 (bad_request) for a body that is not JSON.
type statusError struct {
	status int
	err    *server.Error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// apiError is what the client is told of err, and with which status.
func apiError(err error) (int, *server.Error) {
	var e *server.Error
	if !errors.As(err, &e) {
		e = errInternal
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status, e
	}
	status, ok := statuses[e.Code]
	if !ok {
		return 500, errInternal
	}
	return status, e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	status, e := apiError(err)
	if status == 401 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hushd"`)
	}
	if status == 429 {
		w.Header().Set("Retry-After", "60")
	}
	writeJSON(w, status, api.Error{Err: errorBody(e)})
}

func errorBody(e *server.Error) api.ErrorBody {
	return api.ErrorBody{Code: e.Code, Message: e.Message, Mismatches: e.Mismatches}
}

func badRequest(format string, args ...any) *server.Error {
	return &server.Error{Code: api.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// none, as an endpoint's request type, means that the endpoint reads no
// body; as its result type, that it answers 204 with no body.
type none struct{}

// endpoint adapts fn, an endpoint's call of the server, to HTTP: it
// decodes the body strictly as a Req (readBody; skipped if Req is none),
// calls fn, and answers the result as JSON with status ok (204 and no body
// if Resp is none), or the error with its status (writeError). Path
// parameters are fn's to read, with r.PathValue.
func endpoint[Req, Resp any](ok int, fn func(r *http.Request, p server.Principal, req Req) (Resp, error)) func(http.ResponseWriter, *http.Request, server.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p server.Principal) {
		var req Req
		if _, noBody := any(req).(none); !noBody {
			var err error
			if req, err = readBody[Req](w, r); err != nil {
				writeError(w, err)
				return
			}
		}
		resp, err := fn(r, p, req)
		if err != nil {
			writeError(w, err)
			return
		}
		if _, noBody := any(resp).(none); noBody {
			w.WriteHeader(204)
			return
		}
		writeJSON(w, ok, resp)
	}
}

// public serves fn without authentication (fn gets the zero Principal).
func public(fn func(http.ResponseWriter, *http.Request, server.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fn(w, r, server.Principal{}) }
}

// Decode reads one JSON value of type T from b, strictly: unknown fields,
// trailing data and wrong types are errors. It is what every handler uses,
// and what the fuzz tests exercise.
func Decode[T any](b []byte) (T, error) {
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, badRequest("malformed JSON body: %v", jsonError(err))
	}
	if d.More() {
		return v, badRequest("malformed JSON body: data after the JSON value")
	}
	if _, err := d.Token(); err != io.EOF {
		return v, badRequest("malformed JSON body: data after the JSON value")
	}
	return v, nil
}

// jsonError keeps decoder errors short and free of the input's bytes.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid"
}

func readBody[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var zero T
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return zero, &statusError{415, badRequest("Content-Type must be application/json")}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return zero, &server.Error{Code: api.CodeTooLarge, Message: fmt.Sprintf("body larger than %d bytes", maxBody)}
		}
		return zero, badRequest("reading body: %v", err)
	}
	return Decode[T](b)
}

// authed authenticates the request's bearer credential and serves fn as
// the device it names.
func (h *Handler) authed(fn func(w http.ResponseWriter, r *http.Request, p server.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		cred, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			writeError(w, &server.Error{Code: api.CodeUnauthorized, Message: "missing or invalid credential"})
			return
		}
		p, err := h.srv.Authenticate(r.Context(), strings.TrimSpace(cred))
		if err != nil {
			writeError(w, err)
			return
		}
		fn(w, r, p)
	}
}

func parseDevice(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, badRequest("device id must be a positive integer")
	}
	return uint32(n), nil
}
