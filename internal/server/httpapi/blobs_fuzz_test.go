package httpapi

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzBlobHeaders feeds the two headers the blob routes parse themselves:
// Upload-Offset is a plain non-negative decimal or an error, and a Range's
// start is never negative.
func FuzzBlobHeaders(f *testing.F) {
	for _, s := range []string{"0", "1048576", "-1", "+5", "1e3", " 7", "99999999999999999999", "bytes=100-", "bytes=0-99",
		"bytes=-500", "bytes=1-2,5-6", "bytes=x-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseOffset(s); err == nil {
			if n < 0 || strconv.FormatInt(n, 10) != strings.TrimLeft(s, "0") && !(n == 0 && strings.Trim(s, "0") == "") {
				t.Fatalf("parseOffset(%q) = %d", s, n)
			}
		}
		if n := rangeStart(s); n < 0 {
			t.Fatalf("rangeStart(%q) = %d", s, n)
		}
	})
}
