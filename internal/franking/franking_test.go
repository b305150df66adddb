package franking

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommitVerify(t *testing.T) {
	k := NewKey()
	p := []byte("meet at noon")
	c := Commit(k[:], p)
	// The commitment is plain HMAC-SHA256 (docs/franking.md).
	h := hmac.New(sha256.New, k[:])
	h.Write(p)
	if !bytes.Equal(h.Sum(nil), c[:]) {
		t.Fatal("Commit is not HMAC-SHA256(key, content)")
	}
	if !Verify(k[:], p, c[:]) {
		t.Fatal("a commitment does not verify")
	}
	k2 := NewKey()
	for name, f := range map[string]func() bool{
		"altered content":    func() bool { return Verify(k[:], []byte("meet at noon!"), c[:]) },
		"another key":        func() bool { return Verify(k2[:], p, c[:]) },
		"altered commitment": func() bool { c2 := c; c2[0] ^= 1; return Verify(k[:], p, c2[:]) },
		"short commitment":   func() bool { return Verify(k[:], p, c[:31]) },
		"short key":          func() bool { return Verify(k[:31], p, c[:]) },
		// HMAC pads a short key with zeros: Verify must not take the
		// padded form of a key for the key.
		"zero-padded key": func() bool {
			var z [KeySize]byte
			copy(z[:], k[:16])
			cz := Commit(z[:], p)
			return Verify(k[:16], p, cz[:])
		},
	} {
		if f() {
			t.Errorf("%s verifies", name)
		}
	}
}

