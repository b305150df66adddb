// Package link is the cryptography of linking a new device from a device
// of the same account (docs/multidevice.md section 2). It is pure: no
// network, no store; the client runs the protocol and the server relays.
//
// The old device makes a [Code] ([NewCode]), gives the server the link
// [ID] and the [ClaimHash], and shows the code. The new device reads it
// ([ParseCode]), makes a [Joiner] and sends its [Hello] with the
// [ClaimToken]. The old device checks the hello ([CheckHello]) and seals
// the provisioning [Box] to the new device's ephemeral key ([Seal]); the
// new device opens it ([Joiner.Open]).
package link

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/hushmsg/hush/internal/secretcode"
)

/* Specification constants (docs/multidevice.md section 2) */

const (
	CodeSize      = secretcode.Size // the code's secret S, 160 bits
	IDSize        = 16              // the link id
	ClaimSize     = 32              // the claim token
	PublicKeySize = 32              // an X25519 ephemeral public key
	MACSize       = 32              // HMAC-SHA256

	infoID     = "hush link v1 id"
	infoClaim  = "hush link v1 claim"
	infoMAC    = "hush link v1 mac"
	labelHello = "hush link v1 hello"
	labelBox   = "hush link v1 box" // HKDF info and the start of the box's AD
)

// Code is a link code: 20 random bytes, the secret S from which the link
// id, the claim token, the MAC key and (with an X25519 agreement) the box
// key are derived. Codes are compared only through what they derive.
type Code struct {
	_ [0]func() // not comparable: == would not be constant time
	s [CodeSize]byte
}

// NewCode draws a new code.
func NewCode() Code {
	var c Code
	rand.Read(c.s[:])
	return c
}

// ErrNotACode is the error of ParseCode, wrapped with what is wrong.
var ErrNotACode = errors.New("link: not a link code")

// ParseCode reads a code as String writes it, ignoring case, spaces and
// '-'. The error says what is wrong without quoting the code.
func ParseCode(s string) (Code, error) {
	b, err := secretcode.Parse(s)
	if err != nil {
		return Code{}, fmt.Errorf("%w: %v", ErrNotACode, err)
	}
	return Code{s: b}, nil
}

// String returns the code as the person reads it: 8 groups of 4 base32
// characters joined by '-'. It is the secret itself: show it to the
// person, never log it.
func (c Code) String() string { return secretcode.Format(&c.s) }

// GoString never prints the code.
func (c Code) GoString() string { return "link.Code(redacted)" }

func (c *Code) derive(info string, n int) []byte {
	// HKDF-SHA256 with no salt, ikm = S.
	out, err := hkdf.Key(sha256.New, c.s[:], nil, info, n)
	if err != nil {
		panic("link: internal error: " + err.Error())
	}
	return out
}

// ID is a link id, HKDF(S, "hush link v1 id", 16 bytes). It is not secret:
// it names the link in the server's paths.
type ID [IDSize]byte

// ID derives the link id.
func (c *Code) ID() ID { return ID(c.derive(infoID, IDSize)) }

// String is the id's form in paths: unpadded base64url, 22 characters.
func (id ID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Bytes returns the 16 bytes (api.NewLink.ID).
func (id ID) Bytes() []byte { return append([]byte(nil), id[:]...) }

// ParseID reads an id in the form String writes (strictly: 22 characters
// of the base64url alphabet, with canonical final bits).
func ParseID(s string) (ID, error) {
	var id ID
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != IDSize {
		return id, errors.New("link: not a link id")
	}
	return ID(b), nil
}

// ClaimToken proves to the server that a request comes from someone who
// holds the code: HKDF(S, "hush link v1 claim", 32 bytes). It is secret
// (String leaves it out); the server keeps only its [ClaimHash].
type ClaimToken struct {
	_ [0]func()
	t [ClaimSize]byte
}

// Claim derives the claim token.
func (c *Code) Claim() ClaimToken {
	var t ClaimToken
	copy(t.t[:], c.derive(infoClaim, ClaimSize))
	return t
}

// Bytes returns the token (api.LinkHello.Claim, api.LinkClaim.Claim).
func (t *ClaimToken) Bytes() []byte { return append([]byte(nil), t.t[:]...) }

// Hash is SHA-256 of the token, what the old device gives the server.
func (t *ClaimToken) Hash() ClaimHash { return sha256.Sum256(t.t[:]) }

func (ClaimToken) String() string   { return "link.ClaimToken(redacted)" }
func (ClaimToken) GoString() string { return "link.ClaimToken(redacted)" }

// ClaimHash is SHA-256 of a claim token (api.NewLink.ClaimHash).
type ClaimHash [sha256.Size]byte

// Bytes returns the 32 bytes.
func (h ClaimHash) Bytes() []byte { return append([]byte(nil), h[:]...) }

// macKey derives the MAC key, HKDF(S, "hush link v1 mac", 32 bytes), which
// never leaves the devices.
func (c *Code) macKey() []byte { return c.derive(infoMAC, MACSize) }

// PublicKey is an X25519 ephemeral public key: the new device's En or the
// old device's Eo.
type PublicKey [PublicKeySize]byte

// Bytes returns the 32 bytes (api.LinkHello.Ephemeral, api.LinkBox.Ephemeral).
func (k PublicKey) Bytes() []byte { return append([]byte(nil), k[:]...) }

// Hello is what the new device sends in step 2 (api.LinkHello, with the
// claim token): its ephemeral public key En and
// HMAC-SHA256(MAC key, "hush link v1 hello" || En).
type Hello struct {
	Ephemeral PublicKey
	MAC       [MACSize]byte
}

func helloMAC(c *Code, en []byte) []byte {
	m := hmac.New(sha256.New, c.macKey())
	m.Write([]byte(labelHello))
	m.Write(en)
	return m.Sum(nil)
}

// ErrTampered is the error of CheckHello: the hello was not made with the
// code (the server, or someone else, swapped the ephemeral key or the MAC).
var ErrTampered = errors.New("link: the link was tampered with")

// CheckHello is the old device's step 3: it checks the MAC of the hello
// the server relayed (api.LinkState.Ephemeral and .MAC) in constant time
// and returns the new device's ephemeral key. Any failure, lengths
// included, is ErrTampered: delete the link and send nothing.
func CheckHello(c *Code, ephemeral, mac []byte) (PublicKey, error) {
	if len(ephemeral) != PublicKeySize || len(mac) != MACSize || !hmac.Equal(helloMAC(c, ephemeral), mac) {
		return PublicKey{}, ErrTampered
	}
	return PublicKey(ephemeral), nil
}

// Joiner is the new device's side of a link: the code and the ephemeral
// key pair En, which lives only as long as the link.
type Joiner struct {
	code Code
	en   *ecdh.PrivateKey
}

// NewJoiner draws the new device's ephemeral key pair for code c.
func NewJoiner(c *Code) (*Joiner, error) {
	en, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Joiner{code: Code{s: c.s}, en: en}, nil
}

// Hello is the new device's hello (step 2).
func (j *Joiner) Hello() Hello {
	h := Hello{Ephemeral: PublicKey(j.en.PublicKey().Bytes())}
	copy(h.MAC[:], helloMAC(&j.code, h.Ephemeral[:]))
	return h
}

func (Joiner) String() string { return "link.Joiner(redacted)" }
