package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
)

// Contact is what the store knows of a person.
type Contact struct {
	Name         string
	Device       uint32           // their secret device, as last seen
	Identity     *key.IdentityKey // their current identity key, nil if unknown
	Verified     bool             // the user verified Identity (safety number)
	NeedsConfirm bool             // the key changed after verification: sending waits for the user
	// Pending is a new key seen when sending was refused (the person was
	// verified); trust or verify accepts it.
	Pending       *key.IdentityKey
	PendingDevice uint32
	Updated       time.Time
}

func parseKey(b []byte) *key.IdentityKey {
	if b == nil {
		return nil
	}
	k, err := key.ParseIdentityKey(b)
	if err != nil {
		return nil
	}
	return &k
}

const contactCols = "name, device, identity, verified, needs_confirm, pending_identity, pending_device, updated"

func scanContact(sc interface{ Scan(...any) error }) (*Contact, error) {
	var c Contact
	var ik, pk []byte
	var pd sql.NullInt64
	var upd int64
	if err := sc.Scan(&c.Name, &c.Device, &ik, &c.Verified, &c.NeedsConfirm, &pk, &pd, &upd); err != nil {
		return nil, err
	}
	c.Identity, c.Pending, c.PendingDevice = parseKey(ik), parseKey(pk), uint32(pd.Int64)
	c.Updated = time.UnixMilli(upd)
	return &c, nil
}

