package ratchet

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/hushmsg/hush/key"
)

/* Specification constants (libsignal rust/protocol/src/ratchet/keys.rs) */

const (
	infoRatchet     = "WhisperRatchet"     // KDF_RK
	infoMessageKeys = "WhisperMessageKeys" // message keys from a chain's seed
)

var (
	messageKeySeed = []byte{0x01} // HMAC input for a message key seed
	chainKeySeed   = []byte{0x02} // HMAC input for the next chain key
)

// RootKey is the Double Ratchet's root key (RK).
type RootKey [32]byte

// CreateChain is KDF_RK (Double Ratchet spec section 5.2):
// HKDF-SHA256(salt = RK, ikm = DH(our, their), "WhisperRatchet", 64) gives
// the next root key and a chain key at index 0.
func (rk *RootKey) CreateChain(their key.ECPublic, our *key.ECPrivate) (RootKey, ChainKey, error) {
	dh, err := our.Agree(their)
	if err != nil {
		return RootKey{}, ChainKey{}, fmt.Errorf("ratchet: %w", err)
	}
	out, err := hkdf.Key(sha256.New, dh[:], rk[:], infoRatchet, 64)
	clear(dh[:])
	if err != nil {
		return RootKey{}, ChainKey{}, err
	}
	var next RootKey
	var ck ChainKey
	copy(next[:], out[:32])
	copy(ck.Key[:], out[32:])
	clear(out)
	return next, ck, nil
}

// ChainKey is a sending or receiving chain key (CKs, CKr) and the index of
// the message it will key next.
type ChainKey struct {
	Key   [32]byte
	Index uint32
}

// Next is KDF_CK's chain output: HMAC-SHA256(CK, 0x02).
func (ck *ChainKey) Next() ChainKey {
	h := hmac.New(sha256.New, ck.Key[:])
	next := ChainKey{Index: ck.Index + 1}
	h.Write(chainKeySeed)
	h.Sum(next.Key[:0])
	return next
}

// Seed is KDF_CK's message output: HMAC-SHA256(CK, 0x01), the input from
// which the message keys are derived.
func (ck *ChainKey) Seed() [32]byte {
	seed, _ := ck.step(false)
	return seed
}

// Step returns both KDF_CK outputs, the message key seed and the next chain
// key, keying HMAC once for the two.
func (ck *ChainKey) Step() (seed [32]byte, next ChainKey) { return ck.step(true) }

func (ck *ChainKey) step(withNext bool) (seed [32]byte, next ChainKey) {
	h := hmac.New(sha256.New, ck.Key[:])
	h.Write(messageKeySeed)
	h.Sum(seed[:0])
	if withNext {
		h.Reset()
		h.Write(chainKeySeed)
		h.Sum(next.Key[:0])
		next.Index = ck.Index + 1
	}
	return seed, next
}

// MessageKeys encrypt and authenticate one message.
type MessageKeys struct {
	CipherKey [32]byte // AES-256
	MACKey    [32]byte // HMAC-SHA256
	IV        [16]byte // AES-CBC
}

// DeriveMessageKeys is libsignal's MessageKeys::derive_keys:
// HKDF-SHA256(salt, seed, "WhisperMessageKeys", 80) split 32/32/16. salt is
// the SPQR message key in a triple-ratchet session, nil otherwise (which
// HKDF treats as 32 zero bytes).
func DeriveMessageKeys(seed *[32]byte, salt []byte) MessageKeys {
	out, err := hkdf.Key(sha256.New, seed[:], salt, infoMessageKeys, 80)
	if err != nil {
		panic("ratchet: internal error: " + err.Error())
	}
	var mk MessageKeys
	copy(mk.CipherKey[:], out[:32])
	copy(mk.MACKey[:], out[32:64])
	copy(mk.IV[:], out[64:])
	clear(out)
	return mk
}
