package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// This file: groups (docs/groups.md). A group's record (its log and this
// device's sender key bookkeeping, encoded by the client) is kept sealed,
// one row per group; the sender key records of every member device (and
// this device's own chains) are kept sealed, one row per sender device and
// distribution id, each bound to the group it was given for.

// GroupPeerPrefix starts the Peer of a group conversation's lines: "#" and
// the group id in hex. No username starts with it.
const GroupPeerPrefix = "#"

// GroupPeer is the Peer of the lines of the group conversation id.
func GroupPeer(id [16]byte) string { return GroupPeerPrefix + hex.EncodeToString(id[:]) }

// ParseGroupPeer reads a group conversation's Peer; ok is false for any
// other peer.
func ParseGroupPeer(peer string) (id [16]byte, ok bool) {
	h, found := strings.CutPrefix(peer, GroupPeerPrefix)
	if !found || len(h) != 32 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, false
	}
	return id, true
}

func groupRow(id [16]byte) string { return hex.EncodeToString(id[:]) }

// Group returns the record of the group id, or ErrNotFound.
func (t *q) Group(ctx context.Context, id [16]byte) ([]byte, error) {
	var b []byte
	err := t.x.QueryRowContext(ctx, "SELECT record FROM groups WHERE id = ?", id[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return t.s.seal.open(b, "groups", "record", groupRow(id))
}

// GroupIDs lists the groups this device keeps, most recently changed
// first.
func (t *q) GroupIDs(ctx context.Context) ([][16]byte, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT id FROM groups ORDER BY updated DESC, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][16]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, [16]byte(b))
	}
	return out, rows.Err()
}

// SetGroup stores the record of the group id.
func (t *Tx) SetGroup(ctx context.Context, id [16]byte, record []byte) error {
	_, err := t.x.ExecContext(ctx, `INSERT INTO groups (id, record, updated) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET record = excluded.record, updated = excluded.updated`,
		id[:], t.s.seal.seal(record, "groups", "record", groupRow(id)), t.Now.UnixMilli())
	return err
}

func senderKeyRow(name string, device uint32, dist [16]byte) string {
	return name + "." + strconv.FormatUint(uint64(device), 10) + "." + hex.EncodeToString(dist[:])
}

// SenderKey returns the sender key record of name's device for the
// distribution id dist and the group it is bound to, or nil, nil.
func (t *q) SenderKey(ctx context.Context, name string, device uint32, dist [16]byte) (group []byte, record []byte, err error) {
	var rec []byte
	err = t.x.QueryRowContext(ctx, "SELECT grp, record FROM sender_keys WHERE name = ? AND device = ? AND dist = ?",
		name, device, dist[:]).Scan(&group, &rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	record, err = t.s.seal.open(rec, "sender_keys", "record", senderKeyRow(name, device, dist))
	return group, record, err
}

// SetSenderKey stores the sender key record of name's device for the
// distribution dist, bound to group.
func (t *Tx) SetSenderKey(ctx context.Context, name string, device uint32, dist, group [16]byte, record []byte) error {
	_, err := t.x.ExecContext(ctx, `INSERT INTO sender_keys (name, device, dist, grp, record) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name, device, dist) DO UPDATE SET record = excluded.record`,
		name, device, dist[:], group[:], t.s.seal.seal(record, "sender_keys", "record", senderKeyRow(name, device, dist)))
	return err
}

// DeleteSenderKeys deletes the sender key records of name's devices
// bound to group (all of them when name is empty), and returns how many
// it deleted.
func (t *Tx) DeleteSenderKeys(ctx context.Context, group [16]byte, name string) (int, error) {
	var r sql.Result
	var err error
	if name == "" {
		r, err = t.x.ExecContext(ctx, "DELETE FROM sender_keys WHERE grp = ?", group[:])
	} else {
		r, err = t.x.ExecContext(ctx, "DELETE FROM sender_keys WHERE grp = ? AND name = ?", group[:], name)
	}
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), err
}

// SenderKeyDists lists the distribution ids of name's device bound to
// group that this device holds.
func (t *q) SenderKeyDists(ctx context.Context, group [16]byte, name string, device uint32) ([][16]byte, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT dist FROM sender_keys WHERE grp = ? AND name = ? AND device = ? ORDER BY dist", group[:], name, device)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][16]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, [16]byte(b))
	}
	return out, rows.Err()
}

// DeleteSenderKeyOf deletes the sender key record of name's device for
// the distribution dist bound to group.
func (t *Tx) DeleteSenderKeyOf(ctx context.Context, group [16]byte, name string, device uint32, dist [16]byte) error {
	_, err := t.x.ExecContext(ctx, "DELETE FROM sender_keys WHERE grp = ? AND name = ? AND device = ? AND dist = ?", group[:], name, device, dist[:])
	return err
}

// OutgoingOf returns the outbox row of the message id still to send, or
// nil.
func (t *q) OutgoingOf(ctx context.Context, id int64) (*Outgoing, error) {
	var o Outgoing
	err := t.x.QueryRowContext(ctx, "SELECT message, peer, device, identity, type, ciphertext, expires_in, request FROM outbox WHERE message = ? AND "+outboxLive, id).
		Scan(&o.Message, &o.Peer, &o.Device, &o.Identity, &o.Type, &o.Ciphertext, &o.ExpiresIn, &o.Request)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &o, err
}
