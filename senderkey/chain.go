package senderkey

import (
	"crypto/hkdf"
	"crypto/sha256"
	"math"

	"github.com/hushmsg/hush/ratchet"
)

/* Specification constants (libsignal rust/protocol/src/sender_keys.rs, consts.rs) */

const (
	// infoMessageKeys is the HKDF info of SenderMessageKey::new.
	infoMessageKeys = "WhisperGroup"
	// MaxForwardJumps is MAX_FORWARD_JUMPS: a receiver refuses a message more
	// than this many iterations past the next one its chain expects.
	MaxForwardJumps = 25_000
	// MaxMessageKeys is MAX_MESSAGE_KEYS: the keys of skipped iterations a
	// state keeps, oldest dropped first.
	MaxMessageKeys = 2000
	// MaxStates is MAX_SENDER_KEY_STATES: the chains a record keeps per
	// sender and distribution, oldest dropped first.
	MaxStates = 5
)

// The sender chain is SenderChainKey: the chain key steps as the Double
// Ratchet's sending chain does, HMAC-SHA256(chain key, 0x01) for a message
// key's seed and HMAC-SHA256(chain key, 0x02) for the next chain key
// (get_derivative with MESSAGE_KEY_SEED and CHAIN_KEY_SEED), so it is
// ratchet.ChainKey, with the iteration as its index. The one difference is
// at the end of the chain: libsignal refuses to step past iteration 2^32-1
// (checked_add), where ratchet.ChainKey would wrap.

// canStep reports whether the chain may advance past ck
// (SenderChainKey::next's checked_add).
func canStep(ck *ratchet.ChainKey) bool { return ck.Index != math.MaxUint32 }

// messageKeys is SenderMessageKey::new: HKDF-SHA256 without salt over the
// seed, info "WhisperGroup", 48 bytes: the AES-CBC IV (16), then the
// AES-256 key (32). The MAC key of the result is unused: a group message is
// authenticated by its signature.
func messageKeys(seed *[32]byte) ratchet.MessageKeys {
	out, err := hkdf.Key(sha256.New, seed[:], nil, infoMessageKeys, 48)
	if err != nil {
		panic("senderkey: internal error: " + err.Error())
	}
	var mk ratchet.MessageKeys
	copy(mk.IV[:], out[:16])
	copy(mk.CipherKey[:], out[16:])
	clear(out)
	return mk
}
