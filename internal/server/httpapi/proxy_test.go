package httpapi_test

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/netip"
	"testing"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestTrustedProxy reproduces part of finding 9 of issue 14: behind a
// reverse proxy every client shared one rate-limit key and /metrics
// counted as loopback. X-Forwarded-For is believed only from
// --trusted-proxy addresses, and never from anyone else.
func TestTrustedProxy(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) })
	lim := servertest.Generous
	lim.RegisterPerIP.Rate, lim.RegisterPerIP.Burst = 1.0/3600, 1
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	do := func(t *testing.T, env *servertest.Env, method, path, xff, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, env.URL+path, bytes.NewReader([]byte(body)))
		check(t, err)
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := hc.Do(req)
		check(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	register := func(name string) string {
		return `{"username":"` + name + `","password":"password1"}`
	}

	t.Run("behind a trusted proxy", func(t *testing.T) {
		env := servertest.StartWith(t, server.Config{Limits: lim}, t.TempDir(), httpapi.Options{Metrics: metrics,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		if c := do(t, env, "GET", "/metrics", "203.0.113.5", ""); c != 403 {
			t.Fatalf("/metrics for a forwarded client: %d, want 403", c)
		}
		if c := do(t, env, "GET", "/metrics", "", ""); c != 200 {
			t.Fatalf("/metrics from the proxy's host itself: %d, want 200", c)
		}
		if c := do(t, env, "GET", "/metrics", "garbage", ""); c != 403 {
			t.Fatalf("/metrics with a malformed X-Forwarded-For: %d, want 403", c)
		}
		// Each forwarded client has its own bucket; a client's own
		// X-Forwarded-For entry, left of the proxy's, does not count.
		if c := do(t, env, "POST", "/v1/accounts", "203.0.113.5", register("amy")); c != 201 {
			t.Fatalf("first registration: %d", c)
		}
		if c := do(t, env, "POST", "/v1/accounts", "198.51.100.1, 203.0.113.5", register("ben")); c != 429 {
			t.Fatalf("second registration from the same client: %d, want 429", c)
		}
		if c := do(t, env, "POST", "/v1/accounts", "203.0.113.6", register("cat")); c != 201 {
			t.Fatalf("another client behind the proxy: %d, want 201", c)
		}
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		env := servertest.StartWith(t, server.Config{Limits: lim}, t.TempDir(), httpapi.Options{Metrics: metrics})
		if c := do(t, env, "POST", "/v1/accounts", "203.0.113.5", register("amy")); c != 201 {
			t.Fatalf("first registration: %d", c)
		}
		// A forged X-Forwarded-For gets no fresh bucket.
		if c := do(t, env, "POST", "/v1/accounts", "203.0.113.6", register("ben")); c != 429 {
			t.Fatalf("registration with a forged X-Forwarded-For: %d, want 429", c)
		}
		if c := do(t, env, "GET", "/metrics", "203.0.113.5", ""); c != 200 {
			t.Fatalf("/metrics from loopback: %d", c)
		}
	})
}
