package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/attach"
	"github.com/hushmsg/hush/internal/content"
)

// AttachState is where an attachment of a message is on this device
// (column attachments.state).
type AttachState int

// Attachment states.
const (
	// AttachPending: received, not downloaded yet (a later receive run
	// tries again).
	AttachPending AttachState = 0
	// AttachSaved: the file is at Path.
	AttachSaved AttachState = 1
	// AttachRefused: the blob failed its digest, tag (MAC) or SHA-256 check, or
	// the server no longer has it: nothing was saved, and nothing will be.
	AttachRefused AttachState = 2
)

func (s AttachState) String() string {
	switch s {
	case AttachPending:
		return "pending"
	case AttachSaved:
		return "saved"
	case AttachRefused:
		return "refused"
	}
	return fmt.Sprintf("attach-state(%d)", int(s))
}

// Attachment is a file of a message: what the content said of it, and
// where it is here.
type Attachment struct {
	content.Attachment
	State AttachState
	// Path is the saved file (absolute), once State is AttachSaved; for an
	// outgoing message, this home's copy of the file sent.
	Path string
}

// attachmentMeta is the sealed part of an attachments row.
type attachmentMeta struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"type,omitempty"`
	Key         []byte `json:"key"`
	Digest      []byte `json:"digest"`
	SHA256      []byte `json:"sha256"`
	BlobID      string `json:"blob"`
	Scheme      uint32 `json:"scheme,omitempty"` // attach.Scheme; absent: v1
}

func attachmentAD(msg int64, idx int) string { return fmt.Sprintf("%d/%d", msg, idx) }

func (t *Tx) insertAttachments(ctx context.Context, msg int64, as []Attachment) error {
	for i, a := range as {
		b, err := json.Marshal(attachmentMeta{Name: a.Name, Size: a.Size, ContentType: a.ContentType, Key: a.Key[:],
			Digest: a.Digest[:], SHA256: a.SHA256[:], BlobID: a.BlobID, Scheme: uint32(a.Scheme)})
		if err != nil {
			return err
		}
		var path any
		if a.Path != "" {
			path = a.Path
		}
		if _, err := t.x.ExecContext(ctx, "INSERT INTO attachments (message, idx, meta, state, path) VALUES (?, ?, ?, ?, ?)",
			msg, i, t.s.seal.seal(b, "attachments", "meta", attachmentAD(msg, i)), a.State, path); err != nil {
			return err
		}
	}
	return nil
}

// attachments loads the attachments of the messages ms, in one query.
func (t *q) attachments(ctx context.Context, ms []*Message) error {
	if len(ms) == 0 {
		return nil
	}
	lo, hi := ms[0].ID, ms[0].ID
	byID := make(map[int64]*Message, len(ms))
	for _, m := range ms {
		lo, hi = min(lo, m.ID), max(hi, m.ID)
		byID[m.ID] = m
	}
	rows, err := t.x.QueryContext(ctx, "SELECT message, idx, meta, state, path FROM attachments WHERE message BETWEEN ? AND ? ORDER BY message, idx", lo, hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var msg int64
		var idx int
		var sealed []byte
		var a Attachment
		var path sql.NullString
		if err := rows.Scan(&msg, &idx, &sealed, &a.State, &path); err != nil {
			return err
		}
		m := byID[msg]
		if m == nil {
			continue
		}
		b, err := t.s.seal.open(sealed, "attachments", "meta", attachmentAD(msg, idx))
		if err != nil {
			return err
		}
		var meta attachmentMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return fmt.Errorf("store: attachment %d of message %d: %w", idx, msg, err)
		}
		a.Name, a.Size, a.ContentType, a.BlobID, a.Path = meta.Name, meta.Size, meta.ContentType, meta.BlobID, path.String
		a.Scheme = attach.Scheme(meta.Scheme)
		copy(a.Key[:], meta.Key)
		copy(a.Digest[:], meta.Digest)
		copy(a.SHA256[:], meta.SHA256)
		m.Attachments = append(m.Attachments, a)
	}
	return rows.Err()
}

// SetAttachment records where attachment idx of message msg is now.
func (t *Tx) SetAttachment(ctx context.Context, msg int64, idx int, state AttachState, path string) error {
	var p any
	if path != "" {
		p = path
	}
	r, err := t.x.ExecContext(ctx, "UPDATE attachments SET state = ?, path = ? WHERE message = ? AND idx = ?", state, p, msg, idx)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// PendingAttachments returns the ids of messages with an attachment not
// downloaded yet, oldest first.
func (t *q) PendingAttachments(ctx context.Context) ([]int64, error) {
	rows, err := t.x.QueryContext(ctx, "SELECT DISTINCT message FROM attachments WHERE state = ? ORDER BY message", AttachPending)
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

// ExpiringFiles returns the saved files of the messages whose time is up
// at now: Expire deletes their rows, and the caller the files.
func (t *Tx) ExpiringFiles(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := t.x.QueryContext(ctx, `SELECT a.path FROM attachments a JOIN messages m ON a.message = m.id
		WHERE m.expires_at IS NOT NULL AND m.expires_at <= ? AND a.path IS NOT NULL`, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ExpiringPendingBlobs returns the blob ids of the files still pending
// (never downloaded) of the messages that expire by now: the device will
// never fetch them, and tells the server so.
func (t *Tx) ExpiringPendingBlobs(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := t.x.QueryContext(ctx, `SELECT a.message, a.idx, a.meta FROM attachments a JOIN messages m ON a.message = m.id
		WHERE m.expires_at IS NOT NULL AND m.expires_at <= ? AND a.state = ?`, now.UnixMilli(), AttachPending)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var msg int64
		var idx int
		var sealed []byte
		if err := rows.Scan(&msg, &idx, &sealed); err != nil {
			return nil, err
		}
		b, err := t.s.seal.open(sealed, "attachments", "meta", attachmentAD(msg, idx))
		if err != nil {
			return nil, err
		}
		var meta attachmentMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, fmt.Errorf("store: attachment %d of message %d: %w", idx, msg, err)
		}
		out = append(out, meta.BlobID)
	}
	return out, rows.Err()
}

// Upload is an attachment upload under way, remembered so that a send
// run again after an interruption resumes it (the same scheme, key and
// IV or salt give the same ciphertext: internal/attach.NewSealer).
type Upload struct {
	ID     int64
	Peer   string
	Secret bool
	File   string // absolute path of the file sent
	Size   int64
	MTime  time.Time
	BlobID string
	Key    attach.Key
	IV     [attach.IVSize]byte // the v1 IV, or the v2 salt
	// Scheme is the format (sealed with the key: a byte after the IV,
	// none for v1, as rows made before format v2 have).
	Scheme attach.Scheme
}

// FindUpload returns the upload of the file (path, size, modification
// time) to peer in that conversation, or ErrNotFound.
func (t *q) FindUpload(ctx context.Context, peer string, secret bool, file string, size int64, mtime time.Time) (*Upload, error) {
	u := &Upload{Peer: peer, Secret: secret, File: file, Size: size, MTime: mtime}
	var sealed []byte
	err := t.x.QueryRowContext(ctx, "SELECT id, blob, secrets FROM uploads WHERE peer = ? AND secret = ? AND file = ? AND size = ? AND mtime = ? ORDER BY id DESC LIMIT 1",
		peer, secret, file, size, mtime.UnixNano()).Scan(&u.ID, &u.BlobID, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	b, err := t.s.seal.open(sealed, "uploads", "secrets", rowID(u.ID))
	if err != nil {
		return nil, err
	}
	u.Scheme = attach.V1
	switch len(b) {
	case attach.KeySize + attach.IVSize:
	case attach.KeySize + attach.IVSize + 1:
		u.Scheme = attach.Scheme(b[len(b)-1])
	default:
		return nil, errors.New("store: bad upload row")
	}
	copy(u.Key[:], b)
	copy(u.IV[:], b[attach.KeySize:])
	return u, nil
}

// AddUpload remembers an upload; u.ID is set.
func (t *Tx) AddUpload(ctx context.Context, u *Upload) error {
	if err := t.x.QueryRowContext(ctx, "INSERT INTO uploads (peer, secret, file, size, mtime, blob, secrets, created) VALUES (?, ?, ?, ?, ?, ?, x'', ?) RETURNING id",
		u.Peer, u.Secret, u.File, u.Size, u.MTime.UnixNano(), u.BlobID, t.Now.UnixMilli()).Scan(&u.ID); err != nil {
		return err
	}
	secrets := append(u.Key[:len(u.Key):len(u.Key)], u.IV[:]...)
	if u.Scheme > attach.V1 {
		if u.Scheme > 255 {
			return fmt.Errorf("store: upload scheme %d", u.Scheme)
		}
		secrets = append(secrets, byte(u.Scheme))
	}
	_, err := t.x.ExecContext(ctx, "UPDATE uploads SET secrets = ? WHERE id = ?", t.s.seal.seal(secrets, "uploads", "secrets", rowID(u.ID)), u.ID)
	return err
}

// DeleteUpload forgets an upload (sent with its message, or given up).
func (t *Tx) DeleteUpload(ctx context.Context, id int64) error {
	_, err := t.x.ExecContext(ctx, "DELETE FROM uploads WHERE id = ?", id)
	return err
}

// DeleteUploadsBefore forgets uploads started before at (the server has
// dropped their blobs) and returns how many.
func (t *Tx) DeleteUploadsBefore(ctx context.Context, at time.Time) (int64, error) {
	r, err := t.x.ExecContext(ctx, "DELETE FROM uploads WHERE created < ?", at.UnixMilli())
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
