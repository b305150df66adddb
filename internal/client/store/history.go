package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hushmsg/hush/key"
)

// Meta keys of the account's history (docs/multidevice.md section 3).
const (
	metaHistoryKeyring  = "history_keyring"
	metaRecoveryVersion = "recovery_version"
	metaHistoryAfter    = "history_after"
	metaDeposited       = "history_deposited"
)

// HistoryKeyring returns the account's history keyring in the form of
// history.Keyring.Marshal, or nil when this device has none.
func (t *q) HistoryKeyring(ctx context.Context) ([]byte, error) {
	v, err := t.meta(ctx, metaHistoryKeyring)
	if err != nil || v == nil {
		return nil, err
	}
	pt, err := t.s.seal.open(v, "meta", "v", metaHistoryKeyring)
	if err != nil {
		return nil, fmt.Errorf("store: the history keyring does not open: %w", err)
	}
	return pt, nil
}

// SetHistoryKeyring keeps the keyring, sealed at rest like the identity.
func (t *Tx) SetHistoryKeyring(ctx context.Context, b []byte) error {
	return t.setMeta(ctx, metaHistoryKeyring, t.s.seal.seal(b, "meta", "v", metaHistoryKeyring))
}

// RecoveryVersion is the version of the recovery blob this device last
// uploaded or learned of (0: none).
func (t *q) RecoveryVersion(ctx context.Context) (int64, error) {
	return t.MetaInt(ctx, metaRecoveryVersion, 0)
}

// SetRecoveryVersion records it.
func (t *Tx) SetRecoveryVersion(ctx context.Context, v int64) error {
	return t.SetMetaInt(ctx, metaRecoveryVersion, v)
}

// HistoryAfter is the server's sequence number of the last history record
// this device has read (0: none).
func (t *q) HistoryAfter(ctx context.Context) (int64, error) {
	return t.MetaInt(ctx, metaHistoryAfter, 0)
}

// SetHistoryAfter records it.
func (t *Tx) SetHistoryAfter(ctx context.Context, seq int64) error {
	return t.SetMetaInt(ctx, metaHistoryAfter, seq)
}

// OrdinaryContact is a person with the account identity key this device
// trusts for them.
type OrdinaryContact struct {
	Name     string
	Identity key.IdentityKey
}

// OrdinaryContacts lists them, by name.
func (t *q) OrdinaryContacts(ctx context.Context) ([]OrdinaryContact, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT name, identity FROM o_contacts ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OrdinaryContact
	for rows.Next() {
		var name string
		var b []byte
		if err := rows.Scan(&name, &b); err != nil {
			return nil, err
		}
		if k := parseKey(b); k != nil {
			out = append(out, OrdinaryContact{Name: name, Identity: *k})
		}
	}
	return out, rows.Err()
}

// SetAccountIdentityOf records k as name's account identity key without a
// notice: for what another device of this account vouches for (the
// provisioning box), not for a key seen in a message.
func (t *Tx) SetAccountIdentityOf(ctx context.Context, name string, k key.IdentityKey) error {
	_, err := t.x.ExecContext(ctx, `INSERT INTO o_contacts (name, identity, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET identity = excluded.identity, updated = excluded.updated`,
		name, k.Bytes(), t.Now.UnixMilli())
	return err
}

// OrdinaryTextAfter returns up to limit lines of ordinary conversations
// (text, not secret) with a local id above after, in id order.
func (t *q) OrdinaryTextAfter(ctx context.Context, after int64, limit int) ([]*Message, error) {
	return t.messages(ctx, "WHERE id > ? AND secret = 0 AND kind = ? ORDER BY id LIMIT ?", after, KindText, limit)
}

// ToDeposit returns up to limit lines this device still has to deposit
// into the account's history, in id order: ordinary text with a local id
// above after, but not what device itself sent (its send request carried
// the record).
func (t *q) ToDeposit(ctx context.Context, after int64, device uint32, limit int) ([]*Message, error) {
	return t.messages(ctx, "WHERE id > ? AND secret = 0 AND kind = ? AND NOT (outgoing = 1 AND device = ?) ORDER BY id LIMIT ?",
		after, KindText, device, limit)
}

// MaxMessageID is the largest local id of any line, or 0.
func (t *q) MaxMessageID(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := t.x.QueryRowContext(ctx, "SELECT MAX(id) FROM messages").Scan(&n)
	return n.Int64, err
}

// Deposited is the local id up to which this device's ordinary lines are
// in the account's history (0: none).
func (t *q) Deposited(ctx context.Context) (int64, error) {
	return t.MetaInt(ctx, metaDeposited, 0)
}

// SetDeposited records it.
func (t *Tx) SetDeposited(ctx context.Context, id int64) error {
	return t.SetMetaInt(ctx, metaDeposited, id)
}

const metaRecoveryPublic = "recovery_public"

// RecoveryPublic returns the recovery code's public key, or nil when the
// account has no recovery code (as far as this device knows).
func (t *q) RecoveryPublic(ctx context.Context) ([]byte, error) {
	return t.meta(ctx, metaRecoveryPublic)
}

// SetRecoveryPublic records it (not secret: it seals, it does not open).
func (t *Tx) SetRecoveryPublic(ctx context.Context, pub []byte) error {
	return t.setMeta(ctx, metaRecoveryPublic, pub)
}
