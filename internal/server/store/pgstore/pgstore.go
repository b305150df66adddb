// Package pgstore is the [store.Store] for a cluster: PostgreSQL (pgx,
// pgxpool), shared by every hushd node. Open applies the schema migrations
// (migrate.go) under an advisory lock, so that nodes starting together
// migrate once.
//
// Schema: accounts, devices (PRIMARY KEY (account, device)), the four
// prekey tables of the secret device and the four ordinary_ ones of every
// device (issue 9), blocks, and messages with PRIMARY KEY (account, device,
// id): one index serves a mailbox's reads and counts; messages_by_pub_id
// serves acknowledgements (by the random id clients see),
// messages_by_sender each sender's share of a mailbox and blocks,
// messages_by_expiry DeleteExpired. Message ids come from the sequence
// message_ids and stay inside the server.
//
// Mailbox writes are group-committed: one writer goroutine per node takes
// every EnqueueBatch waiting and stores them in one transaction, so one
// WAL flush covers many callers, and releases each caller after COMMIT
// (synchronous_commit on: durable). The transaction is two round trips:
// BEGIN, lock the recipients' device rows (one key at a time, in
// (account, device) order, so that writers on several nodes cannot
// deadlock), count their queues and take ids from the sequence; then
// INSERT and COMMIT. Holding the recipient's row lock while taking ids
// makes a mailbox's ids increase in commit order across nodes: a reader
// that sees id n of a device has seen every smaller id of that device,
// which is what lets a delivery session read "everything after the last
// id sent" without gaps. A missing device row gives ErrNotFound
// (RemoveDevice deletes it under the same lock). (Two or three writers
// per node were tried: on a machine whose CPU is the bound, the smaller
// batches cost PostgreSQL more CPU per message and the latency grew.)
//
// One-time prekeys are taken with DELETE ... WHERE key = (SELECT ... LIMIT
// 1 FOR UPDATE SKIP LOCKED) RETURNING: concurrent takers, on any node,
// skip each other's rows, so no key is handed out twice and no taker waits.
//
// Acknowledgements and TouchDevice are lazy (the interface allows it):
// they run on a second pool whose sessions have synchronous_commit off,
// so they never wait for a WAL flush. Acknowledgements are also grouped:
// one goroutine (acker) sends the DELETEs of every Ack waiting in one
// pipeline, one implicit transaction.
//
// SetNotify reports this node's commits only.
package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hushmsg/hush/internal/server/store"
)

// maxBatch bounds how many EnqueueBatch calls share one transaction.
const maxBatch = 256

// Store is a PostgreSQL-backed store.Store. Open makes one.
type Store struct {
	pool *pgxpool.Pool // synchronous commits
	lazy *pgxpool.Pool // synchronous_commit off: acks, touches

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *enqueueOp
	done   chan struct{} // the writer ended
	acks   chan *ackOp
	acked  chan struct{}  // the acker ended
	bg     sync.WaitGroup // lazy writes in flight

	notify atomic.Pointer[func([]*store.Message)]

	// Logger, if set before use, gets what fails in the background (rate
	// limiter statements); default slog.Default().
	Logger *slog.Logger
	// OnCommit, if set before use, is called after each group commit.
	OnCommit func(ops int, d time.Duration)
}

var _ store.Store = (*Store)(nil)

type enqueueOp struct {
	msgs                   []*store.Message
	maxQueue, maxPerSender int
	res                    []store.EnqueueResult
	done                   chan error
}

// Open connects to the database at url (a postgres:// URL or a libpq
// key=value string; search_path may be given as a parameter), migrates
// the schema and starts the writer.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	lcfg := cfg.Copy()
	lcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	lcfg.MaxConns = max(2, cfg.MaxConns/2)
	lazy, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		lazy.Close()
		return nil, err
	}
	s := &Store{pool: pool, lazy: lazy, ops: make(chan *enqueueOp, 4*maxBatch), done: make(chan struct{}),
		acks: make(chan *ackOp, 4*maxBatch), acked: make(chan struct{})}
	go s.writer()
	go s.acker()
	return s, nil
}

// MigrateURL connects to url, brings its schema to Version and
// disconnects (hushd migrate).
func MigrateURL(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	defer pool.Close()
	return Migrate(ctx, pool)
}

// Close lets the writer finish what is queued, waits for lazy writes and
// disconnects.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	close(s.acks)
	s.mu.Unlock()
	<-s.done
	<-s.acked
	s.bg.Wait()
	s.pool.Close()
	s.lazy.Close()
	return nil
}

// SetNotify implements store.Store. It reports this node's commits.
func (s *Store) SetNotify(f func([]*store.Message)) { s.notify.Store(&f) }

func (s *Store) log(msg string, err error) {
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Error(msg, "err", err)
}

// wrap turns a failure to reach the database into store.ErrUnavailable,
// keeping the cause for the log.
func wrap(err error) error {
	if err == nil || isDomainError(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code[:2] != "08" && pgErr.Code[:2] != "57" && pgErr.Code[:2] != "53" {
		// A statement the server refused: a bug or a schema problem,
		// not the database being away.
		return fmt.Errorf("pgstore: %w", err)
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

func isDomainError(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrUsernameTaken, store.ErrTooManyDevices,
		store.ErrMailboxFull, store.ErrNotSecretDevice, store.ErrNoKeys, store.ErrClosed, store.ErrUnavailable, store.ErrConflict, store.ErrHistoryFull, store.ErrTooManyLinks, store.ErrLinkState,
		store.ErrQuotaExceeded, store.ErrBlobUnusable} {
		if errors.Is(err, e) {
			return true
		}
	}
	var me *store.MismatchError
	return errors.As(err, &me)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// tx runs fn in a transaction with synchronous commit.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return wrap(pgx.BeginFunc(ctx, s.pool, fn))
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func mustAffect(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ---- accounts and devices ----

const accountCols = `id, username, display_name, password_hash, COALESCE(secret_device, 0), identity_key, created, account_identity_key`

func scanAccount(r pgx.Row) (store.Account, error) {
	var a store.Account
	err := r.Scan(&a.ID, &a.Username, &a.DisplayName, &a.PasswordHash, &a.SecretDevice, &a.IdentityKey, &a.Created, &a.AccountIdentityKey)
	return a, notFound(err)
}

const deviceCols = `account, device, name, token_hash, registration_id, created, last_seen, ordinary_reg_id`

func scanDevice(r pgx.Row) (store.Device, error) {
	var d store.Device
	err := r.Scan(&d.Ref.Account, &d.Ref.Device, &d.Name, &d.TokenHash, &d.RegistrationID, &d.Created, &d.LastSeen, &d.OrdinaryRegistrationID)
	return d, notFound(err)
}

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, a store.NewAccount, d store.NewDevice) (store.Account, store.Device, error) {
	var acc store.Account
	var dev store.Device
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO accounts (username, display_name, password_hash, next_device, created)
			VALUES ($1, $2, $3, 2, $4) ON CONFLICT (username) DO NOTHING RETURNING id`,
			a.Username, a.DisplayName, a.PasswordHash, a.Created).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrUsernameTaken
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO devices (account, device, name, token_hash, created, last_seen)
			VALUES ($1, 1, $2, $3, $4, $4)`, id, d.Name, d.TokenHash, d.Created); err != nil {
			return err
		}
		acc = store.Account{ID: id, Username: a.Username, DisplayName: a.DisplayName,
			PasswordHash: a.PasswordHash, Created: a.Created}
		dev = store.Device{Ref: store.DeviceRef{Account: id, Device: 1}, Name: d.Name,
			TokenHash: d.TokenHash, Created: d.Created, LastSeen: d.Created}
		return nil
	})
	return acc, dev, err
}

