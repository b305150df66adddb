package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// This file: the session.Store implementation of Tx, and this device's
// prekeys.

var _ session.Store = (*Tx)(nil)

func sessionRow(a session.Address) string { return fmt.Sprintf("%s.%d", a.Name, a.Device) }

func (t *Tx) IdentityKeyPair(context.Context) (*key.IdentityKeyPair, error) {
	if t.newIdentity != nil {
		return t.newIdentity, nil
	}
	if t.s.identity == nil {
		return nil, errors.New("store: no identity (not registered)")
	}
	return t.s.identity, nil
}

func (t *Tx) LocalRegistrationID(context.Context) (key.RegistrationID, error) {
	if t.newAccount != nil {
		return t.newAccount.RegistrationID, nil
	}
	if t.s.account == nil {
		return 0, errors.New("store: not registered")
	}
	return t.s.account.RegistrationID, nil
}

// IsTrustedIdentity decides trust per person (the address's name), by one
// rule for both directions: a key speaks for the person only if it is
// their current key (today one secret identity at a time; with several
// devices, one of the keys their directory entry and the user's
// verification say are current), or a key never seen before, which
// SaveIdentity then makes current with a notice, clearing "verified".
// A key the person had before and replaced is never trusted again, in
// either direction: an old device, a restored copy of their home or a
// withheld message from before the change cannot speak as them.
//
// Receiving is otherwise allowed, as Signal does: SaveIdentity records a
// change and the conversation shows it first. Sending is allowed to the
// current key unless a change awaits the user's confirmation; to a new key
// only if the person was not verified.
func (t *Tx) IsTrustedIdentity(ctx context.Context, addr session.Address, k key.IdentityKey, dir session.Direction) (bool, error) {
	c, err := t.Contact(ctx, addr.Name)
	if errors.Is(err, ErrNotFound) || (err == nil && c.Identity == nil) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	if k == *c.Identity {
		return dir == session.Receiving || !c.NeedsConfirm, nil
	}
	old, err := t.isOldIdentity(ctx, addr.Name, k)
	if err != nil || old {
		return false, err
	}
	return dir == session.Receiving || (!c.Verified && !c.NeedsConfirm), nil
}

// ErrReplacedIdentity refuses a key the person had before: once replaced,
// a key is never accepted for them again.
var ErrReplacedIdentity = errors.New("store: that identity key was replaced; it is not accepted again")