// Contact returns the contact named name, or ErrNotFound.
func (t *q) Contact(ctx context.Context, name string) (*Contact, error) {
	c, err := scanContact(t.x.QueryRowContext(ctx, "SELECT "+contactCols+" FROM contacts WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return c, err
}

// Contacts lists every contact by name.
func (t *q) Contacts(ctx context.Context) ([]*Contact, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT "+contactCols+" FROM contacts ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetPending records a new key that sending refused, for Confirm.
func (t *Tx) SetPending(ctx context.Context, name string, k key.IdentityKey, device uint32) error {
	c, err := t.Contact(ctx, name)
	if err != nil {
		return err
	}
	if c.Pending != nil && *c.Pending == k {
		return nil
	}
	if old, err := t.isOldIdentity(ctx, name, k); err != nil {
		return err
	} else if old {
		return ErrReplacedIdentity
	}
	if _, err := t.x.ExecContext(ctx, "UPDATE contacts SET pending_identity = ?, pending_device = ?, updated = ? WHERE name = ?",
		k.Bytes(), device, t.Now.UnixMilli(), name); err != nil {
		return err
	}
	_, err = t.AddNotice(ctx, name, name+"'s safety number changed, and you had verified them: sending waits until you compare the new safety number, then verify or trust it.")
	return err
}

// Confirm accepts the person's key k (the pending one or the current
// one), marking it verified or not, and lets sending go on. A key the
// person had before is refused ([ErrReplacedIdentity]). A contact that
// does not exist yet is created with device.
func (t *Tx) Confirm(ctx context.Context, name string, k key.IdentityKey, device uint32, verified bool) error {
	c, err := t.Contact(ctx, name)
	if errors.Is(err, ErrNotFound) {
		_, err := t.x.ExecContext(ctx, "INSERT INTO contacts (name, device, identity, verified, updated) VALUES (?, ?, ?, ?, ?)",
			name, device, k.Bytes(), verified, t.Now.UnixMilli())
		return err
	} else if err != nil {
		return err
	}
	if c.Identity != nil && *c.Identity == k {
		device = c.Device
	} else if old, err := t.isOldIdentity(ctx, name, k); err != nil {
		return err
	} else if old {
		return ErrReplacedIdentity
	}
	return t.replaceIdentity(ctx, c, k, device, true, verified)
}

// Kind is what a line of a conversation is (column messages.kind).
type Kind int

// Message kinds.
const (
	KindText   Kind = 0
	KindNotice Kind = 1 // a line from hush itself: a key change, an undecryptable message
)

// String is the kind's name: "message" or "notice".
func (k Kind) String() string {
	switch k {
	case KindText:
		return "message"
	case KindNotice:
		return "notice"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// State is where a message is (column messages.state).
type State int

// Message states.
const (
	StateReceived State = 0 // incoming
	StatePending  State = 1 // outgoing, not yet accepted by the server
	StateSent     State = 2 // outgoing, the server has it
	StateFailed   State = 3 // outgoing, will not be sent
	// Set by receipts (docs/multidevice.md section 5): sent → delivered →
	// read, never backwards.
	StateDelivered State = 4 // outgoing, stored on a device of the peer
	StateRead      State = 5 // outgoing, shown on a device of the peer
)

// String is the state's name: "received", "pending", "sent", "failed",
// "delivered" or "read".
func (s State) String() string {
	switch s {
	case StateReceived:
		return "received"
	case StatePending:
		return "pending"
	case StateSent:
		return "sent"
	case StateFailed:
		return "failed"
	case StateDelivered:
		return "delivered"
	case StateRead:
		return "read"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Message is one line of a conversation.
type Message struct {
	ID        int64 // local, increasing
	Peer      string
	MsgID     content.ID // the sender's id; zero for notices
	Outgoing  bool
	Kind      Kind
	Secret    bool
	Body      string
	SentAt    time.Time // the sender's clock
	At        time.Time // when stored here
	Timer     time.Duration
	ExpiresAt time.Time // zero until the countdown starts
	Shown     bool
	State     State
	ServerID  int64
	// Device is the device that sent it: the peer's for a received
	// message, this account's for an outgoing one (this device, or another
	// one whose sync copy this is); 0 for a notice and in stores made
	// before it was kept.
	Device uint32
	// Attachments are the files of the message (issue 11), in the order
	// the sender gave them.
	Attachments []Attachment
	// Sender is who sent a line of a group conversation (Peer is then the
	// group's, [GroupPeer]); empty elsewhere and for notices.
	Sender string
}

const messageCols = "id, peer, msg_id, outgoing, kind, secret, body, sent_at, at, timer, expires_at, shown, state, server_id, device, sender"

func (t *q) scanMessage(sc interface{ Scan(...any) error }) (*Message, error) {
	var m Message
	var mid, body []byte
	var sent, at, timer int64
	var exp, sid sql.NullInt64
	if err := sc.Scan(&m.ID, &m.Peer, &mid, &m.Outgoing, &m.Kind, &m.Secret, &body, &sent, &at, &timer, &exp, &m.Shown, &m.State, &sid, &m.Device, &m.Sender); err != nil {
		return nil, err
	}
	copy(m.MsgID[:], mid)
	pt, err := t.s.seal.open(body, "messages", "body", rowID(m.ID))
	if err != nil {
		return nil, err
	}
	m.Body = string(pt)
	m.SentAt, m.At, m.Timer = time.UnixMilli(sent), time.UnixMilli(at), time.Duration(timer)*time.Second
	if exp.Valid {
		m.ExpiresAt = time.UnixMilli(exp.Int64)
	}
	m.ServerID = sid.Int64
	return &m, nil
}

func (t *q) messages(ctx context.Context, query string, args ...any) ([]*Message, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT "+messageCols+" FROM messages "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := t.scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return out, t.attachments(ctx, out)
}

// Message returns one message by local id.
func (t *q) Message(ctx context.Context, id int64) (*Message, error) {
	ms, err := t.messages(ctx, "WHERE id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return ms[0], nil
}

// History returns the last limit messages with peer (all if limit <= 0),
// both conversations (ordinary and secret) merged, oldest first, leaving
// out those expired at now.
func (t *q) History(ctx context.Context, peer string, limit int, now time.Time) ([]*Message, error) {
	return t.history(ctx, "", peer, limit, now)
}

// Conversation returns the last limit messages of one conversation with
// peer, the secret one or the ordinary one (all if limit <= 0), oldest
// first, leaving out those expired at now.
func (t *q) Conversation(ctx context.Context, peer string, secret bool, limit int, now time.Time) ([]*Message, error) {
	if secret {
		return t.history(ctx, " AND secret = 1", peer, limit, now)
	}
	return t.history(ctx, " AND secret = 0", peer, limit, now)
}

func (t *q) history(ctx context.Context, which, peer string, limit int, now time.Time) ([]*Message, error) {
	if limit <= 0 {
		limit = -1
	}
	ms, err := t.messages(ctx, "WHERE peer = ?"+which+" AND (expires_at IS NULL OR expires_at > ?) ORDER BY id DESC LIMIT ?", peer, now.UnixMilli(), limit)
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
	return ms, err
}

// Unshown returns incoming messages and notices not yet shown, oldest first.
func (t *q) Unshown(ctx context.Context) ([]*Message, error) {
	return t.messages(ctx, "WHERE shown = 0 ORDER BY id")
}

// Conversation summarizes one conversation: the ordinary or the secret
// one with a person (two with the same person are two conversations).
type Conversation struct {
	Peer     string
	Secret   bool
	Last     time.Time
	Messages int
	Unshown  int
}

// Conversations lists conversations, most recent first: every contact
// (secret, or ordinary with a known account key) and every peer with
// messages, the ordinary and the secret conversation apart.
func (t *q) Conversations(ctx context.Context) ([]Conversation, error) {
	rows, err := t.x.QueryContext(ctx, `
		SELECT p, s, MAX(at), SUM(n), SUM(u) FROM (
			SELECT peer AS p, secret AS s, MAX(at) AS at, COUNT(*) AS n, SUM(shown = 0) AS u FROM messages GROUP BY peer, secret
			UNION ALL
			SELECT name, 1, updated, 0, 0 FROM contacts
			UNION ALL
			SELECT name, 0, updated, 0, 0 FROM o_contacts)
		GROUP BY p, s ORDER BY MAX(at) DESC, p, s`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Conversation
	for rows.Next() {
		var c Conversation
		var at int64
		if err := rows.Scan(&c.Peer, &c.Secret, &at, &c.Messages, &c.Unshown); err != nil {
			return nil, err
		}
		c.Last = time.UnixMilli(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (t *Tx) insertMessage(ctx context.Context, m *Message) (int64, error) {
	return t.insertMessageOr(ctx, m, "")
}

// insertMessageOr inserts m with an ON CONFLICT clause (or none); it
// returns sql.ErrNoRows when the clause left the row out.
func (t *Tx) insertMessageOr(ctx context.Context, m *Message, onConflict string) (int64, error) {
	var mid any
	if m.MsgID != (content.ID{}) {
		mid = m.MsgID[:]
	}
	var exp any
	if !m.ExpiresAt.IsZero() {
		exp = m.ExpiresAt.UnixMilli()
	}
	// The id is needed for the body's additional data: take the next one
	// first (AUTOINCREMENT never reuses ids).
	var id int64
	if err := t.x.QueryRowContext(ctx, `INSERT INTO messages
		(peer, msg_id, outgoing, kind, secret, body, sent_at, at, timer, expires_at, shown, state, device, sender)
		VALUES (?, ?, ?, ?, ?, x'', ?, ?, ?, ?, ?, ?, ?, ?)`+onConflict+` RETURNING id`,
		m.Peer, mid, m.Outgoing, m.Kind, m.Secret, m.SentAt.UnixMilli(), m.At.UnixMilli(),
		int64(m.Timer/time.Second), exp, m.Shown, m.State, m.Device, m.Sender).Scan(&id); err != nil {
		return 0, err
	}
	_, err := t.x.ExecContext(ctx, "UPDATE messages SET body = ? WHERE id = ?",
		t.s.seal.seal([]byte(m.Body), "messages", "body", rowID(id)), id)
	m.ID = id
	if err == nil {
		err = t.insertAttachments(ctx, id, m.Attachments)
	}
	return id, err
}

// AddMessage stores a message; m.ID is set. It returns false, and stores
// nothing, if a message with the same sender id is already there (the
// UNIQUE (peer, outgoing, msg_id) of the table; a message without a
// sender id, NULL, is never the same as another).
func (t *Tx) AddMessage(ctx context.Context, m *Message) (bool, error) {
	at := m.At
	if m.At.IsZero() {
		m.At = t.Now
	}
	_, err := t.insertMessageOr(ctx, m, " ON CONFLICT (peer, outgoing, msg_id) DO NOTHING")
	if errors.Is(err, sql.ErrNoRows) {
		m.At = at
		return false, nil
	}
	return err == nil, err
}

// Renumber gives a message a new, later local id (so that it comes after
// a notice added since), keeping everything else (its attachments as m
// has them); its outbox row goes.
func (t *Tx) Renumber(ctx context.Context, m *Message) error {
	if _, err := t.x.ExecContext(ctx, "DELETE FROM messages WHERE id = ?", m.ID); err != nil {
		return err
	}
	_, err := t.insertMessage(ctx, m)
	return err
}

// AddNotice puts a notice from hush into the secret conversation with
// peer.
func (t *Tx) AddNotice(ctx context.Context, peer, text string) (int64, error) {
	return t.AddNoticeIn(ctx, peer, true, text)
}

// AddNoticeIn puts a notice from hush into the secret or the ordinary
// conversation with peer.
func (t *Tx) AddNoticeIn(ctx context.Context, peer string, secret bool, text string) (int64, error) {
	id, err := t.insertMessage(ctx, &Message{Peer: peer, Kind: KindNotice, Secret: secret, Body: text, SentAt: t.Now, At: t.Now})
	if err == nil {
		t.Notices = append(t.Notices, id)
	}
	return id, err
}

// MarkShown records that messages were shown at the given time, starting
// the countdown of those with a timer.
func (t *Tx) MarkShown(ctx context.Context, at time.Time, ids ...int64) error {
	for _, id := range ids {
		if _, err := t.x.ExecContext(ctx, `UPDATE messages SET shown = 1,
			expires_at = CASE WHEN timer > 0 AND expires_at IS NULL THEN ? + timer * 1000 ELSE expires_at END
			WHERE id = ? AND shown = 0`, at.UnixMilli(), id); err != nil {
			return err
		}
	}
	return nil
}

// SetReceipt records a receipt from peer for the outgoing messages of the
// secret or the ordinary conversation with peer named by ids: they become
// delivered or read (to, StateDelivered or StateRead), never backwards,
// and only from sent or delivered (docs/multidevice.md section 5). Ids of
// messages not sent to peer change nothing. It returns how many changed.
func (t *Tx) SetReceipt(ctx context.Context, peer string, secret bool, to State, ids []content.ID) (int, error) {
	if to != StateDelivered && to != StateRead {
		return 0, fmt.Errorf("store: %v is not a receipt's state", to)
	}
	n := 0
	for _, id := range ids {
		r, err := t.x.ExecContext(ctx, `UPDATE messages SET state = ?
			WHERE peer = ? AND outgoing = 1 AND secret = ? AND msg_id = ? AND kind = ?
			AND (state = ? OR (state = ? AND ? = ?))`,
			to, peer, secret, id[:], KindText, StateSent, StateDelivered, to, StateRead)
		if err != nil {
			return n, err
		}
		k, err := r.RowsAffected()
		if err != nil {
			return n, err
		}
		n += int(k)
	}
	return n, nil
}

// IncomingIDs returns the local ids of the messages received from peer in
// the secret or the ordinary conversation with the sender ids ids (those
// not here are left out).
func (t *Tx) IncomingIDs(ctx context.Context, peer string, secret bool, ids []content.ID) ([]int64, error) {
	var out []int64
	for _, id := range ids {
		var local int64
		err := t.x.QueryRowContext(ctx, "SELECT id FROM messages WHERE peer = ? AND outgoing = 0 AND secret = ? AND msg_id = ?",
			peer, secret, id[:]).Scan(&local)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return out, err
		}
		out = append(out, local)
	}
	return out, nil
}

// SetSent records the server's acceptance of an outgoing message: its
// countdown starts now, and its outbox row is done.
//
// A done row (its message no longer pending) is not deleted here but by
// the next AddOutgoing, in the transaction that writes the next row into
// the pages it frees: deleted here, with secure_delete, the pages of a
// row with a whole request (27 KB for an ordinary message to 10 devices, as
// rows of a hush before December 2026 held: seven pages) would be written
// as zeros in this transaction and written again by the next send
// (BenchmarkOrdinaryFanOut, docs/performance.md). A done
// row holds only what was sent (ciphertexts, the history record sealed
// under the account's history key, franking commitments), as the server
// did; deleting the message deletes it too (ON DELETE CASCADE).
func (t *Tx) SetSent(ctx context.Context, id, serverID int64) error {
	_, err := t.x.ExecContext(ctx, `UPDATE messages SET state = ?, server_id = ?,
		expires_at = CASE WHEN timer > 0 AND expires_at IS NULL THEN ? + timer * 1000 ELSE expires_at END
		WHERE id = ?`, StateSent, serverID, t.Now.UnixMilli(), id)
	return err
}

// outboxLive is the condition of an outbox row still to send: its
// message is pending (SetSent leaves the row, see there).
const outboxLive = "(SELECT state FROM messages WHERE messages.id = outbox.message) = 1"

func init() {
	if StatePending != 1 {
		panic("store: outboxLive names StatePending as 1")
	}
}

// SetFailed marks an outgoing message as not sent and drops its outbox row.
func (t *Tx) SetFailed(ctx context.Context, id int64) error {
	if _, err := t.x.ExecContext(ctx, "UPDATE messages SET state = ? WHERE id = ?", StateFailed, id); err != nil {
		return err
	}
	_, err := t.x.ExecContext(ctx, "DELETE FROM outbox WHERE message = ?", id)
	return err
}

// Expire deletes the messages whose time is up at now and returns their
// ids. The caller checkpoints the WAL afterwards.
func (t *Tx) Expire(ctx context.Context, now time.Time) ([]int64, error) {
	rows, err := t.x.QueryContext(ctx, "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ? RETURNING id", now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// NextExpiry returns the earliest expiry time, or zero.
func (t *q) NextExpiry(ctx context.Context) (time.Time, error) {
	var exp sql.NullInt64
	if err := t.x.QueryRowContext(ctx, "SELECT MIN(expires_at) FROM messages WHERE expires_at IS NOT NULL").Scan(&exp); err != nil {
		return time.Time{}, err
	}
	if !exp.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(exp.Int64), nil
}

// Outgoing is an encrypted message waiting for the server's acceptance.
type Outgoing struct {
	Message    int64 // the messages row
	Peer       string
	Device     uint32
	Identity   []byte // the recipient identity key it was encrypted for
	Type       int
	Ciphertext []byte
	ExpiresIn  int64 // seconds, the server's expiry hint
	// Request, when set, makes this an ordinary (or a group) message; Device,
	// Identity, Type and Ciphertext are then unused. An ordinary message's
	// row holds only a mark that it is encrypted again when sent (the
	// client's ordinaryAgain); a row of an older hush holds the whole body of
	// POST /v1/ordinary/messages (JSON api.OrdinarySend), one ciphertext per
	// device.
	Request []byte
	// Blobs are the blob ids the message carries (a secret message's; an
	// ordinary one has them in Request).
	Blobs []string
	// Commitment is the secret message's franking commitment
	// (docs/franking.md), sent beside its ciphertext; nil when not franked.
	// An ordinary message's are in Request, one per device.
	Commitment []byte
}

// AddOutgoing queues an encrypted message.
func (t *Tx) AddOutgoing(ctx context.Context, o *Outgoing) error {
	ident, ct := o.Identity, o.Ciphertext
	if ident == nil {
		ident = []byte{}
	}
	if ct == nil {
		ct = []byte{}
	}
	var blobs any
	if len(o.Blobs) > 0 {
		blobs = strings.Join(o.Blobs, ",")
	}
	// The rows SetSent left go first, so that this one takes their pages.
	if _, err := t.x.ExecContext(ctx, "DELETE FROM outbox WHERE NOT "+outboxLive); err != nil {
		return err
	}
	_, err := t.x.ExecContext(ctx, `INSERT INTO outbox (message, peer, device, identity, type, ciphertext, expires_in, request, blobs, commitment)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message) DO UPDATE SET peer = excluded.peer, device = excluded.device,
		identity = excluded.identity, type = excluded.type, ciphertext = excluded.ciphertext, request = excluded.request,
		blobs = excluded.blobs, commitment = excluded.commitment`,
		o.Message, o.Peer, o.Device, ident, o.Type, ct, o.ExpiresIn, o.Request, blobs, o.Commitment)
	return err
}

// Outbox lists the queued messages (their rows still to send), oldest
// first.
func (t *q) Outbox(ctx context.Context) ([]*Outgoing, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT message, peer, device, identity, type, ciphertext, expires_in, request, blobs, commitment FROM outbox WHERE "+outboxLive+" ORDER BY message")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Outgoing
	for rows.Next() {
		var o Outgoing
		var blobs sql.NullString
		if err := rows.Scan(&o.Message, &o.Peer, &o.Device, &o.Identity, &o.Type, &o.Ciphertext, &o.ExpiresIn, &o.Request, &blobs, &o.Commitment); err != nil {
			return nil, err
		}
		if blobs.String != "" {
			o.Blobs = strings.Split(blobs.String, ",")
		}
		out = append(out, &o)
	}
	return out, rows.Err()
}

// Received reports whether the server's message id was processed already
// (a delivery repeated after a lost acknowledgement).
func (t *Tx) Received(ctx context.Context, serverID int64) (bool, error) {
	var one int
	err := t.x.QueryRowContext(ctx, "SELECT 1 FROM received WHERE server_id = ?", serverID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SetReceived records that the server's message id was processed, and
// forgets those older than before (the server keeps nothing that long).
func (t *Tx) SetReceived(ctx context.Context, serverID int64, before time.Time) error {
	if _, err := t.x.ExecContext(ctx, "INSERT OR IGNORE INTO received (server_id, at) VALUES (?, ?)", serverID, t.Now.UnixMilli()); err != nil {
		return err
	}
	_, err := t.x.ExecContext(ctx, "DELETE FROM received WHERE at < ?", before.UnixMilli())
	return err
}
