package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/content"
)

// TimerHelp says what a timer looks like, for usage lines and errors.
const TimerHelp = "a duration such as 30s, 5m, 1h or 1d (5s to 24h), or off"

// ParseTimer reads a disappearing-message timer as a person types it, for
// the command line and the terminal UI alike: "off" (no timer, the only way
// to say so), or a whole number of seconds from [content.MinTimer] to
// [content.MaxTimer] written as Go writes durations ("90s", "5m", "1h30m")
// or in days ("1d"). Days stop at one: receivers cap every timer at 24 h.
// A zero timer is refused, as it would send a message that never
// disappears.
func ParseTimer(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a timer: give %s", s, TimerHelp)
	}
	switch {
	case d == 0:
		return 0, fmt.Errorf("a timer of %s would never make a message disappear: give 5s to 24h, or off for no timer", s)
	case d < 0:
		return 0, fmt.Errorf("%q is not a timer: give %s", s, TimerHelp)
	}
	if err := checkTimer(d, s); err != nil {
		return 0, err
	}
	return d, nil
}

// parseDuration is time.ParseDuration, plus a whole number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// checkTimer checks a nonzero timer's bounds; typed is how the person
// wrote it, if they did.
func checkTimer(d time.Duration, typed string) error {
	if typed == "" {
		typed = fmtTimer(d)
	}
	switch {
	case d < content.MinTimer:
		return fmt.Errorf("a timer of %s is too short: the shortest is %v", typed, fmtTimer(content.MinTimer))
	case d > content.MaxTimer:
		return fmt.Errorf("a timer of %s is too long: the longest is %v (1d)", typed, fmtTimer(content.MaxTimer))
	case d%time.Second != 0:
		return errors.New("a timer is a whole number of seconds")
	}
	return nil
}

// fmtTimer writes a timer as people read it: 30s, 5m, 1h30m, not 1h30m0s.
func fmtTimer(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatTimer writes a timer as ParseTimer reads it ("off" for none).
func FormatTimer(d time.Duration) string {
	if d == 0 {
		return "off"
	}
	return fmtTimer(d)
}