func (t *q) isOldIdentity(ctx context.Context, name string, k key.IdentityKey) (bool, error) {
	var one int
	err := t.x.QueryRowContext(ctx, "SELECT 1 FROM old_identities WHERE name = ? AND identity = ?", name, k.Bytes()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SaveIdentity records k as the person's identity. A key the person had
// before is refused (IsTrustedIdentity refuses it first). A new key
// replaces the current one, clears "verified" (and, if it was set,
// makes sending wait for a confirmation), and puts a notice in the
// conversation, all in this transaction.
func (t *Tx) SaveIdentity(ctx context.Context, addr session.Address, k key.IdentityKey) (bool, error) {
	c, err := t.Contact(ctx, addr.Name)
	if errors.Is(err, ErrNotFound) {
		_, err := t.x.ExecContext(ctx, "INSERT INTO contacts (name, device, identity, updated) VALUES (?, ?, ?, ?)",
			addr.Name, uint32(addr.Device), k.Bytes(), t.Now.UnixMilli())
		return false, err
	} else if err != nil {
		return false, err
	}
	if c.Identity == nil || k == *c.Identity {
		if c.Identity == nil || c.Device != uint32(addr.Device) {
			_, err := t.x.ExecContext(ctx, "UPDATE contacts SET identity = ?, device = ?, updated = ? WHERE name = ?",
				k.Bytes(), uint32(addr.Device), t.Now.UnixMilli(), addr.Name)
			return false, err
		}
		return false, nil
	}
	if old, err := t.isOldIdentity(ctx, addr.Name, k); err != nil {
		return false, err
	} else if old {
		return false, ErrReplacedIdentity
	}
	return true, t.replaceIdentity(ctx, c, k, uint32(addr.Device), false, false)
}

// replaceIdentity makes k the person's current key. confirmed says that the
// user approved it (trust or verify), verified that they verified it.
func (t *Tx) replaceIdentity(ctx context.Context, c *Contact, k key.IdentityKey, device uint32, confirmed, verified bool) error {
	if c.Identity != nil && *c.Identity != k {
		if _, err := t.x.ExecContext(ctx, "INSERT OR IGNORE INTO old_identities (name, identity) VALUES (?, ?)", c.Name, c.Identity.Bytes()); err != nil {
			return err
		}
	}
	_, err := t.x.ExecContext(ctx, "DELETE FROM old_identities WHERE name = ? AND identity = ?", c.Name, k.Bytes())
	if err != nil {
		return err
	}
	needsConfirm := !confirmed && (c.Verified || c.NeedsConfirm)
	_, err = t.x.ExecContext(ctx, `UPDATE contacts SET identity = ?, device = ?, verified = ?, needs_confirm = ?,
		pending_identity = NULL, pending_device = NULL, updated = ? WHERE name = ?`,
		k.Bytes(), device, verified, needsConfirm, t.Now.UnixMilli(), c.Name)
	if err != nil {
		return err
	}
	if c.Identity != nil && *c.Identity != k {
		t.Changes = append(t.Changes, IdentityChange{Name: c.Name, Old: *c.Identity, New: k, WasVerified: needsConfirm})
		text := fmt.Sprintf("%s's safety number changed: they have a new secret device or reinstalled.", c.Name)
		if needsConfirm {
			// Said without the commands of any one front end.
			text += fmt.Sprintf(" You had verified %s: sending waits until you compare the new safety number, then verify or trust it.", c.Name)
		}
		if _, err := t.AddNotice(ctx, c.Name, text); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tx) Identity(ctx context.Context, addr session.Address) (*key.IdentityKey, error) {
	c, err := t.Contact(ctx, addr.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return c.Identity, nil
}

// The Tx methods below are the secret key space's; Keys(OrdinarySpace)
// and Ordinary give the ordinary one.

func (t *q) LoadSession(ctx context.Context, addr session.Address) (*session.Record, error) {
	return t.Keys(SecretSpace).LoadSession(ctx, addr)
}

func (t *Tx) StoreSession(ctx context.Context, addr session.Address, r *session.Record) error {
	return t.Keys(SecretSpace).StoreSession(ctx, addr, r)
}

// ArchiveAllSessions archives the current session of every peer (after
// this device's secret identity changed).
func (t *Tx) ArchiveAllSessions(ctx context.Context) error {
	return t.Keys(SecretSpace).ArchiveAllSessions(ctx)
}

func (t *Tx) LoadPreKey(ctx context.Context, id key.PreKeyID) (*key.PreKey, error) {
	return t.Keys(SecretSpace).LoadPreKey(ctx, id)
}

func (t *Tx) RemovePreKey(ctx context.Context, id key.PreKeyID) error {
	return t.Keys(SecretSpace).RemovePreKey(ctx, id)
}

func (t *Tx) LoadSignedPreKey(ctx context.Context, id key.SignedPreKeyID) (*key.SignedPreKey, error) {
	return t.Keys(SecretSpace).LoadSignedPreKey(ctx, id)
}

func (t *Tx) LoadKyberPreKey(ctx context.Context, id key.KyberPreKeyID) (*key.KyberPreKey, error) {
	return t.Keys(SecretSpace).LoadKyberPreKey(ctx, id)
}

func (t *Tx) MarkKyberPreKeyUsed(ctx context.Context, id key.KyberPreKeyID, spk key.SignedPreKeyID, base key.ECPublic) error {
	return t.Keys(SecretSpace).MarkKyberPreKeyUsed(ctx, id, spk, base)
}

// StorePreKeys adds one-time EC prekeys (secret space).
func (t *Tx) StorePreKeys(ctx context.Context, ks []*key.PreKey) error {
	return t.Keys(SecretSpace).StorePreKeys(ctx, ks)
}

// StoreSignedPreKey adds a signed prekey (secret space).
func (t *Tx) StoreSignedPreKey(ctx context.Context, k *key.SignedPreKey) error {
	return t.Keys(SecretSpace).StoreSignedPreKey(ctx, k)
}

// StoreKyberPreKeys adds Kyber prekeys, one-time or last-resort (secret
// space).
func (t *Tx) StoreKyberPreKeys(ctx context.Context, ks []*key.KyberPreKey, lastResort bool) error {
	return t.Keys(SecretSpace).StoreKyberPreKeys(ctx, ks, lastResort)
}

// RetirePreKeys is Keys.RetirePreKeys in the secret space.
func (t *Tx) RetirePreKeys(ctx context.Context, kind int, before time.Time) error {
	return t.Keys(SecretSpace).RetirePreKeys(ctx, kind, before)
}

// DeleteRetired is Keys.DeleteRetired in the secret space.
func (t *Tx) DeleteRetired(ctx context.Context, cutoff time.Time) error {
	return t.Keys(SecretSpace).DeleteRetired(ctx, cutoff)
}

// DeletePreKeysBefore is Keys.DeletePreKeysBefore in the secret space.
func (t *Tx) DeletePreKeysBefore(ctx context.Context, before time.Time) error {
	return t.Keys(SecretSpace).DeletePreKeysBefore(ctx, before)
}

// PreKeyCounts is Keys.PreKeyCounts in the secret space.
func (t *q) PreKeyCounts(ctx context.Context) (map[int][2]int, error) {
	return t.Keys(SecretSpace).PreKeyCounts(ctx)
}

// KeyIDs is Keys.KeyIDs in the secret space.
func (t *q) KeyIDs(ctx context.Context, kind int) ([]uint32, error) {
	return t.Keys(SecretSpace).KeyIDs(ctx, kind)
}
