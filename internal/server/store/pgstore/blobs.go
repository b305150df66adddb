package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hushmsg/hush/internal/server/store"
)

// Blobs (issue 11, docs/operations.md "Blobs"): the metadata in blobs and
// blob_grants, as in SQLite; the bytes, so that every node serves every
// blob, in blob_chunks: one row per uploaded chunk (at most a chunk's
// size, 8 MiB by default), keyed by its offset, deleted with its blob (ON
// DELETE CASCADE, in the transaction that deletes the blob's row).

var _ store.BlobData = (*Store)(nil)

const blobCols = `id, account, device, size, received, created, expires, deadline, sent`

func scanBlob(r pgx.Row) (store.Blob, error) {
	var b store.Blob
	err := r.Scan(&b.ID, &b.Owner.Account, &b.Owner.Device, &b.Size, &b.Received, &b.Created, &b.ExpiresAt, &b.Deadline, &b.Sent)
	return b, notFound(err)
}

// CreateBlob implements store.Store. The account row's lock orders the
// quota checks of one account, on every node.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, q store.BlobQuota) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := mustAffect(tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, b.Owner.Account)); err != nil {
			return err
		}
		var n int
		var sum int64
		if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(sum(size), 0) FROM blobs WHERE account = $1`, b.Owner.Account).Scan(&n, &sum); err != nil {
			return err
		}
		if n+1 > q.Count || sum+b.Size > q.Bytes {
			return store.ErrQuotaExceeded
		}
		tag, err := tx.Exec(ctx, `INSERT INTO blobs (`+blobCols+`) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, false)
			ON CONFLICT (id) DO NOTHING`, b.ID, b.Owner.Account, int64(b.Owner.Device), b.Size, b.Created, b.ExpiresAt, b.Deadline)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrConflict
		}
		return nil
	})
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, id []byte) (store.Blob, error) {
	b, err := scanBlob(s.pool.QueryRow(ctx, `SELECT `+blobCols+` FROM blobs WHERE id = $1`, id))
	return b, wrap(err)
}

// BlobGranted implements store.Store.
func (s *Store) BlobGranted(ctx context.Context, id []byte, ref store.DeviceRef) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_grants WHERE blob = $1 AND account = $2 AND device = $3)`,
		id, ref.Account, int64(ref.Device)).Scan(&ok)
	return ok, wrap(err)
}

// advance is AdvanceBlob inside tx.
func advance(ctx context.Context, tx pgx.Tx, id []byte, from, to int64) error {
	tag, err := tx.Exec(ctx, `UPDATE blobs SET received = $3 WHERE id = $1 AND received = $2 AND $3 <= size`, id, from, to)
	if err != nil {
		return err
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM blobs WHERE id = $1`, id).Scan(&one); err != nil {
		return notFound(err)
	}
	return store.ErrConflict
}

// AdvanceBlob implements store.Store.
func (s *Store) AdvanceBlob(ctx context.Context, id []byte, from, to int64) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return advance(ctx, tx, id, from, to) })
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, id []byte, ref store.DeviceRef) (bool, error) {
	var gone bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		gone = false
		var owner store.DeviceRef
		var sent bool
		if err := tx.QueryRow(ctx, `SELECT account, device, sent FROM blobs WHERE id = $1 FOR UPDATE`, id).Scan(&owner.Account, &owner.Device, &sent); err != nil {
			return notFound(err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM blob_grants WHERE blob = $1 AND account = $2 AND device = $3`, id, ref.Account, int64(ref.Device))
		if err != nil {
			return err
		}
		switch {
		case tag.RowsAffected() > 0:
			var left bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_grants WHERE blob = $1)`, id).Scan(&left); err != nil || left {
				return err
			}
		case owner != ref:
			return store.ErrNotFound
		case sent:
			return store.ErrConflict
		}
		gone = true
		_, err = tx.Exec(ctx, `DELETE FROM blobs WHERE id = $1`, id)
		return err
	})
	return gone, err
}

// DeleteExpiredBlobs implements store.Store. Rows another transaction
// holds (a send naming the blob) are skipped, for the next sweep.
func (s *Store) DeleteExpiredBlobs(ctx context.Context, now int64, limit int) ([][]byte, error) {
	var ids [][]byte
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM blobs WHERE id IN (SELECT id FROM blobs b WHERE expires <= $1
			OR (sent AND NOT EXISTS (SELECT 1 FROM blob_grants g WHERE g.blob = b.id))
			LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id`, now, limit)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil || len(ids) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM blob_grants WHERE blob = ANY($1)`, ids)
		return err
	})
	return ids, err
}

// querier is a transaction: a pgx.Tx, or a connection in a transaction
// begun by a statement (the writer's).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// lockBlobs locks the rows of the blobs msgs name, in id order (so that
// two sends cannot deadlock), and returns them by id.
func lockBlobs(ctx context.Context, tx querier, msgs []*store.Message) (map[string]*store.Blob, error) {
	var ids [][]byte
	for _, m := range msgs {
		ids = append(ids, m.Blobs...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.SortFunc(ids, func(a, b []byte) int { return slices.Compare(a, b) })
	ids = slices.CompactFunc(ids, func(a, b []byte) bool { return string(a) == string(b) })
	rows, err := tx.Query(ctx, `SELECT `+blobCols+` FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*store.Blob, len(ids))
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		b, err := scanBlob(r)
		out[string(b.ID)] = &b
		return struct{}{}, err
	})
	return out, err
}

