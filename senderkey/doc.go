// Package senderkey is hush's group messaging with Signal's Sender Keys,
// byte-compatible with libsignal (rust/protocol/src/sender_keys.rs,
// group_cipher.rs, protocol.rs; wire.proto and storage.proto).
//
// Each member of a group has its own sending chain per distribution id (a
// UUID naming the group's chain): a chain key that steps with HMAC-SHA256
// and a signing key pair. The member gives the chain to the others in a
// [DistributionMessage] (sent inside a one-to-one session), then sends each
// group message once, as a [Message] that every member holding the chain
// decrypts: AES-256-CBC under a key derived from the chain, signed with
// XEdDSA by the chain's signing key. So a sender encrypts and signs once,
// whatever the size of the group.
//
// The entry points are the methods of [Cipher]: Distribution, Process,
// Encrypt and Decrypt. Chains are kept in a [Store] as [Record] values
// that serialize as libsignal's SenderKeyRecordStructure, byte for byte;
// [MemoryStore] is an in-memory Store; every Store runs the conformance
// suite in package senderkeytest.
//
// Security properties:
//   - a failed decryption returns an error matching [ErrDecrypt], whatever
//     the reason, and writes nothing to the store; [ErrNoSenderKey] and
//     [ErrDuplicate] in its chain say what libsignal also says publicly;
//   - a receiver refuses a message more than [MaxForwardJumps] iterations
//     ahead and keeps at most [MaxMessageKeys] keys of skipped iterations;
//   - a member reads only from the iteration at which it was given the
//     chain. Within a chain there is no post-compromise security: whoever
//     holds a chain key reads all that follows it. So when a member leaves,
//     each remaining sender drops its record for the group (the store's
//     business) and distributes a new chain, which Distribution creates.
package senderkey
