package server

import (
	"bytes"
	"testing"
)

// FuzzBlobID: an id is accepted only in its one canonical spelling (22
// characters of unpadded base64url for 16 bytes), so that two strings
// never name one blob.
func FuzzBlobID(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "mA1cW6N5Z8VbQ0ZlK4yJ3g", "mA1cW6N5Z8VbQ0ZlK4yJ3h", "AAAAAAAAAAAAAAAAAAAAAA==",
		"..%2F..%2Fhushd.db", "", "AAAAAAAAAAAAAAAAAAAA+/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseBlobID(s)
		if err != nil {
			if id != nil {
				t.Fatal("an id with the error")
			}
			return
		}
		if len(id) != 16 || blobID(id) != s {
			t.Fatalf("parseBlobID(%q) = %x, which writes as %q", s, id, blobID(id))
		}
		if again, _ := parseBlobID(blobID(id)); !bytes.Equal(again, id) {
			t.Fatal("no round trip")
		}
	})
}
