package history

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/key"
)

func testAccount(t testing.TB) *Account {
	id, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := NewKeyring(t0)
	kr.Rotate(t0.Add(time.Hour))
	return &Account{Username: "alice", Identity: id, History: kr}
}

func TestRecoveryCode(t *testing.T) {
	c := NewRecoveryCode()
	s := c.String()
	if !regexp.MustCompile(`^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$`).MatchString(s) {
		t.Fatalf("code %q", s)
	}
	for _, v := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", "  ")} {
		got, err := ParseRecoveryCode(v)
		if err != nil || got.s != c.s {
			t.Fatalf("ParseRecoveryCode(%q): %v", v, err)
		}
	}
	for _, bad := range []string{"", s[1:], s + "-Q", "8" + s[1:], s[:9] + "," + s[10:]} {
		_, err := ParseRecoveryCode(bad)
		if !errors.Is(err, ErrNotARecoveryCode) || strings.Contains(err.Error(), s[10:14]) {
			t.Errorf("ParseRecoveryCode(%q): %v", bad, err)
		}
	}
	if g := fmt.Sprintf("%#v", c); strings.Contains(g, s[:4]) {
		t.Errorf("GoString prints the code: %s", g)
	}
}

func TestRecoveryRoundTrip(t *testing.T) {
	a := testAccount(t)
	c := NewRecoveryCode()
	blob, err := SealRecovery(c.PublicKey(), a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRecovery(&c, "alice", blob)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != a.Username || got.Identity.Public != a.Identity.Public ||
		!bytes.Equal(got.Identity.Private.Bytes(), a.Identity.Private.Bytes()) || !bytes.Equal(got.History.Marshal(), a.History.Marshal()) {
		t.Fatal("account changed")
	}
	// The restored keyring reads what the old one wrote.
	id, rec, _ := a.History.Seal(testRecord())
	if _, err := got.History.Open(id, rec); err != nil {
		t.Fatal(err)
	}

	// The blob follows the design: opened with the keys derived here from
	// the code, by the standard library alone.
	sk, _ := hkdf.Key(sha256.New, c.s[:], nil, "hush recovery v1 x25519", 32)
	priv, _ := ecdh.X25519().NewPrivateKey(sk)
	eph, _ := ecdh.X25519().NewPublicKey(blob[:32])
	shared, _ := priv.ECDH(eph)
	k, _ := hkdf.Key(sha256.New, shared, append(bytes.Clone(blob[:32]), priv.PublicKey().Bytes()...), "hush recovery v1 key", 32)
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, blob[32:44], blob[44:], []byte("hush recovery v1alice"))
	var m map[string]json.RawMessage
	if err != nil || json.Unmarshal(pt, &m) != nil || string(m["version"]) != "1" || len(m) != 4 {
		t.Fatalf("the spec's key: %v %s", err, m["version"])
	}

	// A full keyring fits in a blob.
	for len(a.History.epochs) < MaxEpochs {
		a.History.Rotate(t0)
	}
	if blob, err := SealRecovery(c.PublicKey(), a); err != nil || len(blob) > api.MaxRecoveryBlobBytes {
		t.Fatalf("full keyring: %d bytes, %v", len(blob), err)
	}
}