// AccountByUsername implements store.Store.
func (s *Store) AccountByUsername(ctx context.Context, username string) (store.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE username = $1`, username))
	return a, wrap(err)
}

// AccountByID implements store.Store.
func (s *Store) AccountByID(ctx context.Context, id int64) (store.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	return a, wrap(err)
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, account int64, d store.NewDevice, max int) (store.Device, error) {
	var dev store.Device
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		dev, err = addDevice(ctx, tx, account, d, max)
		return err
	})
	return dev, err
}

func addDevice(ctx context.Context, tx pgx.Tx, account int64, d store.NewDevice, max int) (store.Device, error) {
	// The account row's lock serializes AddDevice calls of one account.
	var next uint32
	if err := tx.QueryRow(ctx, `SELECT next_device FROM accounts WHERE id = $1 FOR UPDATE`, account).Scan(&next); err != nil {
		return store.Device{}, notFound(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM devices WHERE account = $1`, account).Scan(&n); err != nil {
		return store.Device{}, err
	}
	if n >= max {
		return store.Device{}, store.ErrTooManyDevices
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET next_device = $1 WHERE id = $2`, next+1, account); err != nil {
		return store.Device{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO devices (account, device, name, token_hash, created, last_seen)
		VALUES ($1, $2, $3, $4, $5, $5)`, account, next, d.Name, d.TokenHash, d.Created); err != nil {
		return store.Device{}, err
	}
	return store.Device{Ref: store.DeviceRef{Account: account, Device: next}, Name: d.Name,
		TokenHash: d.TokenHash, Created: d.Created, LastSeen: d.Created}, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, ref store.DeviceRef) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE account = $1 AND device = $2`,
		ref.Account, ref.Device))
	return d, wrap(err)
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, account int64) ([]store.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE account = $1 ORDER BY device`, account)
	if err != nil {
		return nil, wrap(err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Device, error) { return scanDevice(r) })
	return ds, wrap(err)
}

// SetDeviceToken implements store.Store.
func (s *Store) SetDeviceToken(ctx context.Context, ref store.DeviceRef, tokenHash []byte) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return wrap(mustAffect(s.pool.Exec(ctx, `UPDATE devices SET token_hash = $1 WHERE account = $2 AND device = $3`,
		tokenHash, ref.Account, ref.Device)))
}

// TouchDevice implements store.Store; it does not wait for the write.
func (s *Store) TouchDevice(ctx context.Context, ref store.DeviceRef, t int64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = s.lazy.Exec(ctx, `UPDATE devices SET last_seen = $1 WHERE account = $2 AND device = $3 AND last_seen < $1`,
			t, ref.Account, ref.Device)
	})
	return nil
}

// secretKeys and ordinaryKeys are the prefixes of the two sets of prekey
// tables: the secret device's, and every device's ordinary ones.
const (
	secretKeys   = ""
	ordinaryKeys = "ordinary_"
)

func deleteKeys(ctx context.Context, tx pgx.Tx, prefix string, account int64, device *uint32) error {
	for _, t := range []string{"signed_prekeys", "prekeys", "kyber_prekeys", "kyber_last_resort"} {
		var err error
		if device == nil {
			_, err = tx.Exec(ctx, `DELETE FROM `+prefix+t+` WHERE account = $1`, account)
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM `+prefix+t+` WHERE account = $1 AND device = $2`, account, *device)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveDevice implements store.Store.
func (s *Store) RemoveDevice(ctx context.Context, ref store.DeviceRef) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// The account row before the device's, as every other transaction
		// that takes both does (MakeSecretDevice, AddDevice, LinkDevice, a
		// fanout with history): taken the other way round, a removal and
		// a send could deadlock.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, ref.Account); err != nil {
			return err
		}
		if err := mustAffect(tx.Exec(ctx, `DELETE FROM devices WHERE account = $1 AND device = $2`, ref.Account, ref.Device)); err != nil {
			return err
		}
		if err := deleteKeys(ctx, tx, secretKeys, ref.Account, &ref.Device); err != nil {
			return err
		}
		if err := deleteKeys(ctx, tx, ordinaryKeys, ref.Account, &ref.Device); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE account = $1 AND device = $2`, ref.Account, ref.Device); err != nil {
			return err
		}
		// Blobs sent to it no longer wait for it (the sweep deletes
		// those that wait for nobody).
		if _, err := tx.Exec(ctx, `DELETE FROM blob_grants WHERE account = $1 AND device = $2`, ref.Account, ref.Device); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE accounts SET secret_device = NULL, identity_key = NULL
			WHERE id = $1 AND secret_device = $2`, ref.Account, ref.Device)
		return err
	})
}

// ---- prekeys ----

// MakeSecretDevice implements store.Store.
func (s *Store) MakeSecretDevice(ctx context.Context, ref store.DeviceRef, identityKey []byte, registrationID uint32, keys *store.Keys) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// Lock the account first, as SetKeys does.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, ref.Account); err != nil {
			return err
		}
		if err := mustAffect(tx.Exec(ctx, `UPDATE devices SET registration_id = $1 WHERE account = $2 AND device = $3`,
			registrationID, ref.Account, ref.Device)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET secret_device = $1, identity_key = $2 WHERE id = $3`,
			ref.Device, identityKey, ref.Account); err != nil {
			return err
		}
		if err := deleteKeys(ctx, tx, secretKeys, ref.Account, nil); err != nil {
			return err
		}
		if keys != nil {
			return setKeys(ctx, tx, secretKeys, ref, *keys)
		}
		return nil
	})
}

