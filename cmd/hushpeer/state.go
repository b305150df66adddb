package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// peerState is the whole state of one party, kept in one JSON file. Binary
// values are base64 (encoding/json's []byte). Records are the library's own
// serializations, so nothing here depends on where the file lives.
type peerState struct {
	Name           string `json:"name"`
	DeviceID       uint32 `json:"deviceId"`
	RegistrationID uint32 `json:"registrationId"`
	PQRatchet      string `json:"pqRatchet"` // default for answering PreKey messages
	IdentityPair   []byte `json:"identityKeyPair"`
	Bundle         struct {
		SignedPreKeyID uint32  `json:"signedPreKeyId"`
		PreKeyID       *uint32 `json:"preKeyId"`
		KyberPreKeyID  *uint32 `json:"kyberPreKeyId"`
	} `json:"bundleIds"`
	PreKeys       map[string][]byte   `json:"preKeys"`
	SignedPreKeys map[string][]byte   `json:"signedPreKeys"`
	KyberPreKeys  map[string][]byte   `json:"kyberPreKeys"`
	KyberUsed     map[string][]string `json:"kyberUsed"` // id -> "spk/base64 base key" uses
	Identities    map[string][]byte   `json:"identities"`
	Sessions      map[string][]byte   `json:"sessions"`
	SenderKeys    map[string][]byte   `json:"senderKeys"`

	identity *key.IdentityKeyPair
}

func loadState(path string) (*peerState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s peerState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if s.identity, err = key.ParseIdentityKeyPair(s.IdentityPair); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &s, nil
}

// save writes the state atomically: a crash leaves the old file or the new
// one, never a mix.
func (s *peerState) save(path string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hushpeer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func id(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// The peerState is the session.Store of the peer.
var _ session.Store = (*peerState)(nil)

var errNotFound = errors.New("not found")

func (s *peerState) IdentityKeyPair(context.Context) (*key.IdentityKeyPair, error) {
	return s.identity, nil
}

func (s *peerState) LocalRegistrationID(context.Context) (key.RegistrationID, error) {
	return key.RegistrationID(s.RegistrationID), nil
}

func (s *peerState) IsTrustedIdentity(_ context.Context, a session.Address, k key.IdentityKey, _ session.Direction) (bool, error) {
	known, ok := s.Identities[a.String()]
	return !ok || string(known) == string(k.Bytes()), nil
}

func (s *peerState) SaveIdentity(_ context.Context, a session.Address, k key.IdentityKey) (bool, error) {
	known, ok := s.Identities[a.String()]
	s.Identities[a.String()] = k.Bytes()
	return ok && string(known) != string(k.Bytes()), nil
}

func (s *peerState) Identity(_ context.Context, a session.Address) (*key.IdentityKey, error) {
	b, ok := s.Identities[a.String()]
	if !ok {
		return nil, nil
	}
	k, err := key.ParseIdentityKey(b)
	return &k, err
}

func (s *peerState) LoadSession(_ context.Context, a session.Address) (*session.Record, error) {
	b, ok := s.Sessions[a.String()]
	if !ok {
		return nil, nil
	}
	return session.ParseRecord(b)
}

func (s *peerState) StoreSession(_ context.Context, a session.Address, r *session.Record) error {
	b, err := r.MarshalBinary()
	s.Sessions[a.String()] = b
	return err
}

func (s *peerState) LoadPreKey(_ context.Context, n key.PreKeyID) (*key.PreKey, error) {
	b, ok := s.PreKeys[id(uint32(n))]
	if !ok {
		return nil, fmt.Errorf("prekey %d: %w", n, errNotFound)
	}
	return key.ParsePreKey(b)
}

func (s *peerState) RemovePreKey(_ context.Context, n key.PreKeyID) error {
	delete(s.PreKeys, id(uint32(n)))
	return nil
}

func (s *peerState) LoadSignedPreKey(_ context.Context, n key.SignedPreKeyID) (*key.SignedPreKey, error) {
	b, ok := s.SignedPreKeys[id(uint32(n))]
	if !ok {
		return nil, fmt.Errorf("signed prekey %d: %w", n, errNotFound)
	}
	return key.ParseSignedPreKey(b)
}

func (s *peerState) LoadKyberPreKey(_ context.Context, n key.KyberPreKeyID) (*key.KyberPreKey, error) {
	b, ok := s.KyberPreKeys[id(uint32(n))]
	if !ok {
		return nil, fmt.Errorf("Kyber prekey %d: %w", n, errNotFound)
	}
	return key.ParseKyberPreKey(b)
}

// MarkKyberPreKeyUsed keeps the key (the peer's only Kyber key acts as a
// last-resort key, as in the libsignal peers) and refuses a replayed use.
func (s *peerState) MarkKyberPreKeyUsed(_ context.Context, n key.KyberPreKeyID, spk key.SignedPreKeyID, base key.ECPublic) error {
	use := id(uint32(spk)) + "/" + fmt.Sprintf("%x", base.Bytes())
	for _, u := range s.KyberUsed[id(uint32(n))] {
		if u == use {
			return errors.New("Kyber prekey reused with the same base key")
		}
	}
	s.KyberUsed[id(uint32(n))] = append(s.KyberUsed[id(uint32(n))], use)
	return nil
}

// The peerState is the senderkey.Store of the peer too: records keyed
// "name.device/uuid", as the libsignal peers key theirs.
var _ senderkey.Store = (*peerState)(nil)

func senderKeyName(a session.Address, id senderkey.DistributionID) string {
	return a.String() + "/" + id.String()
}

func (s *peerState) LoadSenderKey(_ context.Context, a session.Address, id senderkey.DistributionID) (*senderkey.Record, error) {
	b, ok := s.SenderKeys[senderKeyName(a, id)]
	if !ok {
		return nil, nil
	}
	return senderkey.ParseRecord(b)
}

func (s *peerState) StoreSenderKey(_ context.Context, a session.Address, id senderkey.DistributionID, r *senderkey.Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	if s.SenderKeys == nil { // state files from before groups have none
		s.SenderKeys = map[string][]byte{}
	}
	s.SenderKeys[senderKeyName(a, id)] = b
	return nil
}