func TestTag(t *testing.T) {
	key := NewKeyring().Current().Key
	c := Commit(bytes.Repeat([]byte{1}, KeySize), []byte("x"))
	ctx := Context{Sender: "alice", SenderDevice: 1, Recipient: "bob", RecipientDevice: 2, Timestamp: 1764100300000}
	tag, err := Tag(key[:], c[:], ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckTag(key[:], c[:], ctx, tag[:]) {
		t.Fatal("a tag does not check")
	}
	// Every part of the context is bound, and the length prefixes keep
	// usernames from sliding into each other.
	for name, o := range map[string]Context{
		"sender":           {Sender: "alicf", SenderDevice: 1, Recipient: "bob", RecipientDevice: 2, Timestamp: ctx.Timestamp},
		"sender device":    {Sender: "alice", SenderDevice: 3, Recipient: "bob", RecipientDevice: 2, Timestamp: ctx.Timestamp},
		"recipient":        {Sender: "alice", SenderDevice: 1, Recipient: "carol", RecipientDevice: 2, Timestamp: ctx.Timestamp},
		"recipient device": {Sender: "alice", SenderDevice: 1, Recipient: "bob", RecipientDevice: 1, Timestamp: ctx.Timestamp},
		"timestamp":        {Sender: "alice", SenderDevice: 1, Recipient: "bob", RecipientDevice: 2, Timestamp: ctx.Timestamp + 1},
		"shifted names":    {Sender: "aliceb", SenderDevice: 1, Recipient: "ob", RecipientDevice: 2, Timestamp: ctx.Timestamp},
	} {
		if CheckTag(key[:], c[:], o, tag[:]) {
			t.Errorf("a tag checks with another %s", name)
		}
	}
	other := NewKeyring().Current().Key
	if CheckTag(other[:], c[:], ctx, tag[:]) {
		t.Error("a tag checks under another server key")
	}
	c2 := c
	c2[5] ^= 1
	if CheckTag(key[:], c2[:], ctx, tag[:]) {
		t.Error("a tag checks with another commitment")
	}
	if _, err := Tag(key[:], c[:], Context{Sender: strings.Repeat("a", 256)}); err == nil {
		t.Error("a 256-byte username was encoded")
	}
}

// TestTagVector pins the tag's layout (docs/franking.md) with a value
// computed from the documented input by hand.
func TestTagVector(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	com := bytes.Repeat([]byte{0x07}, 32)
	in := []byte("hush franking tag v1")
	in = append(in, com...)
	in = append(in, 5, 'a', 'l', 'i', 'c', 'e', 0, 0, 0, 1, 3, 'b', 'o', 'b', 0, 0, 0, 2)
	in = append(in, 0, 0, 0x01, 0x9a, 0xbc, 0xde, 0xf0, 0x12)
	h := hmac.New(sha256.New, key)
	h.Write(in)
	want := h.Sum(nil)
	got, err := Tag(key, com, Context{"alice", 1, "bob", 2, 0x019abcdef012})
	if err != nil || !bytes.Equal(got[:], want) {
		t.Fatalf("tag %x, want %x (%v)", got, want, err)
	}
}

func TestKeyringFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyringFile)
	r1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v, %v", fi.Mode(), err)
	}
	again, err := LoadOrCreate(path)
	if err != nil || again.Current() != r1.Current() {
		t.Fatalf("reloaded keyring differs: %v", err)
	}
	r2, err := Rotate(path, time.Unix(1800000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Current().ID != 2 || r2.Current().Key == r1.Current().Key {
		t.Fatalf("rotation gave key %d", r2.Current().ID)
	}
	if k, ok := r2.Key(1); !ok || k != r1.Current() {
		t.Fatal("the old key is gone after a rotation")
	}
	if _, ok := r2.Key(3); ok {
		t.Fatal("key 3 exists")
	}
	loaded, err := Load(path)
	if err != nil || len(loaded.Keys()) != 2 || loaded.Current() != r2.Current() {
		t.Fatalf("loaded %v keys, %v", loaded, err)
	}
	cur := r2.Current()
	if s := cur.String(); strings.Contains(s, hex.EncodeToString(cur.Key[:])) {
		t.Error("String shows the key")
	}
	for name, bad := range map[string]string{
		"empty":       "# nothing\n",
		"gap":         "1 " + strings.Repeat("ab", 32) + " 0\n3 " + strings.Repeat("ab", 32) + " 0\n",
		"short key":   "1 " + strings.Repeat("ab", 31) + " 0\n",
		"bad hex":     "1 " + strings.Repeat("zz", 32) + " 0\n",
		"fields":      "1 " + strings.Repeat("ab", 32) + "\n",
		"negative":    "1 " + strings.Repeat("ab", 32) + " -1\n",
		"starts at 0": "0 " + strings.Repeat("ab", 32) + " 0\n",
	} {
		if _, err := ParseKeyring([]byte(bad)); err == nil {
			t.Errorf("%s keyring parsed", name)
		} else if strings.Contains(err.Error(), "abab") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add(NewKeyring().Rotated(time.Now()).Marshal())
	f.Add([]byte("1 " + strings.Repeat("ab", 32) + " 0\n"))
	f.Add([]byte("#\n\n1 x 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseKeyring(b)
		if err != nil {
			return
		}
		// What parses marshals to what parses to the same keys.
		r2, err := ParseKeyring(r.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		k1, k2 := r.Keys(), r2.Keys()
		if len(k1) != len(k2) || k1[len(k1)-1] != k2[len(k2)-1] || r.Current().ID != uint32(len(k1)) {
			t.Fatal("keyring round trip differs")
		}
	})
}

// Benchmarks: franking's cost per message on each side (issue 11: at most
// 3 µs), beside the floor of one SHA-256 over the same bytes.
var benchContent = bytes.Repeat([]byte{'x'}, 160*2) // a short message, padded

// benchLarge is the largest body a client sends (64 KiB), padded.
var benchLarge = bytes.Repeat([]byte{'x'}, 64<<10+160)

func BenchmarkCommitLarge(b *testing.B) {
	k := NewKey()
	b.SetBytes(int64(len(benchLarge)))
	for b.Loop() {
		Commit(k[:], benchLarge)
	}
}

func BenchmarkFloorSHA256Large(b *testing.B) {
	b.SetBytes(int64(len(benchLarge)))
	for b.Loop() {
		sha256.Sum256(benchLarge)
	}
}

func BenchmarkCommit(b *testing.B) {
	k := NewKey()
	b.SetBytes(int64(len(benchContent)))
	for b.Loop() {
		Commit(k[:], benchContent)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := NewKey()
	c := Commit(k[:], benchContent)
	b.SetBytes(int64(len(benchContent)))
	for b.Loop() {
		if !Verify(k[:], benchContent, c[:]) {
			b.Fatal("no")
		}
	}
}

func BenchmarkTag(b *testing.B) {
	key := NewKeyring().Current().Key
	c := Commit(bytes.Repeat([]byte{1}, KeySize), benchContent)
	ctx := Context{Sender: "alice", SenderDevice: 1, Recipient: "bob", RecipientDevice: 2, Timestamp: 1764100300000}
	for b.Loop() {
		if _, err := Tag(key[:], c[:], ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorSHA256 is one SHA-256 over the content: the floor under
// an HMAC (which adds two compressions and the outer hash).
func BenchmarkFloorSHA256(b *testing.B) {
	b.SetBytes(int64(len(benchContent)))
	for b.Loop() {
		sha256.Sum256(benchContent)
	}
}