// SetKeys implements store.Store.
func (s *Store) SetKeys(ctx context.Context, ref store.DeviceRef, keys store.Keys) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// FOR SHARE: the secret device cannot change until we commit.
		var secret uint32
		if err := tx.QueryRow(ctx, `SELECT COALESCE(secret_device, 0) FROM accounts WHERE id = $1 FOR SHARE`, ref.Account).
			Scan(&secret); err != nil {
			return notFound(err)
		}
		if secret == 0 || secret != ref.Device {
			return store.ErrNotSecretDevice
		}
		return setKeys(ctx, tx, secretKeys, ref, keys)
	})
}

func setKeys(ctx context.Context, tx pgx.Tx, prefix string, ref store.DeviceRef, k store.Keys) error {
	a, d := ref.Account, ref.Device
	b := &pgx.Batch{}
	if sk := k.SignedPreKey; sk != nil {
		b.Queue(`INSERT INTO `+prefix+`signed_prekeys (account, device, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account, device) DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key,
			signature = excluded.signature`, a, d, sk.ID, sk.PublicKey, sk.Signature)
	}
	if lr := k.KyberLastResort; lr != nil {
		b.Queue(`INSERT INTO `+prefix+`kyber_last_resort (account, device, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account, device) DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key,
			signature = excluded.signature`, a, d, lr.ID, lr.PublicKey, lr.Signature)
	}
	if len(k.PreKeys) > 0 {
		ids := make([]int64, len(k.PreKeys))
		pubs := make([][]byte, len(k.PreKeys))
		for i, p := range k.PreKeys {
			ids[i], pubs[i] = int64(p.ID), p.PublicKey
		}
		b.Queue(`DELETE FROM `+prefix+`prekeys WHERE account = $1 AND device = $2`, a, d)
		b.Queue(`INSERT INTO `+prefix+`prekeys (account, device, key_id, public_key)
			SELECT $1, $2, k, p FROM unnest($3::bigint[], $4::bytea[]) AS u(k, p)
			ON CONFLICT (account, device, key_id) DO UPDATE SET public_key = excluded.public_key`, a, d, ids, pubs)
	}
	if len(k.KyberPreKeys) > 0 {
		ids := make([]int64, len(k.KyberPreKeys))
		pubs := make([][]byte, len(k.KyberPreKeys))
		sigs := make([][]byte, len(k.KyberPreKeys))
		for i, p := range k.KyberPreKeys {
			ids[i], pubs[i], sigs[i] = int64(p.ID), p.PublicKey, p.Signature
		}
		b.Queue(`DELETE FROM `+prefix+`kyber_prekeys WHERE account = $1 AND device = $2`, a, d)
		b.Queue(`INSERT INTO `+prefix+`kyber_prekeys (account, device, key_id, public_key, signature)
			SELECT $1, $2, k, p, s FROM unnest($3::bigint[], $4::bytea[], $5::bytea[]) AS u(k, p, s)
			ON CONFLICT (account, device, key_id) DO UPDATE SET public_key = excluded.public_key,
			signature = excluded.signature`, a, d, ids, pubs, sigs)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// KeyCounts implements store.Store.
func (s *Store) KeyCounts(ctx context.Context, ref store.DeviceRef) (store.KeyCounts, error) {
	return s.keyCounts(ctx, secretKeys, ref)
}

// OrdinaryKeyCounts implements store.Store.
func (s *Store) OrdinaryKeyCounts(ctx context.Context, ref store.DeviceRef) (store.KeyCounts, error) {
	return s.keyCounts(ctx, ordinaryKeys, ref)
}

func (s *Store) keyCounts(ctx context.Context, prefix string, ref store.DeviceRef) (store.KeyCounts, error) {
	var c store.KeyCounts
	var spk, lr *int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM `+prefix+`prekeys WHERE account = $1 AND device = $2),
		(SELECT count(*) FROM `+prefix+`kyber_prekeys WHERE account = $1 AND device = $2),
		(SELECT key_id FROM `+prefix+`signed_prekeys WHERE account = $1 AND device = $2),
		(SELECT key_id FROM `+prefix+`kyber_last_resort WHERE account = $1 AND device = $2)`,
		ref.Account, ref.Device).Scan(&c.PreKeys, &c.KyberPreKeys, &spk, &lr)
	if spk != nil {
		v := uint32(*spk)
		c.SignedPreKeyID = &v
	}
	if lr != nil {
		v := uint32(*lr)
		c.KyberLastResort = &v
	}
	return c, wrap(err)
}

// TakeBundle implements store.Store. The one-time keys are taken with FOR
// UPDATE SKIP LOCKED: a concurrent taker (on any node) skips a key another
// transaction is taking instead of waiting for it and then finding it gone.
func (s *Store) TakeBundle(ctx context.Context, ref store.DeviceRef) (store.Bundle, error) {
	var b store.Bundle
	err := s.tx(ctx, func(tx pgx.Tx) error {
		a, d := ref.Account, ref.Device
		var secret uint32
		if err := tx.QueryRow(ctx, `SELECT COALESCE(secret_device, 0), identity_key FROM accounts WHERE id = $1`, a).
			Scan(&secret, &b.IdentityKey); err != nil {
			return notFound(err)
		}
		if secret == 0 || secret != d {
			return store.ErrNotFound
		}
		b.Device = d
		if err := tx.QueryRow(ctx, `SELECT registration_id FROM devices WHERE account = $1 AND device = $2`, a, d).
			Scan(&b.RegistrationID); err != nil {
			return notFound(err)
		}
		return takeKeys(ctx, tx, secretKeys, ref, &b)
	})
	if err != nil {
		return store.Bundle{}, err
	}
	return b, nil
}

// takeKeys fills b with ref's signed prekey and takes (deletes) one
// one-time EC and Kyber prekey, or uses the last-resort Kyber prekey.
func takeKeys(ctx context.Context, tx pgx.Tx, prefix string, ref store.DeviceRef, b *store.Bundle) error {
	a, d := ref.Account, ref.Device
	err := tx.QueryRow(ctx, `SELECT key_id, public_key, signature FROM `+prefix+`signed_prekeys WHERE account = $1 AND device = $2`, a, d).
		Scan(&b.SignedPreKey.ID, &b.SignedPreKey.PublicKey, &b.SignedPreKey.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNoKeys
	} else if err != nil {
		return err
	}
	var pk store.PreKey
	err = tx.QueryRow(ctx, `DELETE FROM `+prefix+`prekeys WHERE account = $1 AND device = $2 AND key_id = (
		SELECT key_id FROM `+prefix+`prekeys WHERE account = $1 AND device = $2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING key_id, public_key`, a, d).Scan(&pk.ID, &pk.PublicKey)
	switch {
	case err == nil:
		b.PreKey = &pk
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	err = tx.QueryRow(ctx, `DELETE FROM `+prefix+`kyber_prekeys WHERE account = $1 AND device = $2 AND key_id = (
		SELECT key_id FROM `+prefix+`kyber_prekeys WHERE account = $1 AND device = $2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING key_id, public_key, signature`, a, d).
		Scan(&b.KyberPreKey.ID, &b.KyberPreKey.PublicKey, &b.KyberPreKey.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		b.KyberLastResort = true
		err = tx.QueryRow(ctx, `SELECT key_id, public_key, signature FROM `+prefix+`kyber_last_resort WHERE account = $1 AND device = $2`, a, d).
			Scan(&b.KyberPreKey.ID, &b.KyberPreKey.PublicKey, &b.KyberPreKey.Signature)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNoKeys
		}
	}
	return err
}

// ---- ordinary conversations (docs/multidevice.md) ----

// SetAccountIdentity implements store.Store.
func (s *Store) SetAccountIdentity(ctx context.Context, account int64, key []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var have []byte
		if err := tx.QueryRow(ctx, `SELECT account_identity_key FROM accounts WHERE id = $1 FOR UPDATE`, account).Scan(&have); err != nil {
			return notFound(err)
		}
		if have != nil {
			if !bytes.Equal(have, key) {
				return store.ErrConflict
			}
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE accounts SET account_identity_key = $1 WHERE id = $2`, key, account)
		return err
	})
}

