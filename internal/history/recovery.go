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

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/secretcode"
	"github.com/hushmsg/hush/internal/strictjson"
	"github.com/hushmsg/hush/key"
)

/* Specification constants (docs/multidevice.md section 3, "Recovery code") */

const (
	RecoveryCodeSize = secretcode.Size

	infoRecoveryKey     = "hush recovery v1 key"
	infoRecoveryPrivate = "hush recovery v1 x25519"
	labelRecovery       = "hush recovery v1" // the start of the blob's AD

	// RecoveryPublicKeySize is the size of a recovery public key (X25519).
	RecoveryPublicKeySize = 32

	// RecoveryVersion is the version of the blob's plaintext.
	RecoveryVersion = 1
)

// RecoveryCode is an account's recovery code: 20 random bytes, written as
// link codes are (8 groups of 4 base32 characters). The person keeps it;
// no device stores it.
type RecoveryCode struct {
	_ [0]func() // not comparable: == would not be constant time
	s [RecoveryCodeSize]byte
}

// NewRecoveryCode draws a new recovery code.
func NewRecoveryCode() RecoveryCode {
	var c RecoveryCode
	rand.Read(c.s[:])
	return c
}

// ErrNotARecoveryCode is the error of ParseRecoveryCode, wrapped with what
// is wrong.
var ErrNotARecoveryCode = errors.New("history: not a recovery code")

// ParseRecoveryCode reads a code as String writes it, ignoring case,
// spaces and '-'. The error never quotes the code.
func ParseRecoveryCode(s string) (RecoveryCode, error) {
	b, err := secretcode.Parse(s)
	if err != nil {
		return RecoveryCode{}, fmt.Errorf("%w: %v", ErrNotARecoveryCode, err)
	}
	return RecoveryCode{s: b}, nil
}

// String returns the code as the person writes it down. It is the secret
// itself: show it once, never log it.
func (c RecoveryCode) String() string { return secretcode.Format(&c.s) }

// GoString never prints the code.
func (RecoveryCode) GoString() string { return "history.RecoveryCode(redacted)" }

// private derives the code's X25519 private key, HKDF-SHA256(code, info
// "hush recovery v1 x25519", 32 bytes).
func (c *RecoveryCode) private() *ecdh.PrivateKey {
	k, err := hkdf.Key(sha256.New, c.s[:], nil, infoRecoveryPrivate, 32)
	if err != nil {
		panic("history: internal error: " + err.Error())
	}
	priv, err := ecdh.X25519().NewPrivateKey(k)
	if err != nil {
		panic("history: internal error: " + err.Error())
	}
	return priv
}

// PublicKey is the code's recovery public key: what devices keep, so that
// they can seal a new recovery blob (a new epoch) without the code, which
// none of them holds. A device that has it, even a removed one, can write
// a blob but not read one.
func (c *RecoveryCode) PublicKey() RecoveryPublicKey {
	return RecoveryPublicKey(c.private().PublicKey().Bytes())
}

// RecoveryPublicKey is a recovery code's X25519 public key. Not secret.
type RecoveryPublicKey [RecoveryPublicKeySize]byte

// Bytes returns the 32 bytes.
func (k RecoveryPublicKey) Bytes() []byte { return append([]byte(nil), k[:]...) }

// ParseRecoveryPublicKey reads 32 bytes.
func ParseRecoveryPublicKey(b []byte) (RecoveryPublicKey, error) {
	if len(b) != RecoveryPublicKeySize {
		return RecoveryPublicKey{}, errors.New("history: a recovery public key is 32 bytes")
	}
	return RecoveryPublicKey(b), nil
}

// recoveryAEAD is the blob's cipher: AES-256-GCM under HKDF-SHA256(ikm =
// X25519(ephemeral, recovery key), salt = ephemeral public || recovery
// public, info "hush recovery v1 key", 32 bytes).
func recoveryAEAD(shared, eph, pub []byte) cipher.AEAD {
	k, err := hkdf.Key(sha256.New, shared, append(bytes.Clone(eph), pub...), infoRecoveryKey, 32)
	if err != nil {
		panic("history: internal error: " + err.Error())
	}
	block, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(block)
	return aead
}

// Account is what the recovery blob holds: what a person who lost every
// device needs to be the account again and read its history. Identity and
// History are secret.
type Account struct {
	Username string
	Identity *key.IdentityKeyPair // the account identity key pair
	History  *Keyring
}

