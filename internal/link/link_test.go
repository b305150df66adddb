package link

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/key"
)

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kat is the code 00 01 .. 13, with values computed independently (Python's
// hmac and hashlib, HKDF of RFC 5869 written out).
func kat(t testing.TB) Code {
	c, err := ParseCode("AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT")
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.s {
		if c.s[i] != byte(i) {
			t.Fatalf("code byte %d is %d", i, c.s[i])
		}
	}
	return c
}

func TestDerived(t *testing.T) {
	c := kat(t)
	if id := c.ID(); hex.EncodeToString(id[:]) != "793591c49e434d9ad147282af95adc00" || id.String() != "eTWRxJ5DTZrRRygq-VrcAA" {
		t.Errorf("id %x %s", id, id)
	}
	claim := c.Claim()
	if hex.EncodeToString(claim.Bytes()) != "0fbeb2d456db3aab89e40803d2e9d19cb1d5f716b59ec5118e780d78cf3cb043" {
		t.Errorf("claim %x", claim.Bytes())
	}
	if h := claim.Hash(); hex.EncodeToString(h.Bytes()) != "5dfdaae1c4ad1690450d82e42067dcc70de1897f0760440609605e722ca538e3" {
		t.Errorf("claim hash %x", h)
	}
	en := make([]byte, 32)
	for i := range en {
		en[i] = byte(100 + i)
	}
	mac := unhex(t, "13a66e505a822a86e7573a8508727652da0e4b5f7a0c22b845c6a600bf0b5d36")
	if k, err := CheckHello(&c, en, mac); err != nil || !bytes.Equal(k.Bytes(), en) {
		t.Errorf("known hello refused: %v", err)
	}
}

func TestCode(t *testing.T) {
	form := regexp.MustCompile(`^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$`)
	c := NewCode()
	s := c.String()
	if !form.MatchString(s) {
		t.Fatalf("code %q", s)
	}
	for _, v := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", " "), strings.ReplaceAll(s, "-", "")} {
		got, err := ParseCode(v)
		if err != nil || got.s != c.s {
			t.Fatalf("ParseCode(%q): %v", v, err)
		}
	}
	if NewCode().s == c.s {
		t.Fatal("two codes alike")
	}
	for _, bad := range []string{"", s[:len(s)-1], s + "A", "0" + s[1:], s[:4] + "_" + s[5:], s + "\n"} {
		_, err := ParseCode(bad)
		if !errors.Is(err, ErrNotACode) || strings.Contains(err.Error(), s[5:9]) {
			t.Errorf("ParseCode(%q): %v", bad, err)
		}
	}
	// Secrets in formatted values.
	claim := c.Claim()
	j, _ := NewJoiner(&c)
	out := fmt.Sprintf("%#v %v %+v %#v %v %+v", c, claim, claim, claim, j, *j)
	for _, secret := range []string{s, s[:4], fmt.Sprintf("%x", claim.t[:4]), fmt.Sprint(claim.t[0]) + " " + fmt.Sprint(claim.t[1])} {
		if strings.Contains(out, secret) {
			t.Errorf("%q printed: %s", secret, out)
		}
	}
}