// SetOrdinaryKeys implements store.Store.
func (s *Store) SetOrdinaryKeys(ctx context.Context, ref store.DeviceRef, registrationID uint32, keys store.Keys) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		return setOrdinaryKeys(ctx, tx, ref, registrationID, keys)
	})
}

func setOrdinaryKeys(ctx context.Context, tx pgx.Tx, ref store.DeviceRef, registrationID uint32, keys store.Keys) error {
	// The device row's lock orders this upload with fanouts, which lock
	// the rows of the devices they check.
	var have uint32
	if err := tx.QueryRow(ctx, `SELECT ordinary_reg_id FROM devices WHERE account = $1 AND device = $2 FOR UPDATE`,
		ref.Account, ref.Device).Scan(&have); err != nil {
		return notFound(err)
	}
	if have == 0 && (keys.SignedPreKey == nil || keys.KyberLastResort == nil) {
		return store.ErrNoKeys
	}
	if _, err := tx.Exec(ctx, `UPDATE devices SET ordinary_reg_id = $1 WHERE account = $2 AND device = $3`,
		registrationID, ref.Account, ref.Device); err != nil {
		return err
	}
	return setKeys(ctx, tx, ordinaryKeys, ref, keys)
}

// TakeOrdinaryBundles implements store.Store.
func (s *Store) TakeOrdinaryBundles(ctx context.Context, account int64, devices []uint32) ([]store.Bundle, error) {
	var out []store.Bundle
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		var ik []byte
		if err := tx.QueryRow(ctx, `SELECT account_identity_key FROM accounts WHERE id = $1`, account).Scan(&ik); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT device, ordinary_reg_id FROM devices
			WHERE account = $1 AND ordinary_reg_id != 0 ORDER BY device`, account)
		if err != nil {
			return err
		}
		var b store.Bundle
		var bs []store.Bundle
		_, err = pgx.ForEachRow(rows, []any{&b.Device, &b.RegistrationID}, func() error {
			if devices == nil || slices.Contains(devices, b.Device) {
				bs = append(bs, store.Bundle{Device: b.Device, RegistrationID: b.RegistrationID, IdentityKey: ik})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range bs {
			if err := takeKeys(ctx, tx, ordinaryKeys, store.DeviceRef{Account: account, Device: bs[i].Device}, &bs[i]); err != nil {
				return err
			}
		}
		out = bs
		return nil
	})
	return out, err
}

// EnqueueFanout implements store.Store, in a transaction of its own (not
// group-committed): it locks every device row of the accounts involved, in
// (account, device) order as the writer does, so that no device changes
// while the fanout checks the device lists and the mailboxes' ids increase
// in commit order as for EnqueueBatch.
func (s *Store) EnqueueFanout(ctx context.Context, f store.Fanout) ([]store.EnqueueResult, error) {
	res := make([]store.EnqueueResult, len(f.Messages))
	var committed []*store.Message
	accts := make([]int64, 0, len(f.Accounts))
	for _, fa := range f.Accounts {
		accts = append(accts, fa.Account)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		clear(res)
		committed = nil
		if len(f.History) > 0 {
			// The account row before the device rows, as MakeSecretDevice
			// and AddDevice take them.
			if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, f.HistoryAccount); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT account, device, ordinary_reg_id FROM devices WHERE account = ANY($1)
			ORDER BY account, device FOR UPDATE`, accts)
		if err != nil {
			return err
		}
		have := make(map[int64]map[uint32]uint32)
		exists := make(map[store.DeviceRef]bool)
		var r store.DeviceRef
		var reg uint32
		_, err = pgx.ForEachRow(rows, []any{&r.Account, &r.Device, &reg}, func() error {
			exists[r] = true
			if reg != 0 {
				if have[r.Account] == nil {
					have[r.Account] = make(map[uint32]uint32)
				}
				have[r.Account][r.Device] = reg
			}
			return nil
		})
		if err != nil {
			return err
		}
		var mm []store.Mismatch
		for _, fa := range f.Accounts {
			if m, ok := store.Compare(fa, have[fa.Account]); !ok {
				mm = append(mm, m)
			}
		}
		if len(mm) > 0 {
			return &store.MismatchError{Accounts: mm}
		}
		queued := make(map[store.DeviceRef]int)
		fromQueued := make(map[store.DeviceRef]int)
		var qa, qd, qf []int64
		for _, m := range f.Messages {
			if !exists[m.To] {
				return store.ErrNotFound
			}
			qa, qd, qf = append(qa, m.To.Account), append(qd, int64(m.To.Device)), append(qf, m.From.Account)
		}
		rows, err = tx.Query(ctx, `SELECT u.a, u.v,
			(SELECT count(*) FROM messages m WHERE m.account = u.a AND m.device = u.v),
			(SELECT count(*) FROM messages m WHERE m.account = u.a AND m.device = u.v AND m.from_account = u.f)
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(a, v, f)`, qa, qd, qf)
		if err != nil {
			return err
		}
		var n, ns int
		_, err = pgx.ForEachRow(rows, []any{&r.Account, &r.Device, &n, &ns}, func() error {
			queued[r], fromQueued[r] = n, ns
			return nil
		})
		if err != nil {
			return err
		}
		blobs, err := lockBlobs(ctx, tx, f.Messages)
		if err != nil {
			return err
		}
		for _, m := range f.Messages {
			if !usable(blobs, m) {
				return store.ErrBlobUnusable
			}
		}
		stored := make(map[int64]bool)
		count := 0
		for i, m := range f.Messages {
			if queued[m.To] >= f.MaxQueue || fromQueued[m.To] >= f.MaxPerSender {
				res[i].Err = store.ErrMailboxFull
				continue
			}
			stored[m.To.Account] = true
			count++
		}
		for _, fa := range f.Accounts {
			if f.SkipFull || fa.Except != 0 || stored[fa.Account] {
				continue
			}
			for _, m := range f.Messages {
				if m.To.Account == fa.Account {
					return store.ErrMailboxFull
				}
			}
		}
		if len(f.History) > 0 {
			if _, err := depositHistory(ctx, tx, f.HistoryAccount, f.History, f.MaxHistory); err != nil {
				return err
			}
		}
		if count == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT nextval('message_ids') FROM generate_series(1, $1)`, count)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		slices.Sort(ids)
		var cols struct {
			id, pub, acct, dev, facct, fdev, created, expires []int64
			typ                                               []int32
			content, franking                                 [][]byte
		}
		next := 0
		for i, m := range f.Messages {
			if res[i].Err != nil {
				continue
			}
			id := ids[next]
			next++
			res[i].ID = id
			cp := *m
			cp.ID = id
			committed = append(committed, &cp)
			cols.id = append(cols.id, id)
			cols.pub = append(cols.pub, m.PublicID)
			cols.acct = append(cols.acct, m.To.Account)
			cols.dev = append(cols.dev, int64(m.To.Device))
			cols.facct = append(cols.facct, m.From.Account)
			cols.fdev = append(cols.fdev, int64(m.From.Device))
			cols.typ = append(cols.typ, m.Type)
			cols.content = append(cols.content, m.Content)
			cols.franking = append(cols.franking, store.EncodeFranking(m.Franking))
			cols.created = append(cols.created, m.Timestamp)
			cols.expires = append(cols.expires, m.ExpiresAt)
		}
		if err := grantBlobs(ctx, tx, blobs, committed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO messages
			(id, pub_id, account, device, from_account, from_device, type, content, created, expires, franking)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
				$6::bigint[], $7::integer[], $8::bytea[], $9::bigint[], $10::bigint[], $11::bytea[])`,
			cols.id, cols.pub, cols.acct, cols.dev, cols.facct, cols.fdev, cols.typ, cols.content, cols.created, cols.expires, cols.franking)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(committed) > 0 {
		if f := s.notify.Load(); f != nil && *f != nil {
			(*f)(committed)
		}
	}
	for i, m := range f.Messages {
		m.ID = res[i].ID
	}
	return res, nil
}

