package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/pqxdh"
	"github.com/hushmsg/hush/ratchet"
	"github.com/hushmsg/hush/wire"
)

// Cipher starts sessions and encrypts and decrypts messages for one local
// device, keeping all state in its [Store] (libsignal session.rs and
// session_management.rs). A Cipher holds no state of its own; calls for
// the same peer must not run concurrently.
type Cipher struct {
	Store Store
	Local Address // this device, for the addresses binding and self sessions

	// PQRatchet chooses SPQR for new sessions; the zero value requires it,
	// as libsignal >= 0.92 does.
	PQRatchet PQRatchetMode
	// AllowX3DH lets the Cipher start a version-3 session from a bundle
	// without a Kyber prekey, and answer a version-3 PreKey message. Off by
	// default: X3DH has no post-quantum protection. It exists to talk to
	// peers that predate PQXDH.
	AllowX3DH bool

	Rand io.Reader        // nil means crypto/rand
	Now  func() time.Time // nil means time.Now
}

// PQRatchetMode says whether new sessions run SPQR.
type PQRatchetMode int

const (
	// PQRequired runs SPQR and refuses a peer that does not (libsignal >= 0.92).
	PQRequired PQRatchetMode = iota
	// PQOffered runs SPQR but falls back to none if the peer sends none
	// (libsignal 0.74 to 0.91).
	PQOffered
	// PQOff runs no SPQR (libsignal before 0.74).
	PQOff
)

// Message types of a [Ciphertext].
const (
	TypeSignal = wire.TypeSignal // a SignalMessage
	TypePreKey = wire.TypePreKey // a PreKeySignalMessage
)

// Ciphertext is an encrypted message and its type.
type Ciphertext struct {
	Type int
	Body []byte
}

// ErrNoKyber is returned by ProcessBundle for a bundle without a Kyber
// prekey when X3DH is not allowed.
var ErrNoKyber = errors.New("session: bundle has no Kyber prekey (X3DH is not allowed)")

func (c *Cipher) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Cipher) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cipher) checkTrust(ctx context.Context, addr Address, k key.IdentityKey, dir Direction) error {
	ok, err := c.Store.IsTrustedIdentity(ctx, addr, k, dir)
	if err != nil {
		return err
	}
	if !ok {
		known, err := c.Store.Identity(ctx, addr)
		if err != nil {
			return err
		}
		return &UntrustedIdentityError{Address: addr, Known: known, Received: k}
	}
	return nil
}

// ProcessBundle starts a session with remote from its prekey bundle, as the
// initiator (PQXDH, or X3DH if allowed and the bundle has no Kyber key). The
// new session replaces any current one, which is archived. Until the peer
// answers, every message to it is a PreKey message.
func (c *Cipher) ProcessBundle(ctx context.Context, remote Address, b *Bundle) error {
	if err := c.checkTrust(ctx, remote, b.IdentityKey, Sending); err != nil {
		return err
	}
	if err := b.Verify(); err != nil {
		return err
	}
	if b.KyberPreKey == nil && !c.AllowX3DH {
		return ErrNoKyber
	}
	ours, err := c.Store.IdentityKeyPair(ctx)
	if err != nil {
		return err
	}
	localReg, err := c.Store.LocalRegistrationID(ctx)
	if err != nil {
		return err
	}
	record, err := c.Store.LoadSession(ctx, remote)
	if err != nil {
		return err
	}
	if record == nil {
		record = NewRecord()
	}
	r := c.rand()
	base, err := key.GenerateECKeyPair(r)
	if err != nil {
		return err
	}
	params := &pqxdh.InitiatorParams{
		OurIdentity:        ours,
		OurBaseKey:         base,
		TheirIdentity:      b.IdentityKey,
		TheirSignedPreKey:  b.SignedPreKey,
		TheirOneTimePreKey: b.PreKey,
		TheirKyberPreKey:   b.KyberPreKey,
	}
	keys, kyberCT, err := pqxdh.Initiate(params, r)
	if err != nil {
		return err
	}
	// Alice's first sending chain (libsignal initialize_alice_session): a
	// fresh ratchet key against Bob's signed prekey, which is also his first
	// ratchet key; the agreement's chain key is the receiving chain for it.
	sending, err := key.GenerateECKeyPair(r)
	if err != nil {
		return err
	}
	rk := ratchet.RootKey(keys.RootKey)
	root, sendCK, err := rk.CreateChain(b.SignedPreKey, &sending.Private)
	if err != nil {
		return err
	}
	version := uint8(params.Version())
	s := &State{
		Version:        version,
		LocalIdentity:  ours.Public,
		RemoteIdentity: b.IdentityKey,
		Ratchet: ratchet.State{
			Root:      root,
			Sender:    &ratchet.SenderChain{RatchetKey: sending, ChainKey: sendCK},
			Receivers: []ratchet.ReceiverChain{{RatchetKey: b.SignedPreKey, ChainKey: ratchet.ChainKey{Key: keys.ChainKey}}},
		},
		Pending: &PendingPreKey{
			PreKeyID:        b.PreKeyID,
			SignedPreKeyID:  b.SignedPreKeyID,
			BaseKey:         base.Public,
			Created:         c.now().Truncate(time.Second),
			KyberPreKeyID:   b.KyberPreKeyID,
			KyberCiphertext: kyberCT,
		},
		LocalRegistrationID:  localReg,
		RemoteRegistrationID: b.RegistrationID,
		AliceBaseKey:         base.Public,
	}
	self := sameAccount(c.Local, ours.Public, remote, b.IdentityKey)
	if s.PQ, err = c.newPQState(version, true, keys.PQRKey[:], self); err != nil {
		return err
	}
	if _, err := c.Store.SaveIdentity(ctx, remote, b.IdentityKey); err != nil {
		return err
	}
	if err := record.promote(s); err != nil {
		return err
	}
	return c.Store.StoreSession(ctx, remote, record)
}

