package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// This file: the two key spaces (docs/multidevice.md, "What each device
// holds"). The secret space holds the secret identity's prekeys and the
// sessions of secret conversations; the ordinary space holds this device's
// ordinary prekeys (signed by the account identity key) and the sessions of
// ordinary conversations, one per device of a peer and per other device of
// this account. Each space has tables of its own, so that the same (name,
// device) can have a secret and an ordinary session, and a sealed record of
// one space cannot be moved into the other (the table is in the additional
// data).

// Space names a key space.
type Space int

// The key spaces.
const (
	SecretSpace Space = iota
	OrdinarySpace
)

func (s Space) String() string {
	if s == OrdinarySpace {
		return "ordinary"
	}
	return "secret"
}

// tables names the tables of one key space.
type tables struct {
	prekeys, signed, kyber, kyberUsed, sessions string
}

var spaceTables = [...]tables{
	SecretSpace:   {"prekeys", "signed_prekeys", "kyber_prekeys", "kyber_used", "sessions"},
	OrdinarySpace: {"o_prekeys", "o_signed_prekeys", "o_kyber_prekeys", "o_kyber_used", "o_sessions"},
}

// Keys is one key space's prekeys and sessions, in a transaction (from
// [Tx.Keys]) or outside one (from a reader's Keys: reads only). Every
// write to a sessions table goes through its methods, which count it for
// the fan-out's session cache (fancache.go): a write by any other path
// would leave that cache stale.
type Keys struct {
	q   *q
	tb  *tables
	now time.Time
}

// Keys returns the key space s of the reader.
func (t *q) Keys(s Space) *Keys { return &Keys{q: t, tb: &spaceTables[s]} }

// Keys returns the key space s of the transaction.
func (t *Tx) Keys(s Space) *Keys { return &Keys{q: &t.q, tb: &spaceTables[s], now: t.Now} }

