package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/content"
)

// Franking is what a received message's report needs (docs/franking.md):
// the content as committed to, its franking key, and the franking the
// server delivered, with who sent it from which device to which device of
// this account, when. It is kept sealed beside the message and deleted
// with it (a disappearing message's timer, a deleted conversation).
type Franking struct {
	Content    []byte // the decrypted content plaintext, exactly as committed
	Key        []byte // 32 bytes
	Commitment []byte // 32 bytes
	Tag        []byte // 32 bytes
	KeyID      uint32
	Timestamp  int64 // the server's, Unix ms
	FromDevice uint32
	ToDevice   uint32 // the device of this account that received it
}

func (f Franking) String() string   { return fmt.Sprintf("franking(key %d, redacted)", f.KeyID) }
func (f Franking) GoString() string { return f.String() }

// frankingTable holds the franking of received messages.
const frankingTable = `
CREATE TABLE IF NOT EXISTS franking (
	message INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	record BLOB NOT NULL);`

// encode: key, commitment and tag (32 bytes each), key id, timestamp,
// devices, then the content.
func (f *Franking) encode() []byte {
	b := make([]byte, 0, 96+4+8+8+len(f.Content))
	b = append(b, f.Key...)
	b = append(b, f.Commitment...)
	b = append(b, f.Tag...)
	b = binary.BigEndian.AppendUint32(b, f.KeyID)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Timestamp))
	b = binary.BigEndian.AppendUint32(b, f.FromDevice)
	b = binary.BigEndian.AppendUint32(b, f.ToDevice)
	return append(b, f.Content...)
}

func decodeFranking(b []byte) (*Franking, error) {
	if len(b) < 96+20 {
		return nil, errors.New("store: franking record too short")
	}
	f := &Franking{Key: b[:32:32], Commitment: b[32:64:64], Tag: b[64:96:96]}
	f.KeyID = binary.BigEndian.Uint32(b[96:])
	f.Timestamp = int64(binary.BigEndian.Uint64(b[100:]))
	f.FromDevice = binary.BigEndian.Uint32(b[108:])
	f.ToDevice = binary.BigEndian.Uint32(b[112:])
	f.Content = b[116:]
	return f, nil
}

// SetFranking keeps the franking of the received message with local id
// message, sealed.
func (t *Tx) SetFranking(ctx context.Context, message int64, f *Franking) error {
	if len(f.Key) != 32 || len(f.Commitment) != 32 || len(f.Tag) != 32 {
		return errors.New("store: franking of the wrong sizes")
	}
	_, err := t.x.ExecContext(ctx, `INSERT INTO franking (message, record) VALUES (?, ?)
		ON CONFLICT (message) DO UPDATE SET record = excluded.record`,
		message, t.s.seal.seal(f.encode(), "franking", "record", rowID(message)))
	return err
}

// Franking returns the franking kept for the message with local id
// message, or ErrNotFound (not franked, sent here, or gone).
func (t *q) Franking(ctx context.Context, message int64) (*Franking, error) {
	var sealed []byte
	err := t.x.QueryRowContext(ctx, `SELECT record FROM franking WHERE message = ?`, message).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	b, err := t.s.seal.open(sealed, "franking", "record", rowID(message))
	if err != nil {
		return nil, err
	}
	return decodeFranking(b)
}

// Reportable is a received message with what a report of it needs.
type Reportable struct {
	Message  *Message
	Franking *Franking
}

// ReportableBefore returns the received messages of the conversation
// peer (secret or not) before the one with local id before that are
// franked and, when sender is not empty, were sent by sender (a group
// conversation's lines have several senders): the newest n, newest first,
// leaving out any whose disappearing timer ran out by now.
func (t *q) ReportableBefore(ctx context.Context, peer, sender string, secret bool, before int64, n int, now time.Time) ([]Reportable, error) {
	rows, err := t.x.QueryContext(ctx, `SELECT m.id FROM messages m JOIN franking f ON f.message = m.id
		WHERE m.peer = ? AND (? = '' OR m.sender = ?) AND m.outgoing = 0 AND m.secret = ? AND m.id < ? AND (m.expires_at IS NULL OR m.expires_at > ?)
		ORDER BY m.id DESC LIMIT ?`, peer, sender, sender, secret, before, now.UnixMilli(), n)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Reportable, 0, len(ids))
	for _, id := range ids {
		m, err := t.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		f, err := t.Franking(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, Reportable{m, f})
	}
	return out, nil
}

// ReceivedByID returns the message received from peer with the sender's
// id id, or ErrNotFound.
func (t *q) ReceivedByID(ctx context.Context, peer string, id content.ID) (*Message, error) {
	ms, err := t.messages(ctx, "WHERE peer = ? AND outgoing = 0 AND msg_id = ?", peer, id[:])
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return ms[0], nil
}

// ReceivedInGroupByID returns the message with the sender's id id that
// sender said in a group conversation, or ErrNotFound.
func (t *q) ReceivedInGroupByID(ctx context.Context, sender string, id content.ID) (*Message, error) {
	ms, err := t.messages(ctx, "WHERE peer LIKE '#%' AND sender = ? AND outgoing = 0 AND msg_id = ?", sender, id[:])
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return ms[0], nil
}
