// Package secretcode is the text form of hush's 160-bit secret codes, the
// link code (docs/multidevice.md section 2) and the recovery code (section
// 3): 20 bytes written in base32 (RFC 4648 alphabet, no padding), 32
// characters in 8 groups of 4 joined by '-', such as
//
//	ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567
//
// [Parse] ignores case, spaces and '-', and refuses anything else. Its
// errors never quote the code.
package secretcode

import (
	"encoding/base32"
	"fmt"
	"strings"
)

// Size is the length of a code in bytes (160 bits).
const Size = 20

// chars is the length of a code in base32 characters; 160 bits are exactly
// 32 characters of 5 bits, so every string of 32 alphabet characters is a
// code and no code has two spellings (up to case, spaces and '-').
const chars = Size * 8 / 5

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// Format writes b as 8 groups of 4 base32 characters joined by '-'.
func Format(b *[Size]byte) string {
	s := enc.EncodeToString(b[:])
	var sb strings.Builder
	sb.Grow(chars + chars/4 - 1)
	for i := 0; i < chars; i += 4 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(s[i : i+4])
	}
	return sb.String()
}

// Parse reads a code in the form Format writes, ignoring case, spaces and
// '-'. The error says what is wrong (a character that is not in codes, or
// how many characters there are) without quoting the code; callers say
// which code it is not ("not a link code: ...").
func Parse(s string) ([Size]byte, error) {
	var out [Size]byte
	buf := make([]byte, 0, chars)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '-':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '2' && c <= '7':
		default:
			// Not a character of codes, so not part of the secret.
			hint := ""
			switch c {
			case '0':
				hint = " (did you mean the letter O?)"
			case '1':
				hint = " (did you mean the letter I or L?)"
			case '8':
				hint = " (did you mean the letter B?)"
			}
			if c < 0x20 || c >= 0x7f {
				return out, fmt.Errorf("it holds the byte 0x%02x; a code has only letters, digits 2 to 7, '-' and spaces", c)
			}
			return out, fmt.Errorf("it holds %q%s; a code has only letters, digits 2 to 7, '-' and spaces", c, hint)
		}
		if len(buf) == chars {
			return out, fmt.Errorf("it has more than %d letters and digits", chars)
		}
		buf = append(buf, c)
	}
	if len(buf) != chars {
		return out, fmt.Errorf("it has %d letters and digits, a code has %d", len(buf), chars)
	}
	if n, err := enc.Decode(out[:], buf); err != nil || n != Size {
		panic("secretcode: internal error: a checked code does not decode")
	}
	return out, nil
}
