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
			text += fmt.Sprintf(" You had verified %s: check the new number (hush safety-number %s), then hush verify %s or hush trust %s before sending.", c.Name, c.Name, c.Name, c.Name)
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

func (t *q) LoadSession(ctx context.Context, addr session.Address) (*session.Record, error) {
	var b []byte
	err := t.x.QueryRowContext(ctx, "SELECT record FROM sessions WHERE name = ? AND device = ?", addr.Name, uint32(addr.Device)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	pt, err := t.s.seal.open(b, "sessions", "record", sessionRow(addr))
	if err != nil {
		return nil, err
	}
	return session.ParseRecord(pt)
}

func (t *Tx) StoreSession(ctx context.Context, addr session.Address, r *session.Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = t.x.ExecContext(ctx, `INSERT INTO sessions (name, device, record) VALUES (?, ?, ?)
		ON CONFLICT (name, device) DO UPDATE SET record = excluded.record`,
		addr.Name, uint32(addr.Device), t.s.seal.seal(b, "sessions", "record", sessionRow(addr)))
	return err
}

// ArchiveAllSessions archives the current session of every peer (after
// this device's identity changed).
func (t *Tx) ArchiveAllSessions(ctx context.Context) error {
	rows, err := t.x.QueryContext(ctx, "SELECT name, device FROM sessions")
	if err != nil {
		return err
	}
	var addrs []session.Address
	for rows.Next() {
		var a session.Address
		var d uint32
		if err := rows.Scan(&a.Name, &d); err != nil {
			rows.Close()
			return err
		}
		a.Device = key.DeviceID(d)
		addrs = append(addrs, a)
	}
	rows.Close()
	for _, a := range addrs {
		r, err := t.LoadSession(ctx, a)
		if err != nil {
			return err
		}
		if err := r.ArchiveCurrent(); err != nil {
			return err
		}
		if err := t.StoreSession(ctx, a, r); err != nil {
			return err
		}
	}
	return nil
}

// Prekeys.

func (t *q) loadSealed(ctx context.Context, table string, id uint32) ([]byte, error) {
	var b []byte
	err := t.x.QueryRowContext(ctx, "SELECT record FROM "+table+" WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s %d", ErrNotFound, table, id)
	} else if err != nil {
		return nil, err
	}
	return t.s.seal.open(b, table, "record", rowID(int64(id)))
}

