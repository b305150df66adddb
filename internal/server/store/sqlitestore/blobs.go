package sqlitestore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hushmsg/hush/internal/server/store"
)

// blobTables hold the metadata of blobs (issue 11; their bytes are files,
// internal/server/store/blobfiles) and, in blob_grants, the devices a
// stored message let download each.
const blobTables = `
CREATE TABLE blobs (
	id BLOB PRIMARY KEY,
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	size INTEGER NOT NULL, received INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL, expires INTEGER NOT NULL, deadline INTEGER NOT NULL,
	sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX blobs_by_account ON blobs(account);
CREATE INDEX blobs_by_expiry ON blobs(expires);
CREATE TABLE blob_grants (
	blob BLOB NOT NULL, account INTEGER NOT NULL, device INTEGER NOT NULL,
	PRIMARY KEY (blob, account, device)
);
CREATE INDEX blob_grants_by_device ON blob_grants(account, device);`

const blobCols = `id, account, device, size, received, created, expires, deadline, sent`

func scanBlob(r interface{ Scan(...any) error }) (store.Blob, error) {
	var b store.Blob
	err := r.Scan(&b.ID, &b.Owner.Account, &b.Owner.Device, &b.Size, &b.Received, &b.Created, &b.ExpiresAt, &b.Deadline, &b.Sent)
	return b, notFound(err)
}

// CreateBlob implements store.Store.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, q store.BlobQuota) error {
	return s.do(ctx, true, func(w *wtx) error {
		var n int
		var sum int64
		if err := w.row(`SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs WHERE account = ?`, b.Owner.Account).Scan(&n, &sum); err != nil {
			return err
		}
		if n+1 > q.Count || sum+b.Size > q.Bytes {
			return store.ErrQuotaExceeded
		}
		var one int
		switch err := w.row(`SELECT 1 FROM blobs WHERE id = ?`, b.ID).Scan(&one); {
		case err == nil:
			return store.ErrConflict
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err := w.exec(`INSERT INTO blobs (`+blobCols+`) VALUES (?, ?, ?, ?, 0, ?, ?, ?, 0)`,
			b.ID, b.Owner.Account, b.Owner.Device, b.Size, b.Created, b.ExpiresAt, b.Deadline)
		return err
	})
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, id []byte) (store.Blob, error) {
	return scanBlob(s.rdb.QueryRowContext(ctx, `SELECT `+blobCols+` FROM blobs WHERE id = ?`, id))
}

// BlobGranted implements store.Store.
func (s *Store) BlobGranted(ctx context.Context, id []byte, ref store.DeviceRef) (bool, error) {
	var ok bool
	err := s.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM blob_grants WHERE blob = ? AND account = ? AND device = ?)`,
		id, ref.Account, ref.Device).Scan(&ok)
	return ok, err
}

// AdvanceBlob implements store.Store.
func (s *Store) AdvanceBlob(ctx context.Context, id []byte, from, to int64) error {
	return s.do(ctx, true, func(w *wtx) error {
		r, err := w.exec(`UPDATE blobs SET received = ? WHERE id = ? AND received = ? AND ? <= size`, to, id, from, to)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		if err := w.row(`SELECT 1 FROM blobs WHERE id = ?`, id).Scan(&one); err != nil {
			return notFound(err)
		}
		return store.ErrConflict
	})
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, id []byte, ref store.DeviceRef) (bool, error) {
	var gone bool
	err := s.do(ctx, true, func(w *wtx) error {
		gone = false
		var owner store.DeviceRef
		var sent bool
		if err := w.row(`SELECT account, device, sent FROM blobs WHERE id = ?`, id).Scan(&owner.Account, &owner.Device, &sent); err != nil {
			return notFound(err)
		}
		r, err := w.exec(`DELETE FROM blob_grants WHERE blob = ? AND account = ? AND device = ?`, id, ref.Account, ref.Device)
		if err != nil {
			return err
		}
		switch n, err := r.RowsAffected(); {
		case err != nil:
			return err
		case n > 0:
			var left bool
			if err := w.row(`SELECT EXISTS (SELECT 1 FROM blob_grants WHERE blob = ?)`, id).Scan(&left); err != nil || left {
				return err
			}
		case owner != ref:
			return store.ErrNotFound
		case sent:
			return store.ErrConflict
		}
		gone = true
		_, err = w.exec(`DELETE FROM blobs WHERE id = ?`, id)
		return err
	})
	return gone, err
}

// DeleteExpiredBlobs implements store.Store.
func (s *Store) DeleteExpiredBlobs(ctx context.Context, now int64, limit int) ([][]byte, error) {
	var ids [][]byte
	err := s.do(ctx, true, func(w *wtx) error {
		ids = nil
		rows, err := w.s.wconn.QueryContext(w.ctx, `SELECT id FROM blobs WHERE expires <= ?
			OR (sent = 1 AND NOT EXISTS (SELECT 1 FROM blob_grants WHERE blob = blobs.id)) LIMIT ?`, now, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := w.exec(`DELETE FROM blob_grants WHERE blob = ?`, id); err != nil {
				return err
			}
			if _, err := w.exec(`DELETE FROM blobs WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// checkBlobs refuses (ErrBlobUnusable) a message naming a blob that is
// missing, incomplete, expired at the message's time, or not the sending
// device's.
func (w *wtx) checkBlobs(m *store.Message) error {
	for _, id := range m.Blobs {
		b, err := scanBlob(w.row(`SELECT `+blobCols+` FROM blobs WHERE id = ?`, id))
		if errors.Is(err, store.ErrNotFound) {
			return store.ErrBlobUnusable
		} else if err != nil {
			return err
		}
		if b.Owner != m.From || !b.Complete() || b.ExpiresAt <= m.Timestamp {
			return store.ErrBlobUnusable
		}
	}
	return nil
}

// grantBlobs lets m's recipient download m's blobs, and brings their
// expiry down to m's (checkBlobs passed).
func (w *wtx) grantBlobs(m *store.Message) error {
	for _, id := range m.Blobs {
		if _, err := w.exec(`INSERT OR IGNORE INTO blob_grants (blob, account, device) VALUES (?, ?, ?)`,
			id, m.To.Account, m.To.Device); err != nil {
			return err
		}
		if e, ok := w.blobExp[string(id)]; ok && e <= m.ExpiresAt {
			continue
		}
		if _, err := w.exec(`UPDATE blobs SET expires = CASE WHEN sent THEN MIN(expires, ?1) ELSE MIN(deadline, ?1) END,
			sent = 1 WHERE id = ?2`, m.ExpiresAt, id); err != nil {
			return err
		}
		if w.blobExp == nil {
			w.blobExp = make(map[string]int64)
		}
		w.blobExp[string(id)] = m.ExpiresAt
	}
	return nil
}
