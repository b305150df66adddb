package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "hush v1.2.3, go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "3c1ee2d0"}, {Key: "vcs.time", Value: "2026-12-02T07:40:00Z"},
			{Key: "vcs.modified", Value: "true"}}}, "hush (devel) revision 3c1ee2d0 (modified) 2026-12-02T07:40:00Z, go1.26.0"},
		{debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			"hush (devel) revision abc"},
	} {
		if got := format("hush", &c.bi); got != c.want {
			t.Errorf("format(%+v) = %q, want %q", c.bi, got, c.want)
		}
	}
	// This test binary has build information.
	if s := String("x"); !strings.HasPrefix(s, "x ") || !strings.Contains(s, "go1.") {
		t.Errorf("String = %q", s)
	}
}