func TestID(t *testing.T) {
	c := NewCode()
	id := c.ID()
	if len(id.String()) != 22 {
		t.Fatalf("id %q", id)
	}
	if got, err := ParseID(id.String()); err != nil || got != id {
		t.Fatal(got, err)
	}
	for _, bad := range []string{"", id.String() + "A", id.String()[:21], id.String() + "==", "eTWRxJ5DTZrRRygq+VrcAA", "eTWRxJ5DTZrRRygq-VrcAB"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestHello(t *testing.T) {
	c := NewCode()
	j, err := NewJoiner(&c)
	if err != nil {
		t.Fatal(err)
	}
	h := j.Hello()
	if en, err := CheckHello(&c, h.Ephemeral.Bytes(), h.MAC[:]); err != nil || en != h.Ephemeral {
		t.Fatalf("CheckHello: %v", err)
	}
	// A server that swaps the ephemeral key, or changes the MAC, or a hello
	// made with another code, fails; so do bad lengths.
	other := NewCode()
	j2, _ := NewJoiner(&other)
	h2 := j2.Hello()
	for name, c2 := range map[string]struct {
		code    *Code
		en, mac []byte
	}{
		"swapped key":  {&c, h2.Ephemeral.Bytes(), h.MAC[:]},
		"swapped both": {&c, h2.Ephemeral.Bytes(), h2.MAC[:]},
		"wrong code":   {&other, h.Ephemeral.Bytes(), h.MAC[:]},
		"short mac":    {&c, h.Ephemeral.Bytes(), h.MAC[:31]},
		"long key":     {&c, append(h.Ephemeral.Bytes(), 0), h.MAC[:]},
		"no mac":       {&c, h.Ephemeral.Bytes(), nil},
	} {
		if _, err := CheckHello(c2.code, c2.en, c2.mac); err != ErrTampered {
			t.Errorf("%s: %v", name, err)
		}
	}
	for i := range 32 {
		for _, f := range []func(*Hello) *byte{func(h *Hello) *byte { return &h.Ephemeral[i] }, func(h *Hello) *byte { return &h.MAC[i] }} {
			h3 := h
			*f(&h3) ^= 1
			if _, err := CheckHello(&c, h3.Ephemeral.Bytes(), h3.MAC[:]); err != ErrTampered {
				t.Fatalf("flipped byte %d accepted", i)
			}
		}
	}
}

func testBox(t testing.TB) *Box {
	id, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := history.NewKeyring(time.UnixMilli(1764100000123))
	kr.Rotate(time.UnixMilli(1764100009999))
	b := &Box{Username: "alice", Identity: id, History: kr, RecoveryBlobVersion: 3}
	for _, name := range []string{"bob", "carol_2"} {
		p, _ := key.GenerateIdentityKeyPair(rand.Reader)
		b.Contacts = append(b.Contacts, Contact{Name: name, Identity: p.Public})
	}
	return b
}

func sameBox(t *testing.T, got, want *Box) {
	t.Helper()
	gb, _ := got.marshal()
	wb, _ := want.marshal()
	if !bytes.Equal(gb, wb) || got.Username != want.Username || got.Identity.Public != want.Identity.Public ||
		!reflect.DeepEqual(got.Contacts, want.Contacts) || !got.History.SameAccount(want.History) || got.RecoveryBlobVersion != want.RecoveryBlobVersion {
		t.Fatalf("box changed:\n%s\n%s", gb, wb)
	}
}

// link runs steps 2 to 4 and returns what the new device needs to open.
func link(t *testing.T, b *Box) (c Code, j *Joiner, eo PublicKey, sealed []byte) {
	c = NewCode()
	j, err := NewJoiner(&c)
	if err != nil {
		t.Fatal(err)
	}
	h := j.Hello()
	en, err := CheckHello(&c, h.Ephemeral.Bytes(), h.MAC[:])
	if err != nil {
		t.Fatal(err)
	}
	eo, sealed, err = Seal(&c, en, b)
	if err != nil {
		t.Fatal(err)
	}
	return c, j, eo, sealed
}

func TestBoxRoundTrip(t *testing.T) {
	b := testBox(t)
	c, j, eo, sealed := link(t, b)
	got, err := j.Open(eo.Bytes(), sealed)
	if err != nil {
		t.Fatal(err)
	}
	sameBox(t, got, b)
	if got.Identity.Private.Bytes()[0] != b.Identity.Private.Bytes()[0] || got.History.Current().ID != b.History.Current().ID {
		t.Fatal("secrets changed")
	}

	// The box follows the design: the test opens it with the key derived
	// here from the spec, not with the package's code.
	eoPub, _ := ecdh.X25519().NewPublicKey(eo[:])
	shared, _ := j.en.ECDH(eoPub)
	en := j.en.PublicKey().Bytes()
	k, _ := hkdf.Key(sha256.New, append(shared, c.s[:]...), append(append([]byte{}, en...), eo[:]...), "hush link v1 box", 32)
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	id := c.ID()
	pt, err := gcm.Open(nil, sealed[:12], sealed[12:], append([]byte("hush link v1 box"), id[:]...))
	if err != nil {
		t.Fatalf("the spec's key does not open the box: %v", err)
	}
	var j2 map[string]json.RawMessage
	if err := json.Unmarshal(pt, &j2); err != nil || string(j2["version"]) != "1" || string(j2["username"]) != `"alice"` || len(j2) != 6 {
		t.Fatalf("plaintext %v %v", j2, err)
	}

	// No contacts.
	b.Contacts = nil
	_, j, eo, sealed = link(t, b)
	if got, err = j.Open(eo.Bytes(), sealed); err != nil || len(got.Contacts) != 0 {
		t.Fatal(err)
	}
}

// TestBoxTamper: every byte of the sealed box, and of Eo, flipped: the box
// does not open, with the one error.
func TestBoxTamper(t *testing.T) {
	b := testBox(t)
	_, j, eo, sealed := link(t, b)
	for i := range sealed {
		s := bytes.Clone(sealed)
		s[i] ^= 0x01
		if got, err := j.Open(eo.Bytes(), s); err != ErrBox || got != nil {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for i := range eo {
		e := eo
		e[i] ^= 0x80
		if _, err := j.Open(e.Bytes(), sealed); err != ErrBox {
			t.Fatalf("Eo byte %d flipped: %v", i, err)
		}
	}
	for name, s := range map[string][]byte{"empty": nil, "short": sealed[:27], "truncated": sealed[:len(sealed)-1], "longer": append(bytes.Clone(sealed), 0)} {
		if _, err := j.Open(eo.Bytes(), s); err != ErrBox {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := j.Open(make([]byte, 32), sealed); err != ErrBox { // low-order Eo
		t.Errorf("zero Eo: %v", err)
	}
	if _, err := j.Open(eo[:31], sealed); err != ErrBox {
		t.Errorf("short Eo: %v", err)
	}
	if got, err := j.Open(eo.Bytes(), sealed); err != nil || got == nil {
		t.Fatal("the untouched box no longer opens")
	}
}

// TestBoxWrongCode: a new device with another code, or the right code but
// another ephemeral key (a second hello), cannot open the box.
func TestBoxWrongCode(t *testing.T) {
	b := testBox(t)
	c, _, eo, sealed := link(t, b)
	other := NewCode()
	j2, _ := NewJoiner(&other)
	if _, err := j2.Open(eo.Bytes(), sealed); err != ErrBox {
		t.Errorf("other code: %v", err)
	}
	j3, _ := NewJoiner(&c)
	if _, err := j3.Open(eo.Bytes(), sealed); err != ErrBox {
		t.Errorf("other ephemeral key: %v", err)
	}
	// The same plaintext sealed for a joiner with another code and the
	// same En: the AD (link id) and key differ.
	j4 := &Joiner{code: Code{s: other.s}, en: j3.en}
	if _, err := j4.Open(eo.Bytes(), sealed); err != ErrBox {
		t.Errorf("other code, same En: %v", err)
	}
}

func TestSealRefuses(t *testing.T) {
	c := NewCode()
	j, _ := NewJoiner(&c)
	en := j.Hello().Ephemeral
	many := make([]Contact, MaxContacts+1)
	for i := range many {
		many[i] = Contact{Name: fmt.Sprintf("u%d", i), Identity: testBox(t).Identity.Public}
	}
	for name, f := range map[string]func(b *Box){
		"bad username":       func(b *Box) { b.Username = "Alice" },
		"username with nl":   func(b *Box) { b.Username = "alice\n" },
		"no identity":        func(b *Box) { b.Identity = nil },
		"no keyring":         func(b *Box) { b.History = nil },
		"empty keyring":      func(b *Box) { b.History = new(history.Keyring) },
		"bad contact":        func(b *Box) { b.Contacts[0].Name = "b\u202eob" },
		"duplicate contact":  func(b *Box) { b.Contacts[1].Name = b.Contacts[0].Name },
		"too many contacts":  func(b *Box) { b.Contacts = many },
		"negative version":   func(b *Box) { b.RecoveryBlobVersion = -1 },
		"long contact name":  func(b *Box) { b.Contacts[0].Name = strings.Repeat("b", 33) },
		"short contact name": func(b *Box) { b.Contacts[0].Name = "bo" },
	} {
		b := testBox(t)
		f(b)
		if _, sealed, err := Seal(&c, en, b); err == nil || sealed != nil {
			t.Errorf("%s: sealed", name)
		}
	}
	if _, _, err := Seal(&c, PublicKey{}, testBox(t)); err == nil { // low-order En
		t.Error("sealed to a zero key")
	}
}

func TestParseBoxStrict(t *testing.T) {
	b := testBox(t)
	good, err := b.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseBox(good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		out, _ := json.Marshal(m) // keys sorted: not canonical by itself
		return out
	}
	other, _ := key.GenerateIdentityKeyPair(rand.Reader)
	ob, _ := other.MarshalBinary()
	ib, _ := b.Identity.MarshalBinary()
	swapped := append(ib[:35:35], ob[35:]...) // our public key, their private key
	for name, bad := range map[string][]byte{
		"version 2":         bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1),
		"unknown field":     bytes.Replace(good, []byte(`{"version"`), []byte(`{"x":1,"version"`), 1),
		"sorted keys":       edit(func(m map[string]any) {}),
		"bad username":      bytes.Replace(good, []byte(`"alice"`), []byte(`"Alice"`), 1),
		"control username":  bytes.Replace(good, []byte(`"alice"`), []byte(`"al\u0007e"`), 1),
		"no contacts list":  bytes.Replace(good, good[bytes.Index(good, []byte(`"contacts":[`)):bytes.Index(good, []byte(`,"recoveryBlobVersion"`))], []byte(`"contacts":null`), 1),
		"null history":      bytes.Replace(good, good[bytes.Index(good, []byte(`"history":{`)):bytes.Index(good, []byte(`,"contacts"`))], []byte(`"history":null`), 1),
		"duplicate contact": bytes.Replace(good, []byte(`"carol_2"`), []byte(`"bob"`), 1),
		"mismatched pair":   bytes.Replace(good, []byte(b64(ib)), []byte(b64(swapped)), 1),
		"contact key short": bytes.Replace(good, []byte(b64(b.Contacts[0].Identity.Bytes())), []byte(b64(b.Contacts[0].Identity.Bytes()[:32])), 1),
		"trailing":          append(bytes.Clone(good), ' '),
		"empty":             nil,
		"huge":              make([]byte, 300<<10),
	} {
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: edit did nothing", name)
		}
		if got, err := parseBox(bad); err == nil || got != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

// FuzzParseBox: the box parser never panics, and what it accepts encodes
// back to the same bytes.
func FuzzParseBox(f *testing.F) {
	b := testBox(f)
	good, _ := b.marshal()
	f.Add(good)
	b.Contacts = nil
	good, _ = b.marshal()
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, pt []byte) {
		b, err := parseBox(pt)
		if err != nil {
			if b != nil {
				t.Fatal("box with an error")
			}
			return
		}
		again, err := b.marshal()
		if err != nil || !bytes.Equal(again, pt) {
			t.Fatalf("accepted a box that encodes differently: %v", err)
		}
	})
}

// FuzzParseCode: never panics; an accepted code prints as a code that
// parses back to it.
func FuzzParseCode(f *testing.F) {
	f.Add("AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT")
	f.Add("aaaq eaye auda ocaj bifq ydio b4ib ceqt")
	f.Add("0")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrNotACode) {
				t.Fatal(err)
			}
			return
		}
		c2, err := ParseCode(c.String())
		if err != nil || c2.s != c.s {
			t.Fatal("round trip")
		}
	})
}