// Encrypt encrypts plaintext for remote with the current session.
func (c *Cipher) Encrypt(ctx context.Context, remote Address, plaintext []byte) (*Ciphertext, error) {
	record, err := c.Store.LoadSession(ctx, remote)
	if err != nil {
		return nil, err
	}
	if record == nil || record.current == nil {
		return nil, ErrNoSession
	}
	s := record.current.clone()
	if s.Pending != nil && s.Pending.Created.Add(MaxUnacknowledgedAge).Before(c.now()) {
		return nil, fmt.Errorf("%w: initiation unanswered for 30 days", ErrNoSession)
	}
	pqNext, pqMsg, pqKey, err := pqSend(s.PQ, c.rand())
	if err != nil {
		return nil, err
	}
	ratchetKey, counter, prev, seed, err := s.Ratchet.NextSend()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	mk := ratchet.DeriveMessageKeys(&seed, pqKey)
	m := wire.SignalMessage{
		Version:         s.Version,
		RatchetKey:      ratchetKey,
		Counter:         counter,
		PreviousCounter: prev,
		Ciphertext:      mk.Seal(plaintext),
		PQRatchet:       pqMsg,
	}
	if s.Pending != nil {
		m.Addresses = addressesField(c.Local, remote)
	}
	var out *Ciphertext
	if p := s.Pending; p != nil {
		// The SignalMessage is encoded inside the PreKey message's buffer
		// (libsignal: SignalMessage::new, then PreKeySignalMessage::new).
		pm, err := wire.NewPreKeySignalMessageAround(wire.PreKeySignalMessage{
			Version:         s.Version,
			RegistrationID:  s.LocalRegistrationID,
			PreKeyID:        p.PreKeyID,
			SignedPreKeyID:  p.SignedPreKeyID,
			KyberPreKeyID:   p.KyberPreKeyID,
			KyberCiphertext: p.KyberCiphertext,
			BaseKey:         p.BaseKey,
			IdentityKey:     s.LocalIdentity,
		}, m, mk.MACKey[:], s.LocalIdentity, s.RemoteIdentity)
		if err != nil {
			return nil, err
		}
		out = &Ciphertext{Type: TypePreKey, Body: pm.Bytes()}
	} else {
		sm, err := wire.NewSignalMessage(m, mk.MACKey[:], s.LocalIdentity, s.RemoteIdentity)
		if err != nil {
			return nil, err
		}
		out = &Ciphertext{Type: TypeSignal, Body: sm.Bytes()}
	}
	if err := c.checkTrust(ctx, remote, s.RemoteIdentity, Sending); err != nil {
		return nil, err
	}
	if _, err := c.Store.SaveIdentity(ctx, remote, s.RemoteIdentity); err != nil {
		return nil, err
	}
	s.PQ = pqNext
	record.current = s
	if err := c.Store.StoreSession(ctx, remote, record); err != nil {
		return nil, err
	}
	return out, nil
}

