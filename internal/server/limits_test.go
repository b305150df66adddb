package server

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
)

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "hushd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if cfg.Argon2Time == 0 {
		cfg.Argon2Time, cfg.Argon2MemoryKiB = 1, 1024
	}
	s := New(st, cfg)
	t.Cleanup(s.Close)
	return s
}

// TestLoginUsernamesNotKept reproduces finding 4 of issue 14: 200 logins
// with 1 MB usernames from 10 addresses made the per-username limiter hold
// 190 MB. Invalid usernames are refused before they key a limiter.
func TestLoginUsernamesNotKept(t *testing.T) {
	s := newTestServer(t, Config{Limits: DefaultLimits})
	big := strings.Repeat("a", 1<<20)
	for i := range 200 {
		ip := fmt.Sprintf("192.0.2.%d", i%10)
		_, err := s.Login(t.Context(), ip, api.Login{Username: fmt.Sprint(big, i), Password: "password1", DeviceID: 1})
		if e, ok := err.(*Error); !ok || e.Code != api.CodeUnauthorized && e.Code != api.CodeRateLimited {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if n := s.limLoginUser.(countedLimiter).Limiter.(*ratelimit.Limiter).Len(); n != 0 {
		t.Fatalf("the per-username limiter holds %d keys for invalid usernames", n)
	}
	if n := s.limLoginIP.(countedLimiter).Limiter.(*ratelimit.Limiter).Len(); n != 10 {
		t.Fatalf("the per-address limiter holds %d keys, want 10", n)
	}
}

// TestIPv6Prefix: per-address limits count an IPv6 /64 as one address, so
// that a client cannot walk its prefix for fresh buckets.
func TestIPv6Prefix(t *testing.T) {
	s := newTestServer(t, Config{Limits: DefaultLimits})
	burst := int(DefaultLimits.RegisterPerIP.Burst)
	for i := range burst + 1 {
		ip := fmt.Sprintf("2001:db8:0:1::%x", i+1)
		_, err := s.Register(t.Context(), ip, api.Register{Username: fmt.Sprintf("user%d", i), Password: "password1"})
		if i < burst && err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
		if i == burst {
			if e, ok := err.(*Error); !ok || e.Code != api.CodeRateLimited {
				t.Fatalf("registration %d from the same /64: %v, want rate_limited", i, err)
			}
		}
	}
	// Another /64 and an IPv4 address have their own buckets.
	for i, ip := range []string{"2001:db8:0:2::1", "192.0.2.1"} {
		if _, err := s.Register(t.Context(), ip, api.Register{Username: fmt.Sprintf("other%d", i), Password: "password1"}); err != nil {
			t.Fatalf("registration from %s: %v", ip, err)
		}
	}
}

// TestNamesRefuseFormatCharacters reproduces part of finding 9 of issue
// 14: display names accepted format characters (U+202E, U+200B). Display
// and device names refuse control, format and bidi characters, and the
// refused request changes nothing.
func TestNamesRefuseFormatCharacters(t *testing.T) {
	s := newTestServer(t, Config{Limits: Limits{}})
	bad := []string{"evil\u202eexe.txt", "a\u200bb", "\u2066x\u2069", "line\u2028break", "\x1b]0;title\x07", "tab\there", "\u0085next"}
	for i, name := range bad {
		_, err := s.Register(t.Context(), "192.0.2.1", api.Register{Username: fmt.Sprintf("user%d", i), Password: "password1", DisplayName: name})
		if e, ok := err.(*Error); !ok || e.Code != api.CodeBadRequest {
			t.Errorf("display name %q: %v, want bad_request", name, err)
		}
		_, err = s.Register(t.Context(), "192.0.2.1", api.Register{Username: fmt.Sprintf("user%d", i), Password: "password1", DeviceName: name})
		if e, ok := err.(*Error); !ok || e.Code != api.CodeBadRequest {
			t.Errorf("device name %q: %v, want bad_request", name, err)
		}
	}
	if _, err := s.st.AccountByUsername(t.Context(), "user0"); err == nil {
		t.Error("a refused registration created the account")
	}
	if _, err := s.Register(t.Context(), "192.0.2.1", api.Register{Username: "zoe", Password: "password1",
		DisplayName: "Zoë Ångström 李 🙂", DeviceName: "téléphone"}); err != nil {
		t.Errorf("ordinary names refused: %v", err)
	}
	if _, err := s.AddDevice(t.Context(), "192.0.2.1", api.AddDevice{Username: "zoe", Password: "password1", DeviceName: "x\u202e"}); err == nil {
		t.Error("AddDevice accepted a bidi override in the device name")
	}
}

// TestRateLimitedCounted: each limit's refusals are counted by name in
// hushd_rate_limited_total, and every limit is there from the start (at 0)
// so that an alert on its rate has a series to look at.
func TestRateLimitedCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, Config{Limits: DefaultLimits, Registerer: reg})
	burst := int(DefaultLimits.RegisterPerIP.Burst)
	for i := range burst + 2 {
		_, err := s.Register(t.Context(), "192.0.2.7", api.Register{Username: fmt.Sprintf("user%d", i), Password: "password1"})
		if (err != nil) != (i >= burst) {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "hushd_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	// Every limit is there; only the one that refused counts.
	for _, name := range []string{"register", "login-ip", "login-user", "bundle-pair", "bundle-user", "bundle-target",
		"lookup", "messages", "messages-pair", "bytes", "group-copies", "history", "history-bytes", "link-ip", "link", "reports",
		"blob-requests", "blobs", "blob-bytes", "blob-download"} {
		want := 0.0
		if name == "register" {
			want = 2
		}
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("hushd_rate_limited_total{limit=%q}: %v (present %v), want %v", name, v, ok, want)
		}
	}
	if len(got) != 20 {
		t.Errorf("hushd_rate_limited_total has %d limits, want 20: %v", len(got), got)
	}
}