func (t *Tx) LoadPreKey(ctx context.Context, id key.PreKeyID) (*key.PreKey, error) {
	b, err := t.loadSealed(ctx, "prekeys", uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParsePreKey(b)
}

func (t *Tx) RemovePreKey(ctx context.Context, id key.PreKeyID) error {
	_, err := t.x.ExecContext(ctx, "DELETE FROM prekeys WHERE id = ?", uint32(id))
	return err
}

func (t *Tx) LoadSignedPreKey(ctx context.Context, id key.SignedPreKeyID) (*key.SignedPreKey, error) {
	b, err := t.loadSealed(ctx, "signed_prekeys", uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParseSignedPreKey(b)
}

func (t *Tx) LoadKyberPreKey(ctx context.Context, id key.KyberPreKeyID) (*key.KyberPreKey, error) {
	b, err := t.loadSealed(ctx, "kyber_prekeys", uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParseKyberPreKey(b)
}

// ErrKyberReuse is returned when a last-resort Kyber prekey is used twice
// with the same signed prekey and base key (a replayed PreKey message).
var ErrKyberReuse = errors.New("store: Kyber prekey reused")

func (t *Tx) MarkKyberPreKeyUsed(ctx context.Context, id key.KyberPreKeyID, spk key.SignedPreKeyID, base key.ECPublic) error {
	var lastResort bool
	err := t.x.QueryRowContext(ctx, "SELECT last_resort FROM kyber_prekeys WHERE id = ?", uint32(id)).Scan(&lastResort)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: Kyber prekey %d", ErrNotFound, id)
	} else if err != nil {
		return err
	}
	if !lastResort {
		_, err := t.x.ExecContext(ctx, "DELETE FROM kyber_prekeys WHERE id = ?", uint32(id))
		return err
	}
	res, err := t.x.ExecContext(ctx, "INSERT OR IGNORE INTO kyber_used (kyber_id, signed_id, base_key) VALUES (?, ?, ?)",
		uint32(id), uint32(spk), base.Bytes())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrKyberReuse
	}
	return nil
}

// StorePreKeys adds one-time EC prekeys.
func (t *Tx) StorePreKeys(ctx context.Context, ks []*key.PreKey) error {
	for _, k := range ks {
		b, err := k.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := t.x.ExecContext(ctx, "INSERT INTO prekeys (id, record, created) VALUES (?, ?, ?)",
			uint32(k.ID), t.s.seal.seal(b, "prekeys", "record", rowID(int64(k.ID))), t.Now.UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}

// StoreSignedPreKey adds a signed prekey.
func (t *Tx) StoreSignedPreKey(ctx context.Context, k *key.SignedPreKey) error {
	b, err := k.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = t.x.ExecContext(ctx, "INSERT INTO signed_prekeys (id, record, created) VALUES (?, ?, ?)",
		uint32(k.ID), t.s.seal.seal(b, "signed_prekeys", "record", rowID(int64(k.ID))), t.Now.UnixMilli())
	return err
}

// StoreKyberPreKeys adds Kyber prekeys, one-time or last-resort.
func (t *Tx) StoreKyberPreKeys(ctx context.Context, ks []*key.KyberPreKey, lastResort bool) error {
	for _, k := range ks {
		b, err := k.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := t.x.ExecContext(ctx, "INSERT INTO kyber_prekeys (id, record, last_resort, created) VALUES (?, ?, ?, ?)",
			uint32(k.ID), t.s.seal.seal(b, "kyber_prekeys", "record", rowID(int64(k.ID))), lastResort, t.Now.UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}

// Prekey kinds, for RetirePreKeys.
const (
	OneTimeEC = iota
	OneTimeKyber
	Signed
	LastResortKyber
)

func kindWhere(kind int) (table, where string) {
	switch kind {
	case OneTimeEC:
		return "prekeys", "1"
	case OneTimeKyber:
		return "kyber_prekeys", "last_resort = 0"
	case Signed:
		return "signed_prekeys", "1"
	default:
		return "kyber_prekeys", "last_resort = 1"
	}
}

// RetirePreKeys marks the keys of a kind made before the given time as
// replaced on the server. Retired keys are kept for messages in flight
// until DeleteRetired.
func (t *Tx) RetirePreKeys(ctx context.Context, kind int, before time.Time) error {
	table, where := kindWhere(kind)
	_, err := t.x.ExecContext(ctx, "UPDATE "+table+" SET retired = ? WHERE retired IS NULL AND created < ? AND "+where,
		t.Now.UnixMilli(), before.UnixMilli())
	return err
}

// DeleteRetired deletes the prekeys retired before cutoff, and the
// last-resort use records of deleted Kyber keys.
func (t *Tx) DeleteRetired(ctx context.Context, cutoff time.Time) error {
	for _, table := range []string{"prekeys", "signed_prekeys", "kyber_prekeys"} {
		if _, err := t.x.ExecContext(ctx, "DELETE FROM "+table+" WHERE retired IS NOT NULL AND retired < ?", cutoff.UnixMilli()); err != nil {
			return err
		}
	}
	_, err := t.x.ExecContext(ctx, "DELETE FROM kyber_used WHERE kyber_id NOT IN (SELECT id FROM kyber_prekeys)")
	return err
}

// DeletePreKeysBefore removes every prekey made before the given time
// (after this device's identity changed: keys of the old one are useless).
func (t *Tx) DeletePreKeysBefore(ctx context.Context, before time.Time) error {
	for _, table := range []string{"prekeys", "signed_prekeys", "kyber_prekeys"} {
		if _, err := t.x.ExecContext(ctx, "DELETE FROM "+table+" WHERE created < ?", before.UnixMilli()); err != nil {
			return err
		}
	}
	_, err := t.x.ExecContext(ctx, "DELETE FROM kyber_used WHERE kyber_id NOT IN (SELECT id FROM kyber_prekeys)")
	return err
}

// PreKeyCounts tells how many keys of each kind are held, current and
// retired.
func (t *q) PreKeyCounts(ctx context.Context) (map[int][2]int, error) {
	out := make(map[int][2]int)
	for kind := OneTimeEC; kind <= LastResortKyber; kind++ {
		table, where := kindWhere(kind)
		var cur, ret int
		if err := t.x.QueryRowContext(ctx, "SELECT COUNT(*) FILTER (WHERE retired IS NULL), COUNT(*) FILTER (WHERE retired IS NOT NULL) FROM "+table+" WHERE "+where).Scan(&cur, &ret); err != nil {
			return nil, err
		}
		out[kind] = [2]int{cur, ret}
	}
	return out, nil
}

// KeyIDs lists the ids of the current (not retired) keys of a kind.
func (t *q) KeyIDs(ctx context.Context, kind int) ([]uint32, error) {
	table, where := kindWhere(kind)
	rows, err := t.x.QueryContext(ctx, "SELECT id FROM "+table+" WHERE retired IS NULL AND "+where+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
