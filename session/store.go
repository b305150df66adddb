package session

import (
	"context"

	"github.com/hushmsg/hush/key"
)

// Direction says whether an identity is checked for sending or receiving.
type Direction int

const (
	Sending Direction = iota
	Receiving
)

// IdentityStore holds this device's identity and the identities of peers.
type IdentityStore interface {
	IdentityKeyPair(ctx context.Context) (*key.IdentityKeyPair, error)
	LocalRegistrationID(ctx context.Context) (key.RegistrationID, error)
	// IsTrustedIdentity decides whether k may be used for addr. The usual
	// policy is trust on first use: unknown or equal to the saved key.
	IsTrustedIdentity(ctx context.Context, addr Address, k key.IdentityKey, dir Direction) (bool, error)
	// SaveIdentity records k for addr and reports whether it replaced a
	// different key.
	SaveIdentity(ctx context.Context, addr Address, k key.IdentityKey) (replaced bool, err error)
	// Identity returns the saved key for addr, or nil.
	Identity(ctx context.Context, addr Address) (*key.IdentityKey, error)
}

// SessionStore holds session records.
type SessionStore interface {
	// LoadSession returns the record for addr, or nil if there is none.
	LoadSession(ctx context.Context, addr Address) (*Record, error)
	StoreSession(ctx context.Context, addr Address, r *Record) error
}

// PreKeyStore holds this device's one-time Curve25519 prekeys.
type PreKeyStore interface {
	LoadPreKey(ctx context.Context, id key.PreKeyID) (*key.PreKey, error)
	RemovePreKey(ctx context.Context, id key.PreKeyID) error
}

// SignedPreKeyStore holds this device's signed prekeys.
type SignedPreKeyStore interface {
	LoadSignedPreKey(ctx context.Context, id key.SignedPreKeyID) (*key.SignedPreKey, error)
}

// KyberPreKeyStore holds this device's Kyber prekeys.
type KyberPreKeyStore interface {
	LoadKyberPreKey(ctx context.Context, id key.KyberPreKeyID) (*key.KyberPreKey, error)
	// MarkKyberPreKeyUsed is called after a PreKey message that used the key
	// decrypted. A one-time key is removed; a last-resort key must refuse a
	// second use with the same signed prekey and base key (a replay).
	MarkKyberPreKeyUsed(ctx context.Context, id key.KyberPreKeyID, spk key.SignedPreKeyID, baseKey key.ECPublic) error
}

// Store is everything a [Cipher] needs. Decrypt writes to it only after a
// message has authenticated, so an implementation that runs each call in a
// transaction gets all-or-nothing updates.
type Store interface {
	IdentityStore
	SessionStore
	PreKeyStore
	SignedPreKeyStore
	KyberPreKeyStore
}
