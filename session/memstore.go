package session

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hushmsg/hush/key"
)

// ErrNotFound is returned by MemoryStore for a key it does not hold.
var ErrNotFound = errors.New("session: not found")

// MemoryStore is an in-memory [Store] with trust on first use. Records are
// kept serialized, as a persistent store would keep them, so that a caller
// never shares state with the store. It is safe for concurrent use.
type MemoryStore struct {
	mu         sync.Mutex
	identity   *key.IdentityKeyPair
	regID      key.RegistrationID
	identities map[Address]key.IdentityKey
	sessions   map[Address][]byte
	preKeys    map[key.PreKeyID]*key.PreKey
	signed     map[key.SignedPreKeyID]*key.SignedPreKey
	kyber      map[key.KyberPreKeyID]*kyberEntry
}

type kyberEntry struct {
	key        *key.KyberPreKey
	lastResort bool
	used       map[kyberUse]bool
}

type kyberUse struct {
	spk  key.SignedPreKeyID
	base key.ECPublic
}

// NewMemoryStore returns an empty store for the given identity.
func NewMemoryStore(identity *key.IdentityKeyPair, regID key.RegistrationID) *MemoryStore {
	return &MemoryStore{
		identity:   identity,
		regID:      regID,
		identities: make(map[Address]key.IdentityKey),
		sessions:   make(map[Address][]byte),
		preKeys:    make(map[key.PreKeyID]*key.PreKey),
		signed:     make(map[key.SignedPreKeyID]*key.SignedPreKey),
		kyber:      make(map[key.KyberPreKeyID]*kyberEntry),
	}
}

var _ Store = (*MemoryStore)(nil)

func (m *MemoryStore) IdentityKeyPair(context.Context) (*key.IdentityKeyPair, error) {
	return m.identity, nil
}

func (m *MemoryStore) LocalRegistrationID(context.Context) (key.RegistrationID, error) {
	return m.regID, nil
}

func (m *MemoryStore) IsTrustedIdentity(_ context.Context, addr Address, k key.IdentityKey, _ Direction) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	known, ok := m.identities[addr]
	return !ok || known == k, nil
}

func (m *MemoryStore) SaveIdentity(_ context.Context, addr Address, k key.IdentityKey) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	known, ok := m.identities[addr]
	m.identities[addr] = k
	return ok && known != k, nil
}

func (m *MemoryStore) Identity(_ context.Context, addr Address) (*key.IdentityKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.identities[addr]; ok {
		return &k, nil
	}
	return nil, nil
}

func (m *MemoryStore) LoadSession(_ context.Context, addr Address) (*Record, error) {
	m.mu.Lock()
	b, ok := m.sessions[addr]
	m.mu.Unlock()
	if !ok {
		return nil, nil
	}
	return ParseRecord(b)
}

func (m *MemoryStore) StoreSession(_ context.Context, addr Address, r *Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.sessions[addr] = b
	m.mu.Unlock()
	return nil
}

// StorePreKey adds a one-time prekey.
func (m *MemoryStore) StorePreKey(k *key.PreKey) {
	m.mu.Lock()
	m.preKeys[k.ID] = k
	m.mu.Unlock()
}

func (m *MemoryStore) LoadPreKey(_ context.Context, id key.PreKeyID) (*key.PreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.preKeys[id]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: prekey %d", ErrNotFound, id)
}

func (m *MemoryStore) RemovePreKey(_ context.Context, id key.PreKeyID) error {
	m.mu.Lock()
	delete(m.preKeys, id)
	m.mu.Unlock()
	return nil
}

// StoreSignedPreKey adds a signed prekey.
func (m *MemoryStore) StoreSignedPreKey(k *key.SignedPreKey) {
	m.mu.Lock()
	m.signed[k.ID] = k
	m.mu.Unlock()
}

func (m *MemoryStore) LoadSignedPreKey(_ context.Context, id key.SignedPreKeyID) (*key.SignedPreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.signed[id]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: signed prekey %d", ErrNotFound, id)
}

// StoreKyberPreKey adds a Kyber prekey; a last-resort key stays after use.
func (m *MemoryStore) StoreKyberPreKey(k *key.KyberPreKey, lastResort bool) {
	m.mu.Lock()
	m.kyber[k.ID] = &kyberEntry{key: k, lastResort: lastResort, used: make(map[kyberUse]bool)}
	m.mu.Unlock()
}

func (m *MemoryStore) LoadKyberPreKey(_ context.Context, id key.KyberPreKeyID) (*key.KyberPreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.kyber[id]; ok {
		return e.key, nil
	}
	return nil, fmt.Errorf("%w: Kyber prekey %d", ErrNotFound, id)
}

// ErrKyberReuse is returned when a last-resort Kyber prekey is used twice
// with the same signed prekey and base key.
var ErrKyberReuse = errors.New("session: Kyber prekey reused")

func (m *MemoryStore) MarkKyberPreKeyUsed(_ context.Context, id key.KyberPreKeyID, spk key.SignedPreKeyID, base key.ECPublic) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.kyber[id]
	if !ok {
		return fmt.Errorf("%w: Kyber prekey %d", ErrNotFound, id)
	}
	if !e.lastResort {
		delete(m.kyber, id)
		return nil
	}
	u := kyberUse{spk, base}
	if e.used[u] {
		return ErrKyberReuse
	}
	e.used[u] = true
	return nil
}