// ---- history and recovery (docs/multidevice.md section 3) ----

// DepositHistory implements store.Store.
func (s *Store) DepositHistory(ctx context.Context, account int64, recs []store.HistoryRecord, max int) (int, error) {
	var n int
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = depositHistory(ctx, tx, account, recs, max)
		return err
	})
	return n, err
}

// depositHistory stores the records of recs whose ids are new. The account
// row's lock serializes the account's deposits: seqs increase in commit
// order, and a concurrent deposit of the same id finds the first one.
func depositHistory(ctx context.Context, tx pgx.Tx, account int64, recs []store.HistoryRecord, max int) (int, error) {
	var count, seq int64
	if err := tx.QueryRow(ctx, `SELECT history_count, history_seq FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, account).
		Scan(&count, &seq); err != nil {
		return 0, notFound(err)
	}
	ids := make([][]byte, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	rows, err := tx.Query(ctx, `SELECT id FROM history WHERE account = $1 AND id = ANY($2::bytea[])`, account, ids)
	if err != nil {
		return 0, err
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(recs))
	for _, id := range have {
		seen[string(id)] = true
	}
	var cols struct {
		seq       []int64
		id, blobs [][]byte
	}
	for _, r := range recs {
		if seen[string(r.ID)] {
			continue
		}
		seen[string(r.ID)] = true
		seq++
		cols.seq, cols.id, cols.blobs = append(cols.seq, seq), append(cols.id, r.ID), append(cols.blobs, r.Blob)
	}
	n := len(cols.seq)
	if n == 0 {
		return 0, nil
	}
	if count+int64(n) > int64(max) {
		return 0, store.ErrHistoryFull
	}
	if _, err := tx.Exec(ctx, `INSERT INTO history (account, seq, id, blob)
		SELECT $1, s, i, b FROM unnest($2::bigint[], $3::bytea[], $4::bytea[]) AS u(s, i, b)`, account, cols.seq, cols.id, cols.blobs); err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `UPDATE accounts SET history_count = $1, history_seq = $2 WHERE id = $3`, count+int64(n), seq, account)
	return n, err
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, account int64, after int64, limit, maxBytes int) ([]store.HistoryRecord, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, id, blob FROM history WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		account, after, limit+1)
	if err != nil {
		return nil, false, wrap(err)
	}
	defer rows.Close()
	var out []store.HistoryRecord
	size := 0
	for rows.Next() {
		if len(out) == limit || len(out) > 0 && size >= maxBytes {
			return out, true, nil
		}
		var r store.HistoryRecord
		if err := rows.Scan(&r.Seq, &r.ID, &r.Blob); err != nil {
			return nil, false, wrap(err)
		}
		size += len(r.Blob)
		out = append(out, r)
	}
	return out, false, wrap(rows.Err())
}

// SetRecovery implements store.Store.
func (s *Store) SetRecovery(ctx context.Context, account int64, version int64, blob []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if version == 1 {
			tag, err := tx.Exec(ctx, `INSERT INTO recovery (account, version, blob) VALUES ($1, 1, $2) ON CONFLICT DO NOTHING`, account, blob)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return store.ErrConflict
			}
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE recovery SET version = $1, blob = $2 WHERE account = $3 AND version = $4`,
			version, blob, account, version-1)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrConflict
		}
		return nil
	})
}

