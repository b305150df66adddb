// Package termsafe makes text that comes from someone else (a peer's
// message, a display name, a username or device name from the server, a
// file name) safe to write to a terminal: no character of it can be taken
// by the terminal as a command or reorder what is shown.
//
// What is neutralised, and how:
//   - C0 controls (U+0000-U+001F, so ESC and every escape sequence it would
//     start: OSC 0 window titles, OSC 52 clipboard writes, cursor moves)
//     and DEL become their visible Control Pictures (ESC shows as ␛, CR
//     as ␍), so that a carriage return cannot overwrite a line;
//   - C1 controls (U+0080-U+009F: CSI, OSC, ... on their own), format
//     characters (Unicode category Cf: the bidi embeddings, overrides and
//     isolates U+202A-U+202E and U+2066-U+2069, LRM/RLM, zero-width space
//     U+200B, word joiner, BOM, tags, ...), line and paragraph separators
//     (U+2028, U+2029) and invalid UTF-8 become U+FFFD, the replacement
//     character.
//
// [Line] is for anything shown on one line: it neutralises newlines and
// tabs too. [Text] is for a message body: it keeps newline and tab, and
// the zero-width joiner and non-joiner (U+200D, U+200C: emoji sequences and
// several scripts need them; they cannot move or reorder text). A caller
// that prints a multi-line body must still make its continuation lines
// distinguishable from its own lines (the CLI indents them).
package termsafe

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Replacement is what a character that is neither a C0 control nor DEL
// becomes.
const Replacement = '\uFFFD'

const (
	zwnj = '\u200C'
	zwj  = '\u200D'
)

// unsafe reports whether r must not reach a terminal. text says the rune
// is in a message body, where newline, tab, ZWJ and ZWNJ are kept.
func unsafe(r rune, text bool) bool {
	switch {
	case r == utf8.RuneError:
		return false // handled by the caller: only invalid UTF-8 is replaced
	case text && (r == '\n' || r == '\t' || r == zwj || r == zwnj):
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// visible is what an unsafe rune is shown as.
func visible(r rune) rune {
	switch {
	case r < 0x20:
		return 0x2400 + r // Control Pictures: ␀ ... ␟
	case r == 0x7f:
		return '\u2421' // ␡
	}
	return Replacement
}

func clean(s string, text bool) string {
	if isClean(s, text) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune(Replacement) // invalid UTF-8
		case unsafe(r, text):
			b.WriteRune(visible(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isClean(s string, text bool) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || unsafe(r, text) {
			return false
		}
		i += n
	}
	return true
}

// Line returns s with every control and format character (newline and
// tab included) made visible or replaced: for names and anything else
// shown on one line.
func Line(s string) string { return clean(s, false) }

// Text returns s as Line does, but keeps newlines, tabs, ZWJ and ZWNJ: for
// a message body.
func Text(s string) string { return clean(s, true) }

// IsLine reports whether Line would leave s unchanged: a name the user
// types for themselves is refused unless it is.
func IsLine(s string) bool { return isClean(s, false) }

// JSON rewrites JSON text (as encoding/json writes it) so that it holds no
// character a terminal could act on: encoding/json already escapes C0
// controls and U+2028/U+2029, and this escapes the rest that Line
// neutralises (DEL, C1, format characters) as \uXXXX, surrogate pairs
// above U+FFFF. The JSON means exactly the same: a program reading it gets
// the text as sent, and a person looking at it on a terminal sees escapes.
// Such characters can only occur inside JSON strings, where an escape is
// always allowed.
func JSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 || !unsafe(r, false) {
			if out != nil {
				out = append(out, b[i:i+n]...)
			}
			i += n
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+12), b[:i]...)
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = appendEscape(appendEscape(out, r1), r2)
		} else {
			out = appendEscape(out, r)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

func appendEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// Writer passes everything written through Text: for a command-line
// program whose own output is plain text (newlines, tabs, printable
// characters), so that nothing printed from a peer, a server's error
// message included, can act on the terminal, whichever path prints it. A
// character split across two writes is joined first.
type Writer struct {
	w       io.Writer
	pending []byte // the start of a character split across writes
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Unwrap returns the writer w writes to: a caller asking whether output
// goes to a terminal looks at it.
func (w *Writer) Unwrap() io.Writer { return w.w }

func (w *Writer) Write(p []byte) (int, error) {
	b := p
	if len(w.pending) > 0 {
		b = append(w.pending, p...)
		w.pending = nil
	}
	// Keep an incomplete last character for the next write.
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				w.pending = append([]byte(nil), b[i:]...)
				b = b[:i]
			}
			break
		}
	}
	if _, err := io.WriteString(w.w, Text(string(b))); err != nil {
		return 0, err
	}
	return len(p), nil
}
