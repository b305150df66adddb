// Package key holds the typed keys of the Signal Protocol, encoded as
// libsignal encodes them: Curve25519 keys ([ECPublic], [ECPrivate]) with the
// 0x05 type byte, XEdDSA signatures with libsignal's sign-bit convention
// ([ECPrivate.Sign], [ECPublic.Verify]), round-3 Kyber1024 KEM keys
// ([KEMPublic], [KEMSecret]) with the 0x08 type byte, and the records a
// device keeps: its [IdentityKeyPair], one-time [PreKey]s, [SignedPreKey]s
// and [KyberPreKey]s, each with its own id type.
//
// Private keys never appear in String, GoString or an error. Stored records
// use libsignal's protobuf layouts (storage.proto), so they can be exchanged
// with libsignal.
package key