// Recovery implements store.Store.
func (s *Store) Recovery(ctx context.Context, account int64) (int64, []byte, error) {
	var v int64
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT version, blob FROM recovery WHERE account = $1`, account).Scan(&v, &b)
	return v, b, wrap(notFound(err))
}

// ---- abuse reports (docs/franking.md) ----

// AddReport implements store.Store.
func (s *Store) AddReport(ctx context.Context, r store.Report) (int64, error) {
	if s.isClosed() {
		return 0, store.ErrClosed
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO reports (account, device, created, tag, body) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tag) DO NOTHING RETURNING id`,
		r.Reporter.Account, int64(r.Reporter.Device), r.Created, r.Tag, r.Body).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrConflict
	}
	return id, wrap(err)
}

const reportCols = `id, account, device, created, tag, body`

func scanReport(r pgx.Row) (store.Report, error) {
	var rp store.Report
	err := r.Scan(&rp.ID, &rp.Reporter.Account, &rp.Reporter.Device, &rp.Created, &rp.Tag, &rp.Body)
	return rp, notFound(err)
}

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, after int64, limit int) ([]store.Report, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reportCols+` FROM reports WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap(err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Report, error) { return scanReport(r) })
	return rs, wrap(err)
}

// Report implements store.Store.
func (s *Store) Report(ctx context.Context, id int64) (store.Report, error) {
	r, err := scanReport(s.pool.QueryRow(ctx, `SELECT `+reportCols+` FROM reports WHERE id = $1`, id))
	return r, wrap(err)
}

// ---- links (docs/multidevice.md section 2) ----

const linkCols = `id, account, claim_hash, expires, state, hello_ephemeral, hello_mac, box_ephemeral, box, device`

func scanLink(r pgx.Row) (store.Link, error) {
	var l store.Link
	err := r.Scan(&l.ID, &l.Account, &l.ClaimHash, &l.ExpiresAt, &l.State, &l.HelloEphemeral, &l.HelloMAC, &l.BoxEphemeral, &l.Box, &l.Device)
	return l, notFound(err)
}

// CreateLink implements store.Store. The account row's lock serializes an
// account's link creations, so that the limit of open links holds.
func (s *Store) CreateLink(ctx context.Context, l store.Link, maxOpen int, now int64) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, l.Account); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM links WHERE account = $1 AND expires > $2 AND state != $3`,
			l.Account, now, int(store.LinkDone)).Scan(&open); err != nil {
			return err
		}
		if open >= maxOpen {
			return store.ErrTooManyLinks
		}
		tag, err := tx.Exec(ctx, `INSERT INTO links (id, account, claim_hash, expires, state) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO NOTHING`, l.ID, l.Account, l.ClaimHash, l.ExpiresAt, int(store.LinkWaiting))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrConflict
		}
		return nil
	})
}

// Link implements store.Store.
func (s *Store) Link(ctx context.Context, id []byte, now int64) (store.Link, error) {
	l, err := scanLink(s.pool.QueryRow(ctx, `SELECT `+linkCols+` FROM links WHERE id = $1 AND expires > $2`, id, now))
	return l, wrap(err)
}

// linkMove runs update (which names the link by id $1 and now $2 and must
// check the state) and, when it changed nothing, tells ErrNotFound from
// ErrLinkState: whether the link (of account, unless 0) is there.
func linkMove(ctx context.Context, tx pgx.Tx, id []byte, account, now int64, update string, args ...any) error {
	tag, err := tx.Exec(ctx, update, append([]any{id, now}, args...)...)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	var have int64
	if err := tx.QueryRow(ctx, `SELECT account FROM links WHERE id = $1 AND expires > $2`, id, now).Scan(&have); err != nil {
		return notFound(err)
	}
	if account != 0 && have != account {
		return store.ErrNotFound
	}
	return store.ErrLinkState
}

// LinkHello implements store.Store.
func (s *Store) LinkHello(ctx context.Context, id []byte, now int64, ephemeral, mac []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		return linkMove(ctx, tx, id, 0, now, `UPDATE links SET state = $5, hello_ephemeral = $3, hello_mac = $4
			WHERE id = $1 AND expires > $2 AND state = $6`, ephemeral, mac, int(store.LinkHelloed), int(store.LinkWaiting))
	})
}

// SetLinkBox implements store.Store.
func (s *Store) SetLinkBox(ctx context.Context, id []byte, account int64, now int64, ephemeral, box []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		return linkMove(ctx, tx, id, account, now, `UPDATE links SET state = $5, box_ephemeral = $3, box = $4
			WHERE id = $1 AND expires > $2 AND state = $6 AND account = $7`, ephemeral, box, int(store.LinkBoxed), int(store.LinkHelloed), account)
	})
}

