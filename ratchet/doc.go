// Package ratchet implements the Double Ratchet as libsignal runs it
// (signal.org/docs/specifications/doubleratchet; libsignal
// rust/protocol/src/double_ratchet.rs and ratchet/keys.rs):
//
//   - KDF_RK is HKDF-SHA256 keyed by the root key with info "WhisperRatchet"
//     ([RootKey.CreateChain]);
//   - KDF_CK is HMAC-SHA256 of the chain key with 0x01 (message key seed) and
//     0x02 (next chain key) ([ChainKey]);
//   - the 80-byte message keys come from HKDF over the seed with info
//     "WhisperMessageKeys", salted with the SPQR key in a triple-ratchet
//     session ([DeriveMessageKeys]); messages are AES-256-CBC
//     ([MessageKeys.Seal]); the MAC is in package wire;
//   - skipped message keys are kept within libsignal's limits
//     ([MaxForwardJumps], [MaxMessageKeys] per chain, [MaxReceiverChains]).
//
// [State] holds one session's ratchet. It is changed in place; callers that
// must be able to undo (a message that later fails its MAC) work on a
// [State.Clone]. Package session builds sessions on it.
package ratchet
