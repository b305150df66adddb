// Package session is the front door of hush's Signal Protocol library: it
// starts sessions from prekey bundles, encrypts and decrypts messages, and
// keeps everything in a [Store]. It is byte-compatible with libsignal
// (X3DH sessions of version 3, PQXDH sessions of version 4, with SPQR).
//
// The entry points are [Cipher.ProcessBundle] (start a session from a
// peer's [Bundle]), [Cipher.Encrypt] and [Cipher.Decrypt]. Session state is
// a [Record] (the current session and up to 40 archived ones) that
// serializes as libsignal's RecordStructure; [MemoryStore] is an in-memory
// [Store].
//
// Security properties:
//   - a failed decryption returns an error matching [ErrDecrypt], whatever
//     the reason, and writes nothing to the store;
//   - a peer's identity key is checked against the store's trust decision
//     (trust on first use in [MemoryStore]); a changed key is an
//     [*UntrustedIdentityError] until the application saves the new one;
//   - until the peer answers, messages are PreKey messages, so a lost first
//     message does not break the session.
package session