// LinkDevice implements store.Store. It locks the link, then the account
// (as AddDevice), then the new device's row.
func (s *Store) LinkDevice(ctx context.Context, id []byte, now int64, d store.NewDevice, maxDevices int, registrationID uint32, keys store.Keys) (store.Device, error) {
	var dev store.Device
	err := s.tx(ctx, func(tx pgx.Tx) error {
		l, err := scanLink(tx.QueryRow(ctx, `SELECT `+linkCols+` FROM links WHERE id = $1 AND expires > $2 FOR UPDATE`, id, now))
		if err != nil {
			return err
		}
		if l.State != store.LinkBoxed {
			return store.ErrLinkState
		}
		if dev, err = addDevice(ctx, tx, l.Account, d, maxDevices); err != nil {
			return err
		}
		if err := setOrdinaryKeys(ctx, tx, dev.Ref, registrationID, keys); err != nil {
			return err
		}
		dev.OrdinaryRegistrationID = registrationID
		_, err = tx.Exec(ctx, `UPDATE links SET state = $1, device = $2, box = NULL, box_ephemeral = NULL WHERE id = $3`,
			int(store.LinkDone), dev.Ref.Device, id)
		return err
	})
	return dev, err
}

// DeleteLink implements store.Store.
func (s *Store) DeleteLink(ctx context.Context, id []byte, account int64) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return wrap(mustAffect(s.pool.Exec(ctx, `DELETE FROM links WHERE id = $1 AND account = $2`, id, account)))
}

// ---- blocks ----

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked int64) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO blocks (account, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING`, blocker, blocked); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM messages WHERE account = $1 AND from_account = $2`, blocker, blocked)
		return err
	})
	return wrap(err)
}

// Unblock implements store.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked int64) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM blocks WHERE account = $1 AND blocked = $2`, blocker, blocked)
	return wrap(err)
}

