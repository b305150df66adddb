package maulibsignal

import (
	"context"
	"fmt"

	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"
)

// addrKey is a map key for a protocol.SignalAddress; the library's address
// is a pointer, and two pointers to equal addresses must find one entry.
type addrKey struct {
	name   string
	device uint32
}

func keyOf(a *protocol.SignalAddress) addrKey { return addrKey{a.Name(), a.DeviceID()} }

// memStore is a map-backed store for one party. Session records are kept
// only as bytes, as a persistent store keeps them: StoreSession serializes
// the record with the library's record serializer and LoadSession parses
// it back, so every encrypt and decrypt pays for one parse and one
// serialization of the record. Identities and prekeys are kept as objects,
// like hush's session.MemoryStore keeps them.
type memStore struct {
	identity *identity.KeyPair
	regID    uint32
	ser      *serialize.Serializer

	sessions   map[addrKey][]byte
	identities map[addrKey][32]byte
	preKeys    map[uint32]*record.PreKey
	signed     map[uint32]*record.SignedPreKey

	// loads and stores count session record parses and serializations, so
	// that the round-trip test can prove the byte path is taken.
	loads, stores int
}

var (
	_ store.Session      = (*memStore)(nil)
	_ store.PreKey       = (*memStore)(nil)
	_ store.SignedPreKey = (*memStore)(nil)
	_ store.IdentityKey  = (*memStore)(nil)
)

func newMemStore(id *identity.KeyPair, regID uint32, ser *serialize.Serializer) *memStore {
	return &memStore{
		identity:   id,
		regID:      regID,
		ser:        ser,
		sessions:   make(map[addrKey][]byte),
		identities: make(map[addrKey][32]byte),
		preKeys:    make(map[uint32]*record.PreKey),
		signed:     make(map[uint32]*record.SignedPreKey),
	}
}

// store.IdentityKey, trust on first use.

func (m *memStore) GetIdentityKeyPair() *identity.KeyPair { return m.identity }
func (m *memStore) GetLocalRegistrationID() uint32        { return m.regID }

func (m *memStore) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	m.identities[keyOf(a)] = k.PublicKey().PublicKey()
	return nil
}

func (m *memStore) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	known, ok := m.identities[keyOf(a)]
	return !ok || known == k.PublicKey().PublicKey(), nil
}

// store.Session, records kept serialized.

func (m *memStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	b, ok := m.sessions[keyOf(a)]
	if !ok {
		return record.NewSession(m.ser.Session, m.ser.State), nil
	}
	m.loads++
	r, err := record.NewSessionFromBytes(b, m.ser.Session, m.ser.State)
	if err != nil {
		return nil, fmt.Errorf("parse session record: %w", err)
	}
	return r, nil
}

func (m *memStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	b := r.Serialize()
	if len(b) == 0 {
		return fmt.Errorf("session record serialized to nothing")
	}
	m.stores++
	m.sessions[keyOf(a)] = b
	return nil
}

func (m *memStore) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	var ids []uint32
	for k := range m.sessions {
		if k.name == name && k.device != 1 {
			ids = append(ids, k.device)
		}
	}
	return ids, nil
}

func (m *memStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := m.sessions[keyOf(a)]
	return ok, nil
}

func (m *memStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(m.sessions, keyOf(a))
	return nil
}

func (m *memStore) DeleteAllSessions(context.Context) error {
	clear(m.sessions)
	return nil
}

// store.PreKey. The library treats a nil record as "not found".

func (m *memStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	return m.preKeys[id], nil
}

func (m *memStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	m.preKeys[id] = r
	return nil
}

func (m *memStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := m.preKeys[id]
	return ok, nil
}

func (m *memStore) RemovePreKey(_ context.Context, id uint32) error {
	delete(m.preKeys, id)
	return nil
}

// store.SignedPreKey.

func (m *memStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	return m.signed[id], nil
}

func (m *memStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	out := make([]*record.SignedPreKey, 0, len(m.signed))
	for _, r := range m.signed {
		out = append(out, r)
	}
	return out, nil
}

func (m *memStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	m.signed[id] = r
	return nil
}

func (m *memStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := m.signed[id]
	return ok, nil
}

func (m *memStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	delete(m.signed, id)
	return nil
}