// usable says whether m may carry its blobs (store.BlobStore).
func usable(blobs map[string]*store.Blob, m *store.Message) bool {
	for _, id := range m.Blobs {
		b := blobs[string(id)]
		if b == nil || b.Owner != m.From || !b.Complete() || b.ExpiresAt <= m.Timestamp {
			return false
		}
	}
	return true
}

// grantBlobs lets the recipients of msgs (stored, usable) download their
// blobs and brings the blobs' expiry down to the messages'.
func grantBlobs(ctx context.Context, tx querier, blobs map[string]*store.Blob, msgs []*store.Message) error {
	var g struct {
		blob     [][]byte
		acct, dv []int64
	}
	changed := make(map[string]bool)
	for _, m := range msgs {
		for _, id := range m.Blobs {
			b := blobs[string(id)]
			g.blob, g.acct, g.dv = append(g.blob, id), append(g.acct, m.To.Account), append(g.dv, int64(m.To.Device))
			if !b.Sent {
				b.Sent, b.ExpiresAt = true, b.Deadline
			}
			b.ExpiresAt = min(b.ExpiresAt, m.ExpiresAt)
			changed[string(id)] = true
		}
	}
	if len(g.blob) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO blob_grants (blob, account, device)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) ON CONFLICT DO NOTHING`, g.blob, g.acct, g.dv); err != nil {
		return err
	}
	var ids [][]byte
	var exps []int64
	for id := range changed {
		ids, exps = append(ids, []byte(id)), append(exps, blobs[id].ExpiresAt)
	}
	_, err := tx.Exec(ctx, `UPDATE blobs SET sent = true, expires = u.e FROM unnest($1::bytea[], $2::bigint[]) AS u(i, e)
		WHERE blobs.id = u.i`, ids, exps)
	return err
}

// WriteBlob implements store.BlobData: the chunk is read into memory (it
// is at most a chunk's size, which the server bounds) and stored with the
// blob's new Received in one transaction.
func (s *Store) WriteBlob(ctx context.Context, b store.Blob, off, n int64, r io.Reader) error {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("pgstore: reading chunk: %w", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := advance(ctx, tx, b.ID, off, off+n); err != nil {
			return err
		}
		// Rows past off cannot be (Received moves with its chunk); the
		// delete keeps a retried write correct anyway.
		if _, err := tx.Exec(ctx, `DELETE FROM blob_chunks WHERE blob = $1 AND off >= $2`, b.ID, off); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO blob_chunks (blob, off, data) VALUES ($1, $2, $3)`, b.ID, off, buf)
		return err
	})
}

// OpenBlob implements store.BlobData: the reader fetches one chunk row at
// a time, the one holding the read position.
func (s *Store) OpenBlob(ctx context.Context, b store.Blob) (io.ReadSeekCloser, error) {
	return &chunkReader{s: s, ctx: ctx, id: b.ID, size: b.Received}, nil
}

// RemoveBlob implements store.BlobData. The chunks went with the blob's
// row already; this catches any left behind. PostgreSQL does not
// overwrite deleted rows: see docs/security.md for what that leaves.
func (s *Store) RemoveBlob(ctx context.Context, id []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM blob_chunks WHERE blob = $1`, id)
		return err
	})
}

type chunkReader struct {
	s    *Store
	ctx  context.Context
	id   []byte
	size int64
	pos  int64
	off  int64 // of chunk
	data []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.pos >= c.size {
		return 0, io.EOF
	}
	if c.data == nil || c.pos < c.off || c.pos >= c.off+int64(len(c.data)) {
		c.data = nil
		err := c.s.pool.QueryRow(c.ctx, `SELECT off, data FROM blob_chunks WHERE blob = $1 AND off <= $2
			ORDER BY off DESC LIMIT 1`, c.id, c.pos).Scan(&c.off, &c.data)
		if err != nil {
			return 0, wrap(notFound(err))
		}
		if c.pos >= c.off+int64(len(c.data)) {
			return 0, errors.New("pgstore: blob chunks have a gap")
		}
	}
	end := min(c.off+int64(len(c.data)), c.size)
	n := copy(p, c.data[c.pos-c.off:end-c.off])
	c.pos += int64(n)
	return n, nil
}

func (c *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.pos
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("pgstore: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("pgstore: negative position")
	}
	c.pos = offset
	return offset, nil
}

func (c *chunkReader) Close() error { c.data = nil; return nil }
