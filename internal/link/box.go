package link

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
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/internal/strictjson"
	"github.com/hushmsg/hush/key"
)

// BoxVersion is the version of the box's plaintext this package writes and
// reads.
const BoxVersion = 1

// MaxContacts is the most contacts a box holds.
const MaxContacts = 1000

// nonceSize is AES-GCM's standard nonce length; the sealed box is
// nonce || ciphertext || tag.
const nonceSize = 12

// Box is the plaintext of the provisioning box (docs/multidevice.md
// section 2): all a new device needs to become a device of the account.
// Identity and History are secret.
type Box struct {
	Username string
	Identity *key.IdentityKeyPair // the account identity key pair
	History  *history.Keyring
	Contacts []Contact
	// RecoveryBlobVersion is the version of the recovery blob the old
	// device last uploaded (0: none), so that the new device's next
	// upload asks for the next version.
	RecoveryBlobVersion int64
	// RecoveryPublic is the recovery code's public key (nil: the account
	// has no recovery code yet), so that the new device can seal the next
	// recovery blob when it opens an epoch.
	RecoveryPublic *history.RecoveryPublicKey
}

// Contact is a person the account has talked to, with the account
// identity key it trusts for them.
type Contact struct {
	Name     string
	Identity key.IdentityKey
}

// The box's JSON form, strict (package strictjson). accountIdentity is
// libsignal's IdentityKeyPairStructure (key.IdentityKeyPair.MarshalBinary),
// the form the client's store keeps; a contact's is the serialized public
// key (33 bytes); history is the keyring's form (package history).
type boxJSON struct {
	Version             int              `json:"version"`
	Username            string           `json:"username"`
	AccountIdentity     []byte           `json:"accountIdentity"`
	History             *history.Keyring `json:"history"`
	Contacts            []contactJSON    `json:"contacts"`
	RecoveryBlobVersion int64            `json:"recoveryBlobVersion"`
	RecoveryPublic      []byte           `json:"recoveryPublic,omitempty"`
}

type contactJSON struct {
	Name            string `json:"name"`
	AccountIdentity []byte `json:"accountIdentity"`
}

func (b *Box) check() error {
	switch {
	case !api.ValidUsername(b.Username):
		return errors.New("the username is not valid")
	case b.Identity == nil:
		return errors.New("no account identity")
	case b.History == nil || len(b.History.Epochs()) == 0:
		return errors.New("no history keyring")
	case len(b.Contacts) > MaxContacts:
		return fmt.Errorf("%d contacts, the most is %d", len(b.Contacts), MaxContacts)
	case b.RecoveryBlobVersion < 0:
		return errors.New("negative recovery blob version")
	}
	seen := make(map[string]bool, len(b.Contacts))
	for _, c := range b.Contacts {
		if !api.ValidUsername(c.Name) {
			return errors.New("a contact's name is not a valid username")
		}
		if seen[c.Name] {
			return errors.New("a contact is there twice")
		}
		seen[c.Name] = true
	}
	return nil
}

// marshal encodes the box's plaintext. The result is secret.
func (b *Box) marshal() ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	id, err := b.Identity.MarshalBinary()
	if err != nil {
		return nil, err
	}
	j := boxJSON{Version: BoxVersion, Username: b.Username, AccountIdentity: id, History: b.History,
		Contacts: make([]contactJSON, len(b.Contacts)), RecoveryBlobVersion: b.RecoveryBlobVersion}
	for i, c := range b.Contacts {
		j.Contacts[i] = contactJSON{Name: c.Name, AccountIdentity: c.Identity.Bytes()}
	}
	if b.RecoveryPublic != nil {
		j.RecoveryPublic = b.RecoveryPublic.Bytes()
	}
	return json.Marshal(j)
}

