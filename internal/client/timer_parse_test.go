package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/content"
)

// TestParseTimer: "off" is the only way to say no timer; a zero timer is
// refused (it sent a message that never disappears); errors say what a
// timer looks like.
func TestParseTimer(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"off": 0, "OFF": 0, "5s": 5 * time.Second, "30s": 30 * time.Second, "5m": 5 * time.Minute,
		"1h30m": 90 * time.Minute, "24h": 24 * time.Hour, "1d": 24 * time.Hour, " 90s ": 90 * time.Second,
	} {
		got, err := client.ParseTimer(in)
		if err != nil || got != want {
			t.Errorf("ParseTimer(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{
		"0":      "never make a message disappear",
		"0s":     "never make a message disappear",
		"0d":     "never make a message disappear",
		"0h0m":   "never make a message disappear",
		"2s":     "too short: the shortest is 5s",
		"100d":   "too long: the longest is 24h (1d)",
		"25h":    "too long: the longest is 24h (1d)",
		"2d":     "too long",
		"abc":    "30s, 5m, 1h or 1d",
		"":       "30s, 5m, 1h or 1d",
		"-5s":    "30s, 5m, 1h or 1d",
		"-1d":    "30s, 5m, 1h or 1d",
		"6.5s":   "whole number of seconds",
		"d":      "30s, 5m, 1h or 1d",
		"99999d": "30s, 5m, 1h or 1d",
	} {
		d, err := client.ParseTimer(in)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseTimer(%q) = %v, %v; want an error with %q", in, d, err, wantErr)
		}
	}
}

// FuzzParseTimer: whatever is typed, a timer is off or within bounds in
// whole seconds, and an accepted one passes CheckText.
func FuzzParseTimer(f *testing.F) {
	for _, s := range []string{"off", "0", "0s", "5s", "30s", "1h30m", "24h", "1d", "7d", "100d", "abc", "-5s", "1.5s", "9223372036s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := client.ParseTimer(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseTimer(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d == 0 {
			if !strings.EqualFold(strings.TrimSpace(s), "off") {
				t.Fatalf("ParseTimer(%q) = no timer", s)
			}
			return
		}
		if d < content.MinTimer || d > content.MaxTimer || d%time.Second != 0 {
			t.Fatalf("ParseTimer(%q) = %v", s, d)
		}
		if err := client.CheckText("x", d); err != nil {
			t.Fatalf("ParseTimer(%q) = %v, which CheckText refuses: %v", s, d, err)
		}
	})
}
