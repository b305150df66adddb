// Package buildinfo says which build of hush a binary is, for --version:
// the module version and the VCS revision the go command stamped into it
// (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// String is the version line of program, e.g.
// "hushd (devel) revision 3c1ee2d… (modified) 2026-12-02T07:40:00Z, go1.26.0".
func String(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return program + " (no build information)"
	}
	return format(program, bi)
}

func format(program string, bi *debug.BuildInfo) string {
	var b strings.Builder
	b.WriteString(program)
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	b.WriteString(" " + v)
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		b.WriteString(" revision " + rev)
		if modified {
			b.WriteString(" (modified)")
		}
		if at != "" {
			b.WriteString(" " + at)
		}
	}
	if bi.GoVersion != "" {
		b.WriteString(", " + bi.GoVersion)
	}
	return b.String()
}