// parseBox decodes a box's plaintext strictly: canonical JSON, version 1,
// a valid username, a valid account identity key pair (public key matching
// the private key), a keyring, at most MaxContacts contacts with valid
// distinct names and keys.
func parseBox(pt []byte) (*Box, error) {
	if len(pt) > api.MaxLinkBoxBytes {
		return nil, errors.New("the box is too large")
	}
	var j boxJSON
	if err := strictjson.Unmarshal(pt, &j); err != nil {
		return nil, err
	}
	if j.Version != BoxVersion {
		return nil, fmt.Errorf("box version %d", j.Version)
	}
	if j.Contacts == nil {
		return nil, errors.New("no contacts list")
	}
	b := &Box{Username: j.Username, History: j.History, RecoveryBlobVersion: j.RecoveryBlobVersion,
		Contacts: make([]Contact, len(j.Contacts))}
	id, err := key.ParseIdentityKeyPair(j.AccountIdentity)
	if err != nil {
		return nil, errors.New("bad account identity")
	}
	if again, _ := id.MarshalBinary(); !bytes.Equal(again, j.AccountIdentity) {
		return nil, errors.New("account identity not in canonical form")
	}
	b.Identity = id
	if j.RecoveryPublic != nil {
		rp, err := history.ParseRecoveryPublicKey(j.RecoveryPublic)
		if err != nil {
			return nil, err
		}
		b.RecoveryPublic = &rp
	}
	for i, c := range j.Contacts {
		k, err := key.ParseIdentityKey(c.AccountIdentity)
		if err != nil || !bytes.Equal(k.Bytes(), c.AccountIdentity) {
			return nil, errors.New("bad contact identity key")
		}
		b.Contacts[i] = Contact{Name: c.Name, Identity: k}
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// ErrBox is the one error of Joiner.Open, whatever failed: a box not
// sealed with this code and this hello, altered, or malformed.
var ErrBox = errors.New("link: the provisioning box could not be opened")

// boxAEAD derives the box key, HKDF-SHA256(ikm = X25519(Eo, En) || S,
// salt = En || Eo, info "hush link v1 box", 32 bytes), as AES-256-GCM.
func boxAEAD(c *Code, shared []byte, en, eo *PublicKey) cipher.AEAD {
	ikm := append(append(make([]byte, 0, len(shared)+CodeSize), shared...), c.s[:]...)
	salt := append(append(make([]byte, 0, 2*PublicKeySize), en[:]...), eo[:]...)
	k, err := hkdf.Key(sha256.New, ikm, salt, labelBox, 32)
	if err != nil {
		panic("link: internal error: " + err.Error())
	}
	block, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(block)
	return aead
}

// boxAD is the additional data, "hush link v1 box" || link id.
func boxAD(c *Code) []byte {
	id := c.ID()
	return append([]byte(labelBox), id[:]...)
}

// Seal is the old device's step 3, after CheckHello: it makes its own
// ephemeral key pair Eo and seals b to the new device's ephemeral key en.
// It returns Eo's public key and the sealed box (api.LinkBox).
func Seal(c *Code, en PublicKey, b *Box) (eo PublicKey, sealed []byte, err error) {
	pt, err := b.marshal()
	if err != nil {
		return eo, nil, fmt.Errorf("link: sealing the box: %w", err)
	}
	if n := nonceSize + len(pt) + 16; n > api.MaxLinkBoxBytes {
		return eo, nil, fmt.Errorf("link: the box would be %d bytes, the most is %d", n, api.MaxLinkBoxBytes)
	}
	enPub, err := ecdh.X25519().NewPublicKey(en[:])
	if err != nil {
		return eo, nil, ErrTampered
	}
	eoPriv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return eo, nil, err
	}
	shared, err := eoPriv.ECDH(enPub)
	if err != nil {
		return eo, nil, ErrTampered // a low-order key: not a real device's
	}
	eo = PublicKey(eoPriv.PublicKey().Bytes())
	sealed = make([]byte, nonceSize, nonceSize+len(pt)+16)
	rand.Read(sealed)
	sealed = boxAEAD(c, shared, &en, &eo).Seal(sealed, sealed, pt, boxAD(c))
	return eo, sealed, nil
}

// Open is the new device's step 4: it opens the sealed box with the old
// device's ephemeral key eo (api.LinkBox). Any failure is ErrBox: nothing
// is to be created or written then.
func (j *Joiner) Open(eo, sealed []byte) (*Box, error) {
	if len(eo) != PublicKeySize || len(sealed) < nonceSize+16 || len(sealed) > api.MaxLinkBoxBytes {
		return nil, ErrBox
	}
	eoPub, err := ecdh.X25519().NewPublicKey(eo)
	if err != nil {
		return nil, ErrBox
	}
	shared, err := j.en.ECDH(eoPub)
	if err != nil {
		return nil, ErrBox
	}
	en, eoK := PublicKey(j.en.PublicKey().Bytes()), PublicKey(eo)
	pt, err := boxAEAD(&j.code, shared, &en, &eoK).Open(nil, sealed[:nonceSize], sealed[nonceSize:], boxAD(&j.code))
	if err != nil {
		return nil, ErrBox
	}
	b, err := parseBox(pt)
	if err != nil {
		return nil, ErrBox
	}
	return b, nil
}