// Decrypt decrypts a message of either type from remote. Every failure to
// decrypt is an error matching [ErrDecrypt] and leaves the store as it
// was; an identity that is not trusted is an [*UntrustedIdentityError].
func (c *Cipher) Decrypt(ctx context.Context, remote Address, msgType int, body []byte) ([]byte, error) {
	switch msgType {
	case TypeSignal:
		m, err := wire.ParseSignalMessage(body)
		if err != nil {
			return nil, failDecrypt(err)
		}
		return c.decryptSignal(ctx, remote, m)
	case TypePreKey:
		m, err := wire.ParsePreKeySignalMessage(body)
		if err != nil {
			return nil, failDecrypt(err)
		}
		return c.decryptPreKey(ctx, remote, m)
	}
	return nil, fmt.Errorf("session: unknown message type %d", msgType)
}

func (c *Cipher) decryptSignal(ctx context.Context, remote Address, m *wire.SignalMessage) ([]byte, error) {
	record, err := c.Store.LoadSession(ctx, remote)
	if err != nil {
		return nil, err
	}
	if record == nil {
		return nil, failDecrypt(ErrNoSession)
	}
	pt, err := c.decryptFromRecord(record, remote, m, TypeSignal)
	if err != nil {
		return nil, err
	}
	their := record.current.RemoteIdentity
	if err := c.checkTrust(ctx, remote, their, Receiving); err != nil {
		return nil, err
	}
	if _, err := c.Store.SaveIdentity(ctx, remote, their); err != nil {
		return nil, err
	}
	if err := c.Store.StoreSession(ctx, remote, record); err != nil {
		return nil, err
	}
	return pt, nil
}

// errX3DH is the cause of refusing a version-3 PreKey message.
var errX3DH = errors.New("session: X3DH is not allowed")

func (c *Cipher) decryptPreKey(ctx context.Context, remote Address, m *wire.PreKeySignalMessage) ([]byte, error) {
	record, err := c.Store.LoadSession(ctx, remote)
	if err != nil {
		return nil, err
	}
	if record == nil {
		record = NewRecord()
	}
	if err := c.checkTrust(ctx, remote, m.IdentityKey, Receiving); err != nil {
		return nil, err
	}
	used, err := c.processPreKey(ctx, remote, record, m)
	if err != nil {
		return nil, err
	}
	pt, err := c.decryptFromRecord(record, remote, m.Message, TypePreKey)
	if err != nil {
		return nil, err
	}
	// The message authenticated: now, and only now, change the store.
	if _, err := c.Store.SaveIdentity(ctx, remote, m.IdentityKey); err != nil {
		return nil, err
	}
	if used {
		if m.KyberPreKeyID != nil {
			if err := c.Store.MarkKyberPreKeyUsed(ctx, *m.KyberPreKeyID, m.SignedPreKeyID, m.BaseKey); err != nil {
				return nil, err
			}
		}
		if m.PreKeyID != nil {
			if err := c.Store.RemovePreKey(ctx, *m.PreKeyID); err != nil {
				return nil, err
			}
		}
	}
	if err := c.Store.StoreSession(ctx, remote, record); err != nil {
		return nil, err
	}
	return pt, nil
}

