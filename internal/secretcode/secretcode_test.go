package secretcode

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
)

var form = regexp.MustCompile(`^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$`)

func TestRoundTrip(t *testing.T) {
	for range 100 {
		var b [Size]byte
		rand.Read(b[:])
		s := Format(&b)
		if !form.MatchString(s) {
			t.Fatalf("%q is not 8 groups of 4", s)
		}
		for _, v := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", ""), strings.ReplaceAll(s, "-", " "), " " + strings.ReplaceAll(s, "-", " - ") + " "} {
			got, err := Parse(v)
			if err != nil || got != b {
				t.Fatalf("Parse(%q) = %x, %v; want %x", v, got, err, b)
			}
		}
	}
	var zero [Size]byte
	if s := Format(&zero); s != "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA" {
		t.Errorf("zero code is %q", s)
	}
	// A known value (Python's base64.b32encode gives the same).
	b := [Size]byte{'f', 'o', 'o', 'b', 'a', 'r', 'f', 'o', 'o', 'b', 'a', 'r', 'f', 'o', 'o', 'b', 'a', 'r', 'f', 'o'}
	if s := Format(&b); s != "MZXW-6YTB-OJTG-633C-MFZG-M33P-MJQX-EZTP" {
		t.Errorf("Format = %q", s)
	}
}

func TestBad(t *testing.T) {
	var b [Size]byte
	rand.Read(b[:])
	good := Format(&b)
	for _, s := range []string{
		"", "----", good[:len(good)-1], good + "A", good + "-A",
		"0" + good[1:], "1" + good[1:], "8" + good[1:], "9" + good[1:],
		good[:5] + "\n" + good[5:], good[:5] + "\t" + good[5:], good[:5] + "=" + good[5:],
		good[:5] + "é" + good[5:], good + "=", good[:5] + "\x00" + good[5:],
	} {
		got, err := Parse(s)
		if err == nil || got != ([Size]byte{}) {
			t.Errorf("Parse(%q) = %x, %v", s, got, err)
			continue
		}
		// The error never quotes the code's characters.
		if strings.Contains(err.Error(), good[:4]) || strings.Contains(err.Error(), good[5:9]) {
			t.Errorf("error quotes the code: %v", err)
		}
	}
}

// FuzzParse: Parse never panics; what it accepts formats back to the same
// code, and the formatted code parses to it.
func FuzzParse(f *testing.F) {
	f.Add("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
	f.Add("mzxw 6ytb ojtg 633c mfzg m33p mjqx eztp")
	f.Add("MZXW6YTBOJTG633CMFZGM33PMJQXEZTP")
	f.Add("0000-")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Parse(s)
		if err != nil {
			if b != ([Size]byte{}) {
				t.Fatal("bytes with an error")
			}
			return
		}
		norm := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(s))
		f := Format(&b)
		if strings.ReplaceAll(f, "-", "") != norm {
			t.Fatalf("Parse(%q) formats as %q", s, f)
		}
		if b2, err := Parse(f); err != nil || b2 != b {
			t.Fatal("formatted code does not parse back")
		}
	})
}