func (k *Keys) LoadSession(ctx context.Context, addr session.Address) (*session.Record, error) {
	var b []byte
	err := k.q.x.QueryRowContext(ctx, "SELECT record FROM "+k.tb.sessions+" WHERE name = ? AND device = ?", addr.Name, uint32(addr.Device)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	pt, err := k.q.s.seal.open(b, k.tb.sessions, "record", sessionRow(addr))
	if err != nil {
		return nil, err
	}
	return session.ParseRecord(pt)
}

func (k *Keys) StoreSession(ctx context.Context, addr session.Address, r *session.Record) error {
	k.noteSessionWrite()
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = k.q.x.ExecContext(ctx, `INSERT INTO `+k.tb.sessions+` (name, device, record) VALUES (?, ?, ?)
		ON CONFLICT (name, device) DO UPDATE SET record = excluded.record`,
		addr.Name, uint32(addr.Device), k.q.s.seal.seal(b, k.tb.sessions, "record", sessionRow(addr)))
	return err
}

// DeleteSession deletes the session with addr, if any (a device the
// server says is gone or stale).
func (k *Keys) DeleteSession(ctx context.Context, addr session.Address) error {
	k.noteSessionWrite()
	_, err := k.q.x.ExecContext(ctx, "DELETE FROM "+k.tb.sessions+" WHERE name = ? AND device = ?", addr.Name, uint32(addr.Device))
	return err
}

// SessionDevices lists the devices of name this space has a session
// with, in order.
func (k *Keys) SessionDevices(ctx context.Context, name string) ([]uint32, error) {
	rows, err := k.q.x.QueryContext(ctx, "SELECT device FROM "+k.tb.sessions+" WHERE name = ? ORDER BY device", name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var d uint32
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ArchiveAllSessions archives the current session of every peer (after
// the space's identity changed).
func (k *Keys) ArchiveAllSessions(ctx context.Context) error {
	rows, err := k.q.x.QueryContext(ctx, "SELECT name, device FROM "+k.tb.sessions)
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
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range addrs {
		r, err := k.LoadSession(ctx, a)
		if err != nil {
			return err
		}
		if err := r.ArchiveCurrent(); err != nil {
			return err
		}
		if err := k.StoreSession(ctx, a, r); err != nil {
			return err
		}
	}
	return nil
}

func (k *Keys) loadSealed(ctx context.Context, table string, id uint32) ([]byte, error) {
	var b []byte
	err := k.q.x.QueryRowContext(ctx, "SELECT record FROM "+table+" WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s %d", ErrNotFound, table, id)
	} else if err != nil {
		return nil, err
	}
	return k.q.s.seal.open(b, table, "record", rowID(int64(id)))
}

func (k *Keys) LoadPreKey(ctx context.Context, id key.PreKeyID) (*key.PreKey, error) {
	b, err := k.loadSealed(ctx, k.tb.prekeys, uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParsePreKey(b)
}

func (k *Keys) RemovePreKey(ctx context.Context, id key.PreKeyID) error {
	_, err := k.q.x.ExecContext(ctx, "DELETE FROM "+k.tb.prekeys+" WHERE id = ?", uint32(id))
	return err
}

func (k *Keys) LoadSignedPreKey(ctx context.Context, id key.SignedPreKeyID) (*key.SignedPreKey, error) {
	b, err := k.loadSealed(ctx, k.tb.signed, uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParseSignedPreKey(b)
}

func (k *Keys) LoadKyberPreKey(ctx context.Context, id key.KyberPreKeyID) (*key.KyberPreKey, error) {
	b, err := k.loadSealed(ctx, k.tb.kyber, uint32(id))
	if err != nil {
		return nil, err
	}
	return key.ParseKyberPreKey(b)
}

// ErrKyberReuse is returned when a last-resort Kyber prekey is used twice
// with the same signed prekey and base key (a replayed PreKey message).
var ErrKyberReuse = errors.New("store: Kyber prekey reused")

func (k *Keys) MarkKyberPreKeyUsed(ctx context.Context, id key.KyberPreKeyID, spk key.SignedPreKeyID, base key.ECPublic) error {
	var lastResort bool
	err := k.q.x.QueryRowContext(ctx, "SELECT last_resort FROM "+k.tb.kyber+" WHERE id = ?", uint32(id)).Scan(&lastResort)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: Kyber prekey %d", ErrNotFound, id)
	} else if err != nil {
		return err
	}
	if !lastResort {
		_, err := k.q.x.ExecContext(ctx, "DELETE FROM "+k.tb.kyber+" WHERE id = ?", uint32(id))
		return err
	}
	res, err := k.q.x.ExecContext(ctx, "INSERT OR IGNORE INTO "+k.tb.kyberUsed+" (kyber_id, signed_id, base_key) VALUES (?, ?, ?)",
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
func (k *Keys) StorePreKeys(ctx context.Context, ks []*key.PreKey) error {
	for _, pk := range ks {
		b, err := pk.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := k.q.x.ExecContext(ctx, "INSERT INTO "+k.tb.prekeys+" (id, record, created) VALUES (?, ?, ?)",
			uint32(pk.ID), k.q.s.seal.seal(b, k.tb.prekeys, "record", rowID(int64(pk.ID))), k.now.UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}

// StoreSignedPreKey adds a signed prekey.
func (k *Keys) StoreSignedPreKey(ctx context.Context, sk *key.SignedPreKey) error {
	b, err := sk.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = k.q.x.ExecContext(ctx, "INSERT INTO "+k.tb.signed+" (id, record, created) VALUES (?, ?, ?)",
		uint32(sk.ID), k.q.s.seal.seal(b, k.tb.signed, "record", rowID(int64(sk.ID))), k.now.UnixMilli())
	return err
}

// StoreKyberPreKeys adds Kyber prekeys, one-time or last-resort.
func (k *Keys) StoreKyberPreKeys(ctx context.Context, ks []*key.KyberPreKey, lastResort bool) error {
	for _, kk := range ks {
		b, err := kk.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := k.q.x.ExecContext(ctx, "INSERT INTO "+k.tb.kyber+" (id, record, last_resort, created) VALUES (?, ?, ?, ?)",
			uint32(kk.ID), k.q.s.seal.seal(b, k.tb.kyber, "record", rowID(int64(kk.ID))), lastResort, k.now.UnixMilli()); err != nil {
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

func (k *Keys) kindWhere(kind int) (table, where string) {
	switch kind {
	case OneTimeEC:
		return k.tb.prekeys, "1"
	case OneTimeKyber:
		return k.tb.kyber, "last_resort = 0"
	case Signed:
		return k.tb.signed, "1"
	default:
		return k.tb.kyber, "last_resort = 1"
	}
}

// RetirePreKeys marks the keys of a kind made before the given time as
// replaced on the server. Retired keys are kept for messages in flight
// until DeleteRetired.
func (k *Keys) RetirePreKeys(ctx context.Context, kind int, before time.Time) error {
	table, where := k.kindWhere(kind)
	_, err := k.q.x.ExecContext(ctx, "UPDATE "+table+" SET retired = ? WHERE retired IS NULL AND created < ? AND "+where,
		k.now.UnixMilli(), before.UnixMilli())
	return err
}

// DeleteRetired deletes the prekeys retired before cutoff, and the
// last-resort use records of deleted Kyber keys.
func (k *Keys) DeleteRetired(ctx context.Context, cutoff time.Time) error {
	for _, table := range []string{k.tb.prekeys, k.tb.signed, k.tb.kyber} {
		if _, err := k.q.x.ExecContext(ctx, "DELETE FROM "+table+" WHERE retired IS NOT NULL AND retired < ?", cutoff.UnixMilli()); err != nil {
			return err
		}
	}
	_, err := k.q.x.ExecContext(ctx, "DELETE FROM "+k.tb.kyberUsed+" WHERE kyber_id NOT IN (SELECT id FROM "+k.tb.kyber+")")
	return err
}

// DeletePreKeysBefore removes every prekey made before the given time
// (after the space's identity changed: keys of the old one are useless).
func (k *Keys) DeletePreKeysBefore(ctx context.Context, before time.Time) error {
	for _, table := range []string{k.tb.prekeys, k.tb.signed, k.tb.kyber} {
		if _, err := k.q.x.ExecContext(ctx, "DELETE FROM "+table+" WHERE created < ?", before.UnixMilli()); err != nil {
			return err
		}
	}
	_, err := k.q.x.ExecContext(ctx, "DELETE FROM "+k.tb.kyberUsed+" WHERE kyber_id NOT IN (SELECT id FROM "+k.tb.kyber+")")
	return err
}

// PreKeyCounts tells how many keys of each kind are held, current and
// retired.
func (k *Keys) PreKeyCounts(ctx context.Context) (map[int][2]int, error) {
	out := make(map[int][2]int)
	for kind := OneTimeEC; kind <= LastResortKyber; kind++ {
		table, where := k.kindWhere(kind)
		var cur, ret int
		if err := k.q.x.QueryRowContext(ctx, "SELECT COUNT(*) FILTER (WHERE retired IS NULL), COUNT(*) FILTER (WHERE retired IS NOT NULL) FROM "+table+" WHERE "+where).Scan(&cur, &ret); err != nil {
			return nil, err
		}
		out[kind] = [2]int{cur, ret}
	}
	return out, nil
}

// KeyIDs lists the ids of the current (not retired) keys of a kind.
func (k *Keys) KeyIDs(ctx context.Context, kind int) ([]uint32, error) {
	table, where := k.kindWhere(kind)
	rows, err := k.q.x.QueryContext(ctx, "SELECT id FROM "+table+" WHERE retired IS NULL AND "+where+" ORDER BY id")
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

// OrdinaryStore is the ordinary key space of a transaction as a
// [session.Store]: the account identity, this device's ordinary
// registration id and prekeys, the ordinary sessions, and per person their
// account identity key. It shares the transaction, so that the ratchet
// steps of a whole fan-out commit or roll back together with the outbox
// row (docs/multidevice.md section 1).
type OrdinaryStore struct {
	*Keys
	tx *Tx
}

var _ session.Store = (*OrdinaryStore)(nil)

// Ordinary returns the ordinary key space of the transaction.
func (t *Tx) Ordinary() *OrdinaryStore { return &OrdinaryStore{Keys: t.Keys(OrdinarySpace), tx: t} }

// ErrNoAccountIdentity: the device does not hold the account identity key
// (not yet made, or the device was added without it).
var ErrNoAccountIdentity = errors.New("store: no account identity key on this device")

func (o *OrdinaryStore) IdentityKeyPair(context.Context) (*key.IdentityKeyPair, error) {
	if ik := o.tx.AccountIdentity(); ik != nil {
		return ik, nil
	}
	return nil, ErrNoAccountIdentity
}

func (o *OrdinaryStore) LocalRegistrationID(ctx context.Context) (key.RegistrationID, error) {
	v, err := o.tx.MetaInt(ctx, metaOrdinaryRegID, 0)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, errors.New("store: no ordinary registration id")
	}
	return key.RegistrationID(v), nil
}

func (o *OrdinaryStore) self(addr session.Address) bool {
	a := o.tx.account()
	return a != nil && addr.Name == a.Username
}

// IsTrustedIdentity: a device of this account must have the account
// identity key this device holds (a sync copy is accepted only from a
// device of the receiver's own account). Anyone else is trusted on first
// use, and a change is accepted with a notice (SaveIdentity): ordinary
// conversations do not block sending on a change yet (docs/multidevice.md
// section 1, Trust).
func (o *OrdinaryStore) IsTrustedIdentity(ctx context.Context, addr session.Address, k key.IdentityKey, dir session.Direction) (bool, error) {
	if o.self(addr) {
		ik := o.tx.AccountIdentity()
		return ik != nil && ik.Public == k, nil
	}
	return true, nil
}

// SaveIdentity records k as the person's account identity key; a change
// puts a notice in the ordinary conversation with them.
func (o *OrdinaryStore) SaveIdentity(ctx context.Context, addr session.Address, k key.IdentityKey) (bool, error) {
	if o.self(addr) {
		return false, nil
	}
	old, err := o.tx.AccountIdentityOf(ctx, addr.Name)
	if err != nil {
		return false, err
	}
	if old != nil && *old == k {
		return false, nil
	}
	if _, err := o.tx.x.ExecContext(ctx, `INSERT INTO o_contacts (name, identity, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET identity = excluded.identity, updated = excluded.updated`,
		addr.Name, k.Bytes(), o.tx.Now.UnixMilli()); err != nil {
		return false, err
	}
	if old == nil {
		return false, nil
	}
	_, err = o.tx.AddNoticeIn(ctx, addr.Name, false, fmt.Sprintf("%s's account key changed: they may have reset their account. Ordinary conversations cannot be verified yet.", addr.Name))
	return true, err
}

func (o *OrdinaryStore) Identity(ctx context.Context, addr session.Address) (*key.IdentityKey, error) {
	if o.self(addr) {
		if ik := o.tx.AccountIdentity(); ik != nil {
			pub := ik.Public
			return &pub, nil
		}
		return nil, nil
	}
	return o.tx.AccountIdentityOf(ctx, addr.Name)
}

// AccountIdentityOf returns the account identity key known for name (their
// ordinary conversations), or nil.
func (t *q) AccountIdentityOf(ctx context.Context, name string) (*key.IdentityKey, error) {
	var b []byte
	err := t.x.QueryRowContext(ctx, "SELECT identity FROM o_contacts WHERE name = ?", name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return parseKey(b), nil
}

// OrdinaryDevices returns the devices of name (with ordinary keys, less
// this one for this account) as the server last accepted them in a send,
// and whether there was such a send: what a later device_mismatch answer
// is news against.
func (t *q) OrdinaryDevices(ctx context.Context, name string) (devices []uint32, known bool, err error) {
	rows, err := t.x.QueryContext(ctx, "SELECT device FROM o_devices WHERE name = ? ORDER BY device", name)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var d uint32
		if err := rows.Scan(&d); err != nil {
			return nil, false, err
		}
		if d == 0 { // the mark of a known list, empty or not
			known = true
			continue
		}
		devices = append(devices, d)
	}
	return devices, known, rows.Err()
}

// SetOrdinaryDevices records name's devices as a send the server accepted
// named them.
func (t *Tx) SetOrdinaryDevices(ctx context.Context, name string, devices []uint32) error {
	if _, err := t.x.ExecContext(ctx, "DELETE FROM o_devices WHERE name = ?", name); err != nil {
		return err
	}
	for _, d := range append([]uint32{0}, devices...) {
		if _, err := t.x.ExecContext(ctx, "INSERT OR IGNORE INTO o_devices (name, device) VALUES (?, ?)", name, d); err != nil {
			return err
		}
	}
	return nil
}

// LoadSessions reads the sessions of every device of the names given, in
// one query (a fan-out's sessions, docs/multidevice.md section 1).
func (k *Keys) LoadSessions(ctx context.Context, names ...string) (map[session.Address]*session.Record, error) {
	out := make(map[session.Address]*session.Record)
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := k.q.x.QueryContext(ctx, "SELECT name, device, record FROM "+k.tb.sessions+" WHERE name IN (?"+strings.Repeat(", ?", len(names)-1)+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a session.Address
		var d uint32
		var b []byte
		if err := rows.Scan(&a.Name, &d, &b); err != nil {
			return nil, err
		}
		a.Device = key.DeviceID(d)
		pt, err := k.q.s.seal.open(b, k.tb.sessions, "record", sessionRow(a))
		if err != nil {
			return nil, err
		}
		if out[a], err = session.ParseRecord(pt); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// StoreSessions writes sessions in one statement.
func (k *Keys) StoreSessions(ctx context.Context, recs map[session.Address]*session.Record) error {
	k.noteSessionWrite()
	return k.storeSessions(ctx, recs)
}

// storeSessions is StoreSessions for the fan-out cache, which keeps its
// own count.
func (k *Keys) storeSessions(ctx context.Context, recs map[session.Address]*session.Record) error {
	if len(recs) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(recs))
	// One buffer for every record's plaintext, which holds private keys:
	// each is sealed from it and overwritten by the next, and the buffer
	// (and any it outgrew) is cleared before this returns.
	var pt []byte
	defer func() { clear(pt[:cap(pt)]) }()
	for a, r := range recs {
		b, err := r.AppendBinary(pt[:0])
		if err != nil {
			return err
		}
		if cap(b) != cap(pt) {
			clear(pt[:cap(pt)])
		}
		pt = b
		args = append(args, a.Name, uint32(a.Device), k.q.s.seal.seal(b, k.tb.sessions, "record", sessionRow(a)))
	}
	_, err := k.q.x.ExecContext(ctx, "INSERT INTO "+k.tb.sessions+" (name, device, record) VALUES (?, ?, ?)"+
		strings.Repeat(", (?, ?, ?)", len(recs)-1)+" ON CONFLICT (name, device) DO UPDATE SET record = excluded.record", args...)
	return err
}
