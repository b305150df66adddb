package senderkey

import (
	"context"
	"sync"

	"github.com/hushmsg/hush/session"
)

// MemoryStore is an in-memory [Store]. Records are kept serialized, as a
// persistent store keeps them, so that a caller never shares a record with
// the store. It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[memKey][]byte
}

type memKey struct {
	sender session.Address
	id     DistributionID
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{records: make(map[memKey][]byte)} }

func (m *MemoryStore) LoadSenderKey(_ context.Context, sender session.Address, id DistributionID) (*Record, error) {
	m.mu.Lock()
	b, ok := m.records[memKey{sender, id}]
	m.mu.Unlock()
	if !ok {
		return nil, nil
	}
	return ParseRecord(b)
}

func (m *MemoryStore) StoreSenderKey(_ context.Context, sender session.Address, id DistributionID, r *Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.records[memKey{sender, id}] = b
	m.mu.Unlock()
	return nil
}

// Raw returns the stored bytes of a record, or nil, for tests and tools
// that compare stores byte for byte.
func (m *MemoryStore) Raw(sender session.Address, id DistributionID) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.records[memKey{sender, id}]...)
}
