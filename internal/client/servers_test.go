package client

import (
	"strings"
	"testing"
)

func TestParseServers(t *testing.T) {
	for in, want := range map[string]string{
		"https://a:8443":                         "https://a:8443",
		"https://A.example:8443/":                "https://a.example:8443",
		"https://a:1, https://b:2 ,https://c":    "https://a:1 https://b:2 https://c",
		"https://[::1]:8443,https://127.0.0.1:1": "https://[::1]:8443 https://127.0.0.1:1",
	} {
		got, err := ParseServers(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	many := strings.TrimSuffix(strings.Repeat("https://h:1,", MaxServers+1), ",")
	for in, why := range map[string]string{
		"":                               "empty",
		"https://a:1,":                   "empty",
		"https://a:1,,https://b:1":       "empty",
		"http://a:1":                     "plain http",
		"https://a:1,http://b:1":         "plain http",
		"ftp://a:1":                      "https://HOST:PORT",
		"a:1":                            "https://HOST:PORT",
		"https://":                       "https://HOST:PORT",
		"https://a:1/v1":                 "without a path",
		"https://a:1?x=1":                "without a path",
		"https://a:1?":                   "without a path",
		"https://a:1#f":                  "without a path",
		"https://u:p@a:1":                "without a path",
		"https://a:99999":                "port",
		"https://a:0":                    "port",
		"https://a:1,https://A:1/":       "twice",
		many:                             "at most",
		"https://a:1,https://b:1\x1b[2J": "control characters",
		"https://a:1\nhttps://b:1":       "control characters",
		"https://a:1,https://b\u202e:1":  "control characters",
		"https://a:1 https://b:1":        "HOST:PORT",
	} {
		if got, err := ParseServers(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %q %v, want an error saying %q", in, got, err, why)
		}
	}
}

// FuzzParseServers: whatever is accepted is a list of at most MaxServers
// distinct https://HOST[:PORT] URLs that parse to themselves again.
func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"https://a:8443", "https://a:1,https://b:2", "http://a:1", "https://[::1]:1/", "https://a:1,https://A:1", "https://a:1?x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseServers(s)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > MaxServers {
			t.Fatalf("%q: %d URLs", s, len(got))
		}
		again, err := ParseServers(strings.Join(got, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(got, ",") {
			t.Fatalf("%q: %q parses to %q %v", s, got, again, err)
		}
		for _, u := range got {
			if rest, ok := strings.CutPrefix(u, "https://"); !ok || rest == "" || strings.ContainsAny(rest, ",\n\r\t /?#@") {
				t.Fatalf("%q: %q", s, u)
			}
		}
	})
}