// Blocked implements store.Store.
func (s *Store) Blocked(ctx context.Context, blocker int64) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT blocked FROM blocks WHERE account = $1 ORDER BY blocked`, blocker)
	if err != nil {
		return nil, wrap(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, wrap(err)
}

// ---- messages ----

// EnqueueBatch implements store.Store: the writer group-commits it with
// the other calls waiting.
func (s *Store) EnqueueBatch(ctx context.Context, msgs []*store.Message, maxQueue, maxPerSender int) ([]store.EnqueueResult, error) {
	o := &enqueueOp{msgs: msgs, maxQueue: maxQueue, maxPerSender: maxPerSender, res: make([]store.EnqueueResult, len(msgs)), done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, store.ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	// Once queued the operation will run; waiting for it even when ctx is
	// done keeps "returned nil" equal to "durable".
	if err := <-o.done; err != nil {
		return nil, err
	}
	for i, m := range msgs {
		m.ID = o.res[i].ID
	}
	return o.res, nil
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*enqueueOp, 0, maxBatch)
	for first := range s.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		start := time.Now()
		committed, err := s.commit(batch)
		if err != nil {
			err = wrap(err)
			committed = nil
		}
		if f := s.OnCommit; f != nil {
			f(len(batch), time.Since(start))
		}
		if len(committed) > 0 {
			if f := s.notify.Load(); f != nil && *f != nil {
				(*f)(committed)
			}
		}
		for _, o := range batch {
			o.done <- err
		}
	}
}

// commit stores a batch of EnqueueBatch calls in one transaction and
// returns the messages stored, in id order.
func (s *Store) commit(batch []*enqueueOp) ([]*store.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var refs []store.DeviceRef
	total := 0
	for _, o := range batch {
		for _, m := range o.msgs {
			refs = append(refs, m.To)
		}
		total += len(o.msgs)
	}
	if total == 0 {
		return nil, nil
	}
	slices.SortFunc(refs, func(a, b store.DeviceRef) int {
		if a.Account != b.Account {
			return cmpInt(a.Account, b.Account)
		}
		return cmpInt(int64(a.Device), int64(b.Device))
	})
	refs = slices.Compact(refs)
	// Two round trips: BEGIN, lock the recipients, count their queues and
	// take ids; then insert and COMMIT. The lookups go one key at a time
	// (LATERAL), so that they are index scans whatever the statistics of a
	// table that churns say: a join let the planner choose sequential
	// scans of messages, whose dead rows grow until the next vacuum.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection left in a transaction (an error below) is closed, not
	// reused, by Release.
	defer conn.Release()
	committed, err := commitOn(ctx, conn.Conn(), batch, refs, total)
	if err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return nil, err
	}
	return committed, nil
}

// commitOn is commit's transaction on c.
func commitOn(ctx context.Context, c *pgx.Conn, batch []*enqueueOp, refs []store.DeviceRef, total int) ([]*store.Message, error) {
	accts := make([]int64, len(refs))
	devs := make([]int64, len(refs))
	for i, r := range refs {
		accts[i], devs[i] = r.Account, int64(r.Device)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// The nested loop takes the locks in the order of refs (sorted): no
	// deadlock with writers on other nodes.
	b.Queue(`SELECT d.account, d.device FROM unnest($1::bigint[], $2::bigint[]) AS u(a, v)
		CROSS JOIN LATERAL (SELECT account, device FROM devices WHERE account = u.a AND device = u.v FOR UPDATE) AS d`, accts, devs)
	// A mailbox's messages by sender account, in one index scan of
	// messages_by_sender: their sum is the queue.
	b.Queue(`SELECT u.a, u.v, m.f, m.n FROM unnest($1::bigint[], $2::bigint[]) AS u(a, v)
		CROSS JOIN LATERAL (SELECT from_account AS f, count(*) AS n FROM messages
			WHERE account = u.a AND device = u.v GROUP BY from_account) AS m`, accts, devs)
	// The newest message of each mailbox, for Message.Prev.
	b.Queue(`SELECT u.a, u.v, (SELECT max(id) FROM messages WHERE account = u.a AND device = u.v)
		FROM unnest($1::bigint[], $2::bigint[]) AS u(a, v)`, accts, devs)
	b.Queue(`SELECT nextval('message_ids') FROM generate_series(1, $1)`, total)
	br := c.SendBatch(ctx, b)
	exists := make(map[store.DeviceRef]bool, len(refs))
	queued := make(map[store.DeviceRef]int, len(refs))
	type pair struct {
		to   store.DeviceRef
		from int64
	}
	fromQueued := make(map[pair]int)
	prev := make(map[store.DeviceRef]int64, len(refs))
	var ids []int64
	err := func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		var r store.DeviceRef
		var n int
		var from int64
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if _, err = pgx.ForEachRow(rows, []any{&r.Account, &r.Device}, func() error { exists[r] = true; return nil }); err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&r.Account, &r.Device, &from, &n}, func() error {
			queued[r] += n
			fromQueued[pair{r, from}] = n
			return nil
		})
		if err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		var newest *int64
		_, err = pgx.ForEachRow(rows, []any{&r.Account, &r.Device, &newest}, func() error {
			if newest != nil {
				prev[r] = *newest
			}
			return nil
		})
		if err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	var all []*store.Message
	for _, o := range batch {
		all = append(all, o.msgs...)
	}
	blobs, err := lockBlobs(ctx, c, all) // no round trip without blobs
	if err != nil {
		return nil, err
	}

	var cols struct {
		id, pub, acct, dev, facct, fdev, created, expires []int64
		typ                                               []int32
		content, franking                                 [][]byte
	}
	next := 0
	committed := make([]*store.Message, 0, total)
	for _, o := range batch {
		for i, m := range o.msgs {
			switch {
			case !exists[m.To]:
				o.res[i] = store.EnqueueResult{Err: store.ErrNotFound}
				continue
			case queued[m.To] >= o.maxQueue, fromQueued[pair{m.To, m.From.Account}] >= o.maxPerSender:
				o.res[i] = store.EnqueueResult{Err: store.ErrMailboxFull}
				continue
			case !usable(blobs, m):
				o.res[i] = store.EnqueueResult{Err: store.ErrBlobUnusable}
				continue
			}
			queued[m.To]++
			fromQueued[pair{m.To, m.From.Account}]++
			id := ids[next]
			next++
			o.res[i] = store.EnqueueResult{ID: id}
			cp := *m
			cp.ID = id
			cp.Prev, cp.HasPrev = prev[m.To], true
			prev[m.To] = id
			committed = append(committed, &cp)
			cols.id = append(cols.id, id)
			cols.pub = append(cols.pub, m.PublicID)
			cols.acct = append(cols.acct, m.To.Account)
			cols.dev = append(cols.dev, int64(m.To.Device))
			cols.facct = append(cols.facct, m.From.Account)
			cols.fdev = append(cols.fdev, int64(m.From.Device))
			cols.typ = append(cols.typ, m.Type)
			cols.content = append(cols.content, m.Content)
			cols.franking = append(cols.franking, store.EncodeFranking(m.Franking))
			cols.created = append(cols.created, m.Timestamp)
			cols.expires = append(cols.expires, m.ExpiresAt)
		}
	}
	if len(committed) > 0 {
		if err := grantBlobs(ctx, c, blobs, committed); err != nil { // no round trip without blobs
			return nil, err
		}
	}
	b = &pgx.Batch{}
	if len(committed) > 0 {
		b.Queue(`INSERT INTO messages
			(id, pub_id, account, device, from_account, from_device, type, content, created, expires, franking)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
				$6::bigint[], $7::integer[], $8::bytea[], $9::bigint[], $10::bigint[], $11::bytea[])`,
			cols.id, cols.pub, cols.acct, cols.dev, cols.facct, cols.fdev, cols.typ, cols.content, cols.created, cols.expires, cols.franking)
	}
	// synchronous_commit is on: COMMIT answers once the WAL is flushed.
	b.Queue("COMMIT")
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return committed, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Pending implements store.Store.
func (s *Store) Pending(ctx context.Context, to store.DeviceRef, after, now int64, limit int) ([]*store.Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, pub_id, from_account, from_device, type, content, created, expires, franking
		FROM messages WHERE account = $1 AND device = $2 AND id > $3 AND expires > $4 ORDER BY id LIMIT $5`,
		to.Account, to.Device, after, now, limit)
	if err != nil {
		return nil, wrap(err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Message, error) {
		m := &store.Message{To: to}
		var fr []byte
		err := r.Scan(&m.ID, &m.PublicID, &m.From.Account, &m.From.Device, &m.Type, &m.Content, &m.Timestamp, &m.ExpiresAt, &fr)
		if err == nil {
			m.Franking, err = store.DecodeFranking(fr)
		}
		return m, err
	})
	return ms, wrap(err)
}

// Ack implements store.Store. It is committed without waiting for the WAL
// flush (synchronous_commit off): after a crash of the database an
// acknowledged message may come back, never a lost one. It returns once
// the messages are deleted, in a pipeline with the other Acks waiting.
func (s *Store) Ack(ctx context.Context, to store.DeviceRef, ids []int64) error {
	o := &ackOp{to: to, ids: ids, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	s.acks <- o
	s.mu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the acker will still delete them
	}
}

type ackOp struct {
	to   store.DeviceRef
	ids  []int64
	done chan error
}

// acker deletes what every Ack waiting names, in one round trip.
func (s *Store) acker() {
	defer close(s.acked)
	batch := make([]*ackOp, 0, maxBatch)
	for first := range s.acks {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.acks:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		b := &pgx.Batch{}
		for _, o := range batch {
			b.Queue(`DELETE FROM messages WHERE account = $1 AND device = $2 AND pub_id = ANY($3)`, o.to.Account, o.to.Device, o.ids)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := wrap(s.lazy.SendBatch(ctx, b).Close())
		cancel()
		for _, o := range batch {
			o.done <- err
		}
	}
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(ctx context.Context, now int64) (int, error) {
	if s.isClosed() {
		return 0, store.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM messages WHERE expires <= $1`, now)
	if err != nil {
		return 0, wrap(err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM links WHERE expires <= $1`, now); err != nil {
		return 0, wrap(err)
	}
	// The server calls this every minute: sweep the rate limiter too.
	if err := s.deleteFullBuckets(ctx, time.Now().UnixMilli()); err != nil {
		return 0, wrap(err)
	}
	return int(tag.RowsAffected()), nil
}

// QueueDepth implements store.Store.
func (s *Store) QueueDepth(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n, wrap(err)
}
