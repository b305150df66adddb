package termsafe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// hostile are the attacks of issue 14's finding 2, and a few more.
var hostile = []string{
	"\x1b]0;pwned\x07",                                 // OSC 0: window title
	"\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07",           // OSC 52: clipboard
	"\x1b[2K\r2026-12-02 08:00:00  * dave is verified", // erase line, forge a notice
	"\x1b[1A\x1b[2K",                                   // cursor up, erase
	"\u009b31m\u009d0;title\u009c",                     // C1 CSI, OSC, ST
	"abc\u202edcba",                                    // RLO
	"\u2066isolate\u2069\u202a\u202b\u202c\u202d",
	"zero\u200bwidth\u200e\u200f\u2060\ufeff",
	"line\u2028sep\u2029para",
	"bad utf8 \xff\xfe\xc0",
	"tab\tnew\nline\r\n",
	"\U000e0041tag",
	"family 👨\u200d👩\u200d👧 and ZWNJ می\u200cخواهم",
}

func forbidden(r rune, text bool) bool {
	if text && (r == '\n' || r == '\t' || r == '\u200d' || r == '\u200c') {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

func checkOut(t *testing.T, in, out string, text bool) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%q -> %q: not valid UTF-8", in, out)
	}
	for _, r := range out {
		if forbidden(r, text) {
			t.Fatalf("%q -> %q: keeps %U", in, out, r)
		}
	}
	if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, '\r') {
		t.Fatalf("%q -> %q: keeps ESC or CR", in, out)
	}
}

func TestHostile(t *testing.T) {
	for _, s := range hostile {
		checkOut(t, s, Line(s), false)
		checkOut(t, s, Text(s), true)
		if strings.ContainsRune(Line(s), '\n') || strings.ContainsRune(Line(s), '\t') {
			t.Fatalf("Line(%q) keeps a newline or tab", s)
		}
		if !IsLine(Line(s)) {
			t.Fatalf("Line(%q) is not clean by IsLine", s)
		}
	}
	for _, tc := range []struct{ in, line, text string }{
		{"\x1b]0;x\x07", "␛]0;x␇", "␛]0;x␇"},
		{"a\r\nb\tc", "a␍␊b␉c", "a␍\nb\tc"},
		{"ab\u202ecd", "ab\ufffdcd", "ab\ufffdcd"},
		{"\u009bq\x7f", "\ufffdq␡", "\ufffdq␡"},
		{"x\xffy", "x\ufffdy", "x\ufffdy"},
		{"👨\u200d👩", "👨\ufffd👩", "👨\u200d👩"},
		{"plain text, é, 中文, 🙂", "plain text, é, 中文, 🙂", "plain text, é, 中文, 🙂"},
	} {
		if got := Line(tc.in); got != tc.line {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
	if !IsLine("alice_2") || IsLine("ali\u202ece") || IsLine("a\u200bb") || IsLine("a\nb") {
		t.Fatal("IsLine")
	}
}

// TestJSONEscapes records what encoding/json does with the same
// characters, for the --json outputs (which do not use this package:
// JSON escaping is their defence). It escapes every C0 control and
// U+2028/U+2029, and writes C1, DEL, the bidi controls and other format
// characters raw (valid JSON; a program reading it gets the text as
// sent). A person who prints such a string from a JSON reader to a
// terminal gets what the peer sent, so no raw ESC ever leaves hush.
func TestJSONEscapes(t *testing.T) {
	for _, s := range hostile {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range string(b) {
			if r < 0x20 || r == '\u2028' || r == '\u2029' {
				t.Fatalf("json.Marshal(%q) = %s: raw %U", s, b, r)
			}
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, x := Line(s), Text(s)
		checkOut(t, s, l, false)
		checkOut(t, s, x, true)
		if Line(l) != l || Text(x) != x {
			t.Fatalf("not idempotent on %q", s)
		}
		if IsLine(s) != (l == s) {
			t.Fatalf("IsLine(%q) = %v but Line changes it: %q", s, IsLine(s), l)
		}
		if utf8.ValidString(s) && utf8.RuneCountInString(l) != utf8.RuneCountInString(s) {
			t.Fatalf("Line(%q) = %q changes the number of characters", s, l)
		}
	})
}

// TestJSON: the --json outputs pass through JSON, which escapes what
// encoding/json leaves raw, with the same meaning.
func TestJSON(t *testing.T) {
	for _, s := range hostile {
		b, err := json.Marshal(map[string]any{"text": s, "n": 1})
		if err != nil {
			t.Fatal(err)
		}
		checkJSON(t, b)
	}
	if got := string(JSON([]byte(`"a\u0085b` + "\u202e\u009b\x7f\U000e0041" + `"`))); got != `"a\u0085b\u202e\u009b\u007f\udb40\udc41"` {
		t.Fatalf("JSON = %s", got)
	}
}

func checkJSON(t *testing.T, b []byte) {
	t.Helper()
	out := JSON(b)
	for _, r := range string(out) {
		if r < 0x20 || forbidden(r, false) {
			t.Fatalf("JSON(%s) = %s: raw %U", b, out, r)
		}
	}
	var v1, v2 any
	if err := json.Unmarshal(b, &v1); err != nil {
		return
	}
	if err := json.Unmarshal(out, &v2); err != nil {
		t.Fatalf("JSON(%s) = %s: %v", b, out, err)
	}
	j1, _ := json.Marshal(v1)
	j2, _ := json.Marshal(v2)
	if string(j1) != string(j2) {
		t.Fatalf("JSON(%s) = %s changes the value", b, out)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal([]string{s})
		if err != nil {
			t.Skip()
		}
		checkJSON(t, b)
	})
}

// TestWriter: what goes through a Writer is Text's output, whole
// characters split across writes included.
func TestWriter(t *testing.T) {
	for _, s := range hostile {
		for cut := 0; cut <= len(s); cut++ {
			var b strings.Builder
			w := NewWriter(&b)
			if n, err := w.Write([]byte(s[:cut])); err != nil || n != cut {
				t.Fatal(n, err)
			}
			if n, err := w.Write([]byte(s[cut:])); err != nil || n != len(s)-cut {
				t.Fatal(n, err)
			}
			if utf8.ValidString(s) && b.String() != Text(s) {
				t.Fatalf("%q cut at %d: %q, want %q", s, cut, b.String(), Text(s))
			}
			checkOut(t, s, b.String(), true)
		}
	}
}