// The blob's plaintext, strict JSON (package strictjson), as the
// provisioning box's: accountIdentity is key.IdentityKeyPair's encoding,
// history the keyring's form.
type accountJSON struct {
	Version         int      `json:"version"`
	Username        string   `json:"username"`
	AccountIdentity []byte   `json:"accountIdentity"`
	History         *Keyring `json:"history"`
}

func recoveryAD(username string) []byte { return append([]byte(labelRecovery), username...) }

// SealRecovery makes the recovery blob of a (api.Recovery.Blob) for the
// code whose public key is pub, as a sealed box: ephemeral X25519 public
// key (32) || nonce (12) || AES-256-GCM(recoveryAEAD, nonce, JSON {version,
// username, accountIdentity, history}, AD = "hush recovery v1" ||
// username). Only the code opens it.
func SealRecovery(pub RecoveryPublicKey, a *Account) ([]byte, error) {
	switch {
	case !api.ValidUsername(a.Username):
		return nil, errors.New("history: the username is not valid")
	case a.Identity == nil || a.History == nil || len(a.History.epochs) == 0:
		return nil, errors.New("history: a recovery blob needs the account identity and the keyring")
	}
	id, err := a.Identity.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(accountJSON{Version: RecoveryVersion, Username: a.Username, AccountIdentity: id, History: a.History})
	if err != nil {
		return nil, err
	}
	if n := RecoveryPublicKeySize + nonceSize + len(pt) + tagSize; n > api.MaxRecoveryBlobBytes {
		return nil, fmt.Errorf("history: the recovery blob would be %d bytes, the most is %d", n, api.MaxRecoveryBlobBytes)
	}
	return sealBox(pub, pt, a.Username)
}

// sealBox seals pt to pub with the AD of username's blob.
func sealBox(pub RecoveryPublicKey, pt []byte, username string) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	shared, err := eph.ECDH(peer)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, RecoveryPublicKeySize+nonceSize, RecoveryPublicKeySize+nonceSize+len(pt)+tagSize)
	copy(blob, eph.PublicKey().Bytes())
	rand.Read(blob[RecoveryPublicKeySize:])
	aead := recoveryAEAD(shared, blob[:RecoveryPublicKeySize], pub[:])
	return aead.Seal(blob, blob[RecoveryPublicKeySize:], pt, recoveryAD(username)), nil
}

// ErrRecovery is the one error of OpenRecovery, whatever failed: a wrong
// code, another account's blob, an altered or malformed blob.
var ErrRecovery = errors.New("history: the recovery code does not open this account's recovery blob")

// OpenRecovery opens the recovery blob of the account username with code
// c. Any failure is ErrRecovery; then nothing is to be created.
func OpenRecovery(c *RecoveryCode, username string, blob []byte) (*Account, error) {
	if len(blob) < RecoveryPublicKeySize+nonceSize+tagSize || len(blob) > api.MaxRecoveryBlobBytes {
		return nil, ErrRecovery
	}
	priv := c.private()
	eph, err := ecdh.X25519().NewPublicKey(blob[:RecoveryPublicKeySize])
	if err != nil {
		return nil, ErrRecovery
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, ErrRecovery
	}
	aead := recoveryAEAD(shared, blob[:RecoveryPublicKeySize], priv.PublicKey().Bytes())
	body := blob[RecoveryPublicKeySize:]
	pt, err := aead.Open(nil, body[:nonceSize], body[nonceSize:], recoveryAD(username))
	if err != nil {
		return nil, ErrRecovery
	}
	a, err := parseAccount(pt)
	if err != nil || a.Username != username {
		return nil, ErrRecovery
	}
	return a, nil
}

// parseAccount decodes the blob's plaintext strictly.
func parseAccount(pt []byte) (*Account, error) {
	var j accountJSON
	if err := strictjson.Unmarshal(pt, &j); err != nil {
		return nil, err
	}
	switch {
	case j.Version != RecoveryVersion:
		return nil, fmt.Errorf("recovery blob version %d", j.Version)
	case !api.ValidUsername(j.Username):
		return nil, errors.New("the username is not valid")
	case j.History == nil:
		return nil, errors.New("no keyring")
	}
	id, err := key.ParseIdentityKeyPair(j.AccountIdentity)
	if err != nil {
		return nil, errors.New("bad account identity")
	}
	if again, _ := id.MarshalBinary(); !bytes.Equal(again, j.AccountIdentity) {
		return nil, errors.New("account identity not in canonical form")
	}
	return &Account{Username: j.Username, Identity: id, History: j.History}, nil
}
