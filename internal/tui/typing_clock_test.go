package tui

import (
	"fmt"
	"testing"
	"time"
)

// TestTypingClock: when the UI tells that the person types: started once
// per refresh while the line changes, stopped when it is emptied, turns
// into a command, stays unchanged for the idle time or the conversation
// changes; nothing on sending; never more than two per refresh.
func TestTypingClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	bob, bobSecret := convKey{"bob", false}, convKey{"bob", true}
	var c typingClock
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	steps := []struct {
		name string
		got  []typingSend
		want string
	}{
		{"first key", c.input(at(0), bob, "h"), "[bob/o started]"},
		{"more keys", c.input(at(1), bob, "he"), "[]"},
		{"refresh", c.input(at(5), bob, "hel"), "[bob/o started]"},
		{"not idle yet", c.tick(at(14)), "[]"},
		{"idle", c.tick(at(15)), "[bob/o stopped]"},
		{"idle again", c.tick(at(16)), "[]"},
		{"typing again", c.input(at(20), bob, "hell"), "[bob/o started]"},
		{"cleared", c.input(at(21), bob, ""), "[bob/o stopped]"},
		{"again within the refresh", c.input(at(22), bob, "x"), "[]"},
		{"flapping", c.input(at(23), bob, ""), "[]"},
		{"after the refresh", c.input(at(25), bob, "x"), "[bob/o started]"},
		{"a command", c.input(at(26), bob, "/timer"), "[bob/o stopped]"},
		{"typing a command", c.input(at(31), bob, "/timer 30s"), "[]"},
		{"spaces", c.input(at(32), bob, "   "), "[]"},
		{"text", c.input(at(33), bob, "hi"), "[bob/o started]"},
		{"other conversation", c.input(at(34), bobSecret, "hi!"), "[bob/o stopped]"},
		{"there after the refresh", c.input(at(38), bobSecret, "hi!!"), "[bob/s started]"},
		{"leave", c.leave(), "[bob/s stopped]"},
		{"leave again", c.leave(), "[]"},
		{"no conversation", c.input(at(50), convKey{}, "hi"), "[]"},
	}
	for _, s := range steps {
		if g := sends(s.got); g != s.want {
			t.Fatalf("%s: %s, want %s", s.name, g, s.want)
		}
	}
	// Sending the message sends nothing, and the emptied line then
	// nothing either.
	c = typingClock{}
	if g := sends(c.input(at(0), bob, "hello")); g != "[bob/o started]" {
		t.Fatal(g)
	}
	c.sent()
	if g := sends(append(c.input(at(1), bob, ""), c.tick(at(30))...)); g != "[]" {
		t.Fatalf("after sending: %s", g)
	}

	// However one types, at most two a refresh.
	c = typingClock{}
	n := 0
	for i := 0; i < 1000; i++ {
		v := ""
		if i%2 == 0 {
			v = "x"
		}
		n += len(c.input(at(float64(i)/10), bob, v))
		n += len(c.tick(at(float64(i) / 10)))
	}
	if most := 2 * (100/5 + 1); n > most {
		t.Fatalf("%d indicators in 100 s of flapping, want at most %d", n, most)
	}
}

func sends(ss []typingSend) string {
	s := "["
	for i, x := range ss {
		if i > 0 {
			s += " "
		}
		kind, what := "o", "stopped"
		if x.to.secret {
			kind = "s"
		}
		if x.started {
			what = "started"
		}
		s += fmt.Sprintf("%s/%s %s", x.to.peer, kind, what)
	}
	return s + "]"
}