func TestRecoveryRefused(t *testing.T) {
	a := testAccount(t)
	c := NewRecoveryCode()
	blob, _ := SealRecovery(c.PublicKey(), a)
	wrong := NewRecoveryCode()
	if got, err := OpenRecovery(&wrong, "alice", blob); err != ErrRecovery || got != nil {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := OpenRecovery(&c, "alicf", blob); err != ErrRecovery {
		t.Fatalf("another username: %v", err)
	}
	for i := range blob {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		if got, err := OpenRecovery(&c, "alice", b); err != ErrRecovery || got != nil {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, b := range [][]byte{nil, blob[:27], blob[:len(blob)-1], append(bytes.Clone(blob), 0), make([]byte, api.MaxRecoveryBlobBytes+1)} {
		if _, err := OpenRecovery(&c, "alice", b); err != ErrRecovery {
			t.Errorf("%d bytes: %v", len(b), err)
		}
	}
	// A blob sealed with the right key and AD but naming another account
	// inside (a device of bob's that lies) is refused too.
	a2 := testAccount(t)
	a2.Username = "bob"
	pt, _ := json.Marshal(accountJSON{Version: 1, Username: "bob", AccountIdentity: mustMarshal(a2.Identity), History: a2.History})
	lie, err := sealBox(c.PublicKey(), pt, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRecovery(&c, "alice", lie); err != ErrRecovery {
		t.Fatalf("lying username: %v", err)
	}
	for name, f := range map[string]func(*Account){
		"bad username": func(a *Account) { a.Username = "a" },
		"no identity":  func(a *Account) { a.Identity = nil },
		"no keyring":   func(a *Account) { a.History = nil },
		"empty ring":   func(a *Account) { a.History = new(Keyring) },
	} {
		a := testAccount(t)
		f(a)
		if b, err := SealRecovery(c.PublicKey(), a); err == nil || b != nil {
			t.Errorf("%s: sealed", name)
		}
	}
}

func mustMarshal(id *key.IdentityKeyPair) []byte {
	b, _ := id.MarshalBinary()
	return b
}

func TestParseAccountStrict(t *testing.T) {
	a := testAccount(t)
	good, _ := json.Marshal(accountJSON{Version: 1, Username: "alice", AccountIdentity: mustMarshal(a.Identity), History: a.History})
	if _, err := parseAccount(good); err != nil {
		t.Fatal(err)
	}
	other, _ := key.GenerateIdentityKeyPair(rand.Reader)
	ib, ob := mustMarshal(a.Identity), mustMarshal(other)
	swapped := append(ib[:35:35], ob[35:]...)
	for name, bad := range map[string][]byte{
		"version 2":       bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1),
		"unknown":         bytes.Replace(good, []byte(`{"version"`), []byte(`{"x":0,"version"`), 1),
		"bad username":    bytes.Replace(good, []byte(`"alice"`), []byte(`"ALICE"`), 1),
		"mismatched pair": bytes.Replace(good, []byte(mustJSON(ib)), []byte(mustJSON(swapped)), 1),
		"extra in pair":   bytes.Replace(good, []byte(mustJSON(ib)), []byte(mustJSON(append(bytes.Clone(ib), 0x18, 1))), 1),
		"null history":    append(good[:bytes.Index(good, []byte(`"history":`))], []byte(`"history":null}`)...),
		"trailing":        append(bytes.Clone(good), '\n'),
	} {
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: edit did nothing", name)
		}
		if a, err := parseAccount(bad); err == nil || a != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseAccount: the recovery plaintext parser never panics; what it
// accepts encodes back to the same bytes.
func FuzzParseAccount(f *testing.F) {
	a := testAccount(f)
	good, _ := json.Marshal(accountJSON{Version: 1, Username: "alice", AccountIdentity: mustMarshal(a.Identity), History: a.History})
	f.Add(good)
	f.Add([]byte(`{"version":1,"username":"alice"}`))
	f.Fuzz(func(t *testing.T, pt []byte) {
		a, err := parseAccount(pt)
		if err != nil {
			if a != nil {
				t.Fatal("account with an error")
			}
			return
		}
		again, _ := json.Marshal(accountJSON{Version: 1, Username: a.Username, AccountIdentity: mustMarshal(a.Identity), History: a.History})
		if !bytes.Equal(again, pt) {
			t.Fatal("not canonical")
		}
	})
}

// FuzzParseRecoveryCode: never panics; an accepted code prints as one
// that parses back to it.
func FuzzParseRecoveryCode(f *testing.F) {
	f.Add(NewRecoveryCode().String())
	f.Add("abcd efgh")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseRecoveryCode(s)
		if err != nil {
			return
		}
		if c2, err := ParseRecoveryCode(c.String()); err != nil || c2.s != c.s {
			t.Fatal("round trip")
		}
	})
}
