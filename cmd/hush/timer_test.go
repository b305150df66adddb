package main

import (
	"strings"
	"testing"
)

// TestTimerFlag: a zero timer is refused as a usage error (it used to send
// a message that never disappears), "off" is how to say no timer, and a bad
// value says what a timer looks like.
func TestTimerFlag(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	for timer, want := range map[string]string{
		"0s":   "a timer of 0s would never make a message disappear: give 5s to 24h, or off for no timer",
		"0":    "never make a message disappear",
		"abc":  `"abc" is not a timer: give a duration such as 30s, 5m, 1h or 1d (5s to 24h), or off`,
		"100d": "a timer of 100d is too long: the longest is 24h (1d)",
		"2s":   "a timer of 2s is too short: the shortest is 5s",
	} {
		_, e, code := alice.run("send", "--secret", "--to", "bob", "--timer", timer, "refused "+timer)
		if code != 2 || !strings.Contains(e, want) {
			t.Errorf("send --timer %s: exit %d, %s", timer, code, e)
		}
	}
	if o := alice.must("history", "bob"); strings.Contains(o, "refused") {
		t.Fatalf("a refused message was sent: %s", o)
	}
	alice.must("send", "--secret", "--to", "bob", "--timer", "off", "stays")
	alice.must("send", "--secret", "--to", "bob", "--timer", "1d", "a day")
	got := lines(t, bob.must("recv", "--wait", "5s", "--json"))
	if len(got) != 2 || got[0]["text"] != "stays" || got[0]["timer"] != nil || got[1]["timer"].(float64) != 86400 {
		t.Fatalf("bob got %v", got)
	}
}
