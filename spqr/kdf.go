package spqr

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// Labels of the crate, byte for byte (spqr.md §3). Note the two spaces in
// labelChainStart.
const (
	// src/chain.rs Chain::new (HKDF info).
	labelChainStart = "Signal PQ Ratchet V1 Chain  Start"
	// src/chain.rs Chain::add_epoch (HKDF info).
	labelChainAddEpoch = "Signal PQ Ratchet V1 Chain Add Epoch"
	// src/chain.rs ChainEpochDirection::next_key_internal (HKDF info, after BE32(ctr)).
	labelChainNext = "Signal PQ Ratchet V1 Chain Next"
	// src/v1/unchunked/send_{ek,ct}.rs (HKDF info, before BE64(epoch)).
	labelSCKAKey = "Signal_PQCKA_V1_MLKEM768:SCKA Key"
	// src/authenticator.rs Authenticator::update (HKDF info, before BE64(epoch)).
	labelAuthUpdate = "Signal_PQCKA_V1_MLKEM768:Authenticator Update"
	// src/authenticator.rs Authenticator::mac_hdr (HMAC data prefix).
	labelMacHeader = "Signal_PQCKA_V1_MLKEM768:ekheader"
	// src/authenticator.rs Authenticator::mac_ct (HMAC data prefix).
	labelMacCiphertext = "Signal_PQCKA_V1_MLKEM768:ciphertext"
)

// zeroSalt is the explicit all-zero 32-byte salt of every SPQR HKDF except
// Add Epoch (src/kdf.rs callers pass &[0u8; 32]).
var zeroSalt = make([]byte, 32)

// kdf is HKDF-SHA256 (src/kdf.rs hkdf_to_slice).
func kdf(salt, ikm []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, ikm, salt, info, n)
	if err != nil {
		// Only possible for n > 255*32, which no caller asks for.
		panic("spqr: hkdf: " + err.Error())
	}
	return out
}

func be64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

func be32(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return string(b[:])
}

// epochSecret derives K_e from the ML-KEM shared secret
// (src/v1/unchunked/send_ct.rs HeaderReceived::send_ct1 and
// send_ek.rs EkSentCt1Received::recv_ct2).
func epochSecret(epoch uint64, ss []byte) [32]byte {
	var k [32]byte
	copy(k[:], kdf(zeroSalt, ss, labelSCKAKey+be64(epoch), 32))
	return k
}

// authenticator is src/authenticator.rs Authenticator: a root key chained
// over the epochs and the current MAC key.
type authenticator struct {
	root, mac [32]byte
}

// newAuthenticator is Authenticator::new(auth_key, 1): zero keys, then
// update(epoch, key).
func newAuthenticator(key []byte, epoch uint64) authenticator {
	var a authenticator
	a.update(epoch, key)
	return a
}

// update is Authenticator::update: HKDF(0^32, root || k, label || BE64(ep), 64).
func (a *authenticator) update(epoch uint64, k []byte) {
	ikm := make([]byte, 0, 32+len(k))
	ikm = append(append(ikm, a.root[:]...), k...)
	out := kdf(zeroSalt, ikm, labelAuthUpdate+be64(epoch), 64)
	copy(a.root[:], out[:32])
	copy(a.mac[:], out[32:])
}

func (a *authenticator) hmac(label string, epoch uint64, parts ...[]byte) [32]byte {
	h := hmac.New(sha256.New, a.mac[:])
	h.Write([]byte(label))
	h.Write([]byte(be64(epoch)))
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// macHdr is Authenticator::mac_hdr.
func (a *authenticator) macHdr(epoch uint64, hdr []byte) [32]byte {
	return a.hmac(labelMacHeader, epoch, hdr)
}

// macCt is Authenticator::mac_ct over ct1 || ct2.
func (a *authenticator) macCt(epoch uint64, ct1, ct2 []byte) [32]byte {
	return a.hmac(labelMacCiphertext, epoch, ct1, ct2)
}

// verifyHdr is Authenticator::verify_hdr (constant-time comparison).
func (a *authenticator) verifyHdr(epoch uint64, hdr, mac []byte) bool {
	want := a.macHdr(epoch, hdr)
	return hmac.Equal(want[:], mac)
}

// verifyCt is Authenticator::verify_ct (constant-time comparison).
func (a *authenticator) verifyCt(epoch uint64, ct1, ct2, mac []byte) bool {
	want := a.macCt(epoch, ct1, ct2)
	return hmac.Equal(want[:], mac)
}