// processPreKey makes the session a PreKey message asks for current in
// record (libsignal process_prekey_impl): the one it already made, if this
// is a repeat, or a new one from our prekeys. It reports whether prekeys
// were used. It changes only record, not the store.
func (c *Cipher) processPreKey(ctx context.Context, remote Address, record *Record, m *wire.PreKeySignalMessage) (bool, error) {
	i, s, err := record.findByBaseKey(m.Version, m.BaseKey)
	if err != nil {
		return false, err
	}
	switch {
	case i == -1:
		return false, nil
	case i >= 0:
		return false, record.promoteArchived(i, s)
	}
	if m.Version == pqxdh.VersionX3DH && !c.AllowX3DH {
		return false, failDecrypt(errX3DH)
	}
	spk, err := c.Store.LoadSignedPreKey(ctx, m.SignedPreKeyID)
	if err != nil {
		return false, failDecrypt(err)
	}
	ours, err := c.Store.IdentityKeyPair(ctx)
	if err != nil {
		return false, err
	}
	params := &pqxdh.ResponderParams{
		OurIdentity:     ours,
		OurSignedPreKey: spk.KeyPair,
		TheirIdentity:   m.IdentityKey,
		TheirBaseKey:    m.BaseKey,
	}
	if m.KyberPreKeyID != nil {
		kpk, err := c.Store.LoadKyberPreKey(ctx, *m.KyberPreKeyID)
		if err != nil {
			return false, failDecrypt(err)
		}
		params.OurKyberPreKey = &kpk.KeyPair
		params.TheirKyberCiphertext = m.KyberCiphertext
	}
	if m.PreKeyID != nil {
		opk, err := c.Store.LoadPreKey(ctx, *m.PreKeyID)
		if err != nil {
			return false, failDecrypt(err)
		}
		params.OurOneTimePreKey = &opk.KeyPair
	}
	keys, err := pqxdh.Accept(params)
	if err != nil {
		return false, failDecrypt(err)
	}
	localReg, err := c.Store.LocalRegistrationID(ctx)
	if err != nil {
		return false, err
	}
	// Bob's session (libsignal initialize_bob_session): his signed prekey is
	// his first ratchet key, with the agreement's chain key.
	ns := &State{
		Version:        m.Version,
		LocalIdentity:  ours.Public,
		RemoteIdentity: m.IdentityKey,
		Ratchet: ratchet.State{
			Root:   ratchet.RootKey(keys.RootKey),
			Sender: &ratchet.SenderChain{RatchetKey: spk.KeyPair, ChainKey: ratchet.ChainKey{Key: keys.ChainKey}},
		},
		LocalRegistrationID:  localReg,
		RemoteRegistrationID: m.RegistrationID,
		AliceBaseKey:         m.BaseKey,
	}
	self := sameAccount(c.Local, ours.Public, remote, m.IdentityKey)
	if ns.PQ, err = c.newPQState(m.Version, false, keys.PQRKey[:], self); err != nil {
		return false, err
	}
	return true, record.promote(ns)
}

// decryptFromRecord tries the current session, then the archived ones, and
// makes the one that decrypts current (libsignal try_decrypt_from_record).
func (c *Cipher) decryptFromRecord(record *Record, remote Address, m *wire.SignalMessage, msgType int) ([]byte, error) {
	var last error = ErrNoSession
	if cur := record.current; cur != nil {
		if cur.Version != m.Version {
			last = errVersion
		} else {
			s := cur.clone()
			pt, err := c.decryptWithState(s, remote, m)
			if err == nil {
				record.current = s
				return pt, nil
			}
			if errors.Is(err, ErrDuplicate) || msgType == TypePreKey {
				return nil, failDecrypt(err)
			}
			last = err
		}
	}
	for i := range record.previous {
		s, err := record.archived(i)
		if err != nil || s.Version != m.Version {
			continue
		}
		pt, err := c.decryptWithState(s, remote, m)
		if err == nil {
			if err := record.promoteArchived(i, s); err != nil {
				return nil, err
			}
			return pt, nil
		}
		if errors.Is(err, ErrDuplicate) {
			return nil, failDecrypt(err)
		}
		last = err
	}
	return nil, failDecrypt(last)
}

var (
	errVersion   = errors.New("session: message version differs from the session's")
	errMAC       = errors.New("session: bad MAC")
	errAddresses = errors.New("session: message addressed to another device")
)

// decryptWithState runs the triple ratchet's receive on s, which the caller
// owns and keeps only on success (libsignal TripleRatchet::decrypt): DR
// message key, then SPQR key, then MAC, then AES-CBC.
func (c *Cipher) decryptWithState(s *State, remote Address, m *wire.SignalMessage) ([]byte, error) {
	maxJump := uint32(ratchet.MaxForwardJumps)
	if sameAccount(c.Local, s.LocalIdentity, remote, s.RemoteIdentity) {
		maxJump = math.MaxUint32
	}
	rcv, err := s.Ratchet.Receive(m.RatchetKey, m.Counter, maxJump, c.rand())
	if err != nil {
		if errors.Is(err, ratchet.ErrDuplicate) {
			return nil, ErrDuplicate
		}
		return nil, err
	}
	pqNext, pqKey, err := pqRecv(s.PQ, m.PQRatchet)
	if err != nil {
		return nil, err
	}
	mk, err := rcv.Keys(pqKey)
	if err != nil {
		return nil, err
	}
	if !m.VerifyMAC(mk.MACKey[:], s.RemoteIdentity, s.LocalIdentity) {
		return nil, errMAC
	}
	if m.Addresses != nil {
		want := addressesField(remote, c.Local)
		if want == nil || subtle.ConstantTimeCompare(want, m.Addresses) != 1 {
			return nil, errAddresses
		}
	}
	pt, err := mk.Open(m.Ciphertext)
	if err != nil {
		return nil, err
	}
	s.PQ = pqNext
	s.Pending = nil
	return pt, nil
}
