// Package sqlitestore is the default [store.Store]: one embedded SQLite
// database (modernc.org/sqlite, no cgo) in WAL mode with synchronous=FULL,
// so that a committed transaction has been fsynced.
//
// Every write goes through one writer goroutine that owns the only write
// connection. It takes all the operations that are waiting, runs them in one
// transaction (each multi-statement operation inside its own savepoint, so
// that one failing operation does not undo the others), commits once, and
// only then releases each caller with its result. This group commit makes
// one fsync cover many callers, which is what keeps durable writes fast.
// Reads use a separate pool of connections and never wait for the writer.
//
// Delivered messages leave no copy behind: secure_delete is on (SQLite
// overwrites deleted content and freed pages with zeros), and the frames
// of the WAL that carried a message's insert do not outlive its
// acknowledgement for long: the checkpointer copies the WAL twice a
// second, so that the writer starts it over and writes over its old
// frames; under load it cuts off whatever part of the file no transaction
// of the last few seconds wrote over, and when the writer is idle it
// truncates the WAL to zero bytes (checkpointer). The journals of the
// savepoints (page images taken before an operation changes them) stay in
// memory (temp_store=MEMORY): SQLite would otherwise spill them to a
// temporary file past 64 KiB, which cost the writer system calls on every
// batch and put copies of message pages in a file outside the data
// folder.
package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/hushmsg/hush/internal/server/store"
)

// maxBatch bounds how many operations share one transaction.
const maxBatch = 1024

// Store is a SQLite-backed store.Store. Open makes one.
type Store struct {
	rdb   *sql.DB // readers
	wdb   *sql.DB // the writer's database handle (one connection)
	wconn *sql.Conn
	cdb   *sql.DB // the checkpointer's (one connection)
	// The reads of a pair's first message (the recipient's account, its
	// devices and blocks, the sender's username), prepared once on the
	// readers: modernc's parse of the statement was half of each read's
	// CPU, and a thousand pairs starting at once make thousands of them.
	qAccountByID, qAccountByName, qDevice, qDevices, qBlocked *sql.Stmt

	stopCkpt, ckptDone chan struct{}
	// pause is held by the writer while it runs a batch, and by the
	// checkpointer while it copies the last frames, truncates the WAL or
	// sets the writer's walMax (its journal_size_limit, -1 until set).
	pause    sync.Mutex
	walMax   int64
	pageSize int64 // the database's, for the WAL's size

	// Acknowledgements wait here and are applied at the start of the next
	// batch, so that they ride along with other writes instead of each
	// taking a turn of the writer. ackKick is set while a wake-up for
	// them is pending: ackDelay after the first ack, in case no other
	// write comes (an ack-only commit would cost an fsync, and a send
	// arriving meanwhile would wait for it).
	ackMu   sync.Mutex
	acks    []ackReq
	ackKick bool

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	done   chan struct{}

	notify atomic.Pointer[func([]*store.Message)]

	// Owned by the writer goroutine.
	counts map[store.DeviceRef]mailbox // per device, cached
	pairs  map[pair]senderCount        // per device and sender account, cached
	ins    *sql.Stmt
	del    *sql.Stmt
	// ordDevs lists an account's ordinary devices: a group send checks
	// up to 4,096 accounts, and preparing it for each was half the cost
	// of the check.
	ordDevs *sql.Stmt
	// Savepoint statements, prepared once: preparing them for every
	// operation cost more than the operations.
	spBegin, spRollback, spRelease *sql.Stmt

	// Stats, read by metrics.
	commits   atomic.Int64
	batchOps  atomic.Int64
	lastBatch atomic.Int64
	OnCommit  func(ops int, d time.Duration) // optional, set before use
}

var _ store.Store = (*Store)(nil)

// op is one unit of work for the writer. fn runs inside the batch's
// transaction; done (nil for fire-and-forget operations) gets its error after
// the commit.
type op struct {
	fn    func(w *wtx) error
	multi bool // fn runs several statements: wrap it in a savepoint
	done  chan error
}

// mailbox is the writer's cached view of a device's queue.
type mailbox struct {
	n     int    // messages queued, exactly
	acked uint64 // acknowledgements that deleted some of them, since cached
}

// pair is a recipient device and a sender account.
type pair struct {
	to   store.DeviceRef
	from int64
}

// senderCount is the cached number of messages a sender account has
// queued for a device: never less than the true number, since
// acknowledgements (which do not say whose messages they delete, so that
// an ack costs one plain DELETE) leave it as it was. It is exact when
// counted and then incremented on every insert, for as long as the
// device's acked stays at ackedAt: see [wtx.senderLen].
type senderCount struct {
	n       int
	exact   bool
	ackedAt uint64
}

// maxPairs bounds the cache of per-sender queue lengths.
const maxPairs = 1 << 16

// resetCounts forgets the cached queue lengths: they are read again.
func (s *Store) resetCounts() {
	clear(s.counts)
	clear(s.pairs)
}

type ackReq struct {
	to  store.DeviceRef
	ids []int64
}

// wtx is what an op's fn gets: the writer connection inside a transaction.
type wtx struct {
	s         *Store
	ctx       context.Context
	committed []*store.Message // messages inserted by this batch
	// blobExp is, per blob id, the expiry this transaction brought it
	// down to (grantBlobs): a fan-out of one blob to many devices updates
	// its row once. Cleared when an operation is rolled back.
	blobExp map[string]int64
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) {
	return w.s.wconn.ExecContext(w.ctx, q, args...)
}

func (w *wtx) row(q string, args ...any) *sql.Row {
	return w.s.wconn.QueryRowContext(w.ctx, q, args...)
}

const schema = `
CREATE TABLE IF NOT EXISTS accounts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	username TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	secret_device INTEGER,
	identity_key BLOB,
	next_device INTEGER NOT NULL,
	created INTEGER NOT NULL,
	account_identity_key BLOB,
	history_count INTEGER NOT NULL DEFAULT 0,
	history_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS devices (
	account INTEGER NOT NULL REFERENCES accounts(id),
	device INTEGER NOT NULL,
	name TEXT NOT NULL,
	token_hash BLOB NOT NULL,
	registration_id INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	ordinary_reg_id INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS kyber_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS kyber_last_resort (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS blocks (
	account INTEGER NOT NULL, blocked INTEGER NOT NULL,
	PRIMARY KEY (account, blocked)
);
CREATE TABLE IF NOT EXISTS messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	from_account INTEGER NOT NULL, from_device INTEGER NOT NULL,
	type INTEGER NOT NULL, content BLOB NOT NULL,
	created INTEGER NOT NULL, expires INTEGER NOT NULL,
	pub_id INTEGER NOT NULL,
	franking BLOB
);
` + ordinaryKeyTables + historyTables + linkTables + reportTables + blobTables + `
PRAGMA user_version = 7;
`

// reportTables hold abuse reports (docs/franking.md): the body is the
// report as the server encodes it; tag, the reported message's reporting
// tag, is unique so that a message is reported once.
const reportTables = `
CREATE TABLE reports (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	created INTEGER NOT NULL,
	tag BLOB NOT NULL UNIQUE,
	body BLOB NOT NULL
);`

// linkTables hold the short-lived links that relay the linking of a new
// device (docs/multidevice.md section 2); the expiry sweep deletes them.
const linkTables = `
CREATE TABLE links (
	id BLOB PRIMARY KEY,
	account INTEGER NOT NULL, claim_hash BLOB NOT NULL,
	expires INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,
	hello_ephemeral BLOB, hello_mac BLOB, box_ephemeral BLOB, box BLOB,
	device INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX links_by_account ON links(account);
CREATE INDEX links_by_expiry ON links(expires);`

// historyTables hold each account's encrypted history records and its
// recovery blob (docs/multidevice.md section 3). history_count and
// history_seq in accounts count the records and number them.
const historyTables = `
CREATE TABLE history (
	account INTEGER NOT NULL, seq INTEGER NOT NULL,
	id BLOB NOT NULL, blob BLOB NOT NULL,
	PRIMARY KEY (account, seq),
	UNIQUE (account, id)
);
CREATE TABLE recovery (
	account INTEGER PRIMARY KEY,
	version INTEGER NOT NULL, blob BLOB NOT NULL
);`

// ordinaryKeyTables hold the ordinary prekeys of every device
// (docs/multidevice.md), beside the secret device's.
const ordinaryKeyTables = `
CREATE TABLE ordinary_signed_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE ordinary_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE ordinary_kyber_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE ordinary_kyber_last_resort (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);`

// indexes are created, when missing, at every open, whatever the version
// the database came from.
const indexes = `
CREATE INDEX IF NOT EXISTS messages_by_device ON messages(account, device, id);
CREATE INDEX IF NOT EXISTS messages_by_pub_id ON messages(account, device, pub_id);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages(account, device, from_account);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages(expires);
`

// schemaVersion is the PRAGMA user_version of the schema above.
const schemaVersion = 7

// SchemaVersion is the schema version this package writes (hushd
// --version prints it).
const SchemaVersion = schemaVersion

// migrations[v] takes a database from version v to v+1, in one
// transaction. A new database gets the schema above at once.
var migrations = map[int]string{
	// 2: the id clients see is random (pub_id; messages queued before keep
	// theirs, which their senders already know), and a queued message no
	// longer carries its sender's username beside the account.
	1: `ALTER TABLE messages ADD COLUMN pub_id INTEGER NOT NULL DEFAULT 0;
		UPDATE messages SET pub_id = id;
		ALTER TABLE messages DROP COLUMN from_username;
		PRAGMA user_version = 2;`,
	// 3: ordinary conversations on every device (issue 9): the account
	// identity key, each device's ordinary registration id and prekeys.
	2: `ALTER TABLE accounts ADD COLUMN account_identity_key BLOB;
		ALTER TABLE devices ADD COLUMN ordinary_reg_id INTEGER NOT NULL DEFAULT 0;` + ordinaryKeyTables + `
		PRAGMA user_version = 3;`,
	// 4: history records and the recovery blob (issue 9).
	3: `ALTER TABLE accounts ADD COLUMN history_count INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE accounts ADD COLUMN history_seq INTEGER NOT NULL DEFAULT 0;` + historyTables + `
		PRAGMA user_version = 4;`,
	// 5: links (issue 9).
	4: linkTables + `
		PRAGMA user_version = 5;`,
	// 6: message franking and abuse reports (issue 11, docs/franking.md):
	// a queued message's commitment, tag and key id, and the reports.
	5: `ALTER TABLE messages ADD COLUMN franking BLOB;` + reportTables + `
		PRAGMA user_version = 6;`,
	// 7: blobs (issue 11).
	6: blobTables + `
		PRAGMA user_version = 7;`,
}

// migrate brings the database to schemaVersion.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	switch {
	case v == 0:
		if _, err := db.ExecContext(ctx, schema); err != nil {
			return err
		}
		v = schemaVersion
	case v > schemaVersion:
		return fmt.Errorf("the database has schema version %d, newer than this hushd's %d", v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		if _, err := db.ExecContext(ctx, "BEGIN IMMEDIATE;"+migrations[v]+"COMMIT;"); err != nil {
			_, _ = db.ExecContext(ctx, "ROLLBACK")
			return fmt.Errorf("migrating from schema version %d: %w", v, err)
		}
	}
	_, err := db.ExecContext(ctx, indexes)
	return err
}

// Open opens (creating if needed) the database file at path.
func Open(path string) (*Store, error) {
	return open(path, defaultTiming)
}

// defaultTiming copies the WAL twice a second and keeps a frame in it at
// most 5 s under load.
var defaultTiming = ckptTiming{tick: 500 * time.Millisecond, tail: 10, idleTruncate: true}

// ckptTiming is how the checkpointer works (checkpointer): it copies the
// WAL every tick; under load, a frame stays in the WAL at most tail
// ticks; idleTruncate truncates the WAL at the first tick without a
// commit (tests turn it off to see the bound under load alone).
type ckptTiming struct {
	tick         time.Duration
	tail         int
	idleTruncate bool
}

func open(path string, ck ckptTiming) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	// SQLite gives the -wal and -shm files the database file's mode: make
	// it private before SQLite creates it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_pragma=secure_delete(ON)&_pragma=temp_store(MEMORY)"
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	ctx := context.Background()
	// The writer does not checkpoint (that would stall a commit, and every
	// caller waiting on it, for a whole checkpoint); the checkpointer
	// goroutine does, on its own connection.
	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlitestore: schema: %w", err)
	}
	if _, err := wdb.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0;"); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	wconn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	rdb, err := sql.Open("sqlite", dsn+"&_pragma=query_only(ON)")
	if err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	// The checkpointer waits at most 5 ms for readers before it gives up
	// a truncating checkpoint: the writer is paused meanwhile (Checkpoint).
	cdb, err := sql.Open("sqlite", strings.Replace(dsn, "busy_timeout(10000)", "busy_timeout(5)", 1))
	if err != nil {
		wconn.Close()
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	cdb.SetMaxOpenConns(1)
	s := &Store{
		rdb: rdb, wdb: wdb, wconn: wconn, cdb: cdb, stopCkpt: make(chan struct{}), ckptDone: make(chan struct{}), walMax: -1,
		ops:    make(chan *op, 4*maxBatch),
		done:   make(chan struct{}),
		counts: make(map[store.DeviceRef]mailbox),
		pairs:  make(map[pair]senderCount),
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&s.qAccountByID, `SELECT ` + accountCols + ` FROM accounts WHERE id = ?`},
		{&s.qAccountByName, `SELECT ` + accountCols + ` FROM accounts WHERE username = ?`},
		{&s.qDevice, `SELECT ` + deviceCols + ` FROM devices WHERE account = ? AND device = ?`},
		{&s.qDevices, `SELECT ` + deviceCols + ` FROM devices WHERE account = ? ORDER BY device`},
		{&s.qBlocked, `SELECT blocked FROM blocks WHERE account = ? ORDER BY blocked`},
	} {
		if *p.st, err = rdb.PrepareContext(ctx, p.q); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
	}
	if s.ins, err = wconn.PrepareContext(ctx, `INSERT INTO messages
		(account, device, from_account, from_device, type, content, created, expires, pub_id, franking)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`); err == nil {
		s.del, err = wconn.PrepareContext(ctx, `DELETE FROM messages WHERE pub_id = ? AND account = ? AND device = ?`)
	}
	if err == nil {
		s.ordDevs, err = wconn.PrepareContext(ctx, `SELECT device, ordinary_reg_id FROM devices
			WHERE account = ? AND ordinary_reg_id != 0`)
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&s.spBegin, "SAVEPOINT op"}, {&s.spRollback, "ROLLBACK TO op"}, {&s.spRelease, "RELEASE op"}} {
		if err == nil {
			*p.st, err = wconn.PrepareContext(ctx, p.q)
		}
	}
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	if err := wconn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&s.pageSize); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	go s.writer()
	go s.checkpointer(ck)
	return s, nil
}

// checkpointer copies the WAL into the database file at every tick
// (checkpoint), so that the writer's next transaction starts the WAL over
// and writes over its old frames instead of appending.
//
// It truncates the WAL to zero bytes (Checkpoint) only at the first tick
// without a commit. Under load it never does: truncating gives the file's
// blocks back, and on an ext4 mounted with discard (common on cloud disks)
// the discard of 20 MB of WAL stalled the disk behind it. Measured at
// 1,000 pairs x 5,000 msg/s (docs/performance.md), commits right after a
// truncation took 20-570 ms instead of ~1 ms, and p99 was 23-413 ms with a
// truncation every 5 s against 13-18 ms without.
//
// So that no frame outlives its acknowledgement for long under load
// either, it bounds the WAL's size (walLimit) by the largest WAL of the
// last few ticks (5 s): a frame in the file is then one the writer wrote
// within that time (the largest transaction cycle covered it); SQLite cuts
// off the rest at the WAL's next start (PRAGMA journal_size_limit). That
// is a tail of a few frames under steady load, not the whole file.
func (s *Store) checkpointer(ck ckptTiming) {
	defer close(s.ckptDone)
	t := time.NewTicker(ck.tick)
	defer t.Stop()
	ctx := context.Background()
	sizes := make([]int64, ck.tail) // the WAL's size in bytes at the last ticks
	commits := s.commits.Load()
	written := false // a commit since the WAL was last truncated
	for tick := 0; ; tick++ {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
		}
		n := s.commits.Load()
		idle := n == commits
		commits = n
		if !idle {
			written = true
		} else if written && ck.idleTruncate && s.Checkpoint(ctx) == nil {
			written = false
			clear(sizes)
			continue
		}
		frames, _, err := s.checkpoint(ctx, false)
		if err != nil {
			continue
		}
		sizes[tick%len(sizes)] = s.walSize(frames)
		_ = s.walLimit(ctx, slices.Max(sizes))
	}
}

// walSize is the size of a WAL of n frames (sqlite.org/fileformat2.html,
// "The WAL File Format": a 32-byte header, then frames of a 24-byte header
// and a page).
func (s *Store) walSize(frames int) int64 { return 32 + int64(frames)*(24+s.pageSize) }

// walLimit sets the writer's journal_size_limit: when the writer next
// starts the WAL over, SQLite truncates the file to this size (or to what
// that transaction needs, if more).
func (s *Store) walLimit(ctx context.Context, size int64) error {
	if size == s.walMax {
		return nil
	}
	s.pause.Lock()
	defer s.pause.Unlock()
	if _, err := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", size)); err != nil {
		return err
	}
	s.walMax = size
	return nil
}

// Checkpoint copies the WAL into the database and truncates it to zero
// bytes, so that deleted rows leave no copy in the WAL file; the
// checkpointer calls it when the writer is idle. It fails when a reader
// held the WAL for more than 5 ms (the checkpointer tries again 0.5 s
// later).
func (s *Store) Checkpoint(ctx context.Context) error {
	_, busy, err := s.checkpoint(ctx, true)
	if err != nil {
		return fmt.Errorf("sqlitestore: checkpoint: %w", err)
	}
	if busy {
		return errors.New("sqlitestore: checkpoint: the WAL is in use")
	}
	return nil
}

// checkpoint copies the WAL into the database in two steps: first
// without stopping the writer (PASSIVE), then, with the writer paused
// between two batches, the few frames it committed meanwhile (and, with
// truncate, truncating the WAL). It reports how many frames the WAL held
// and whether a reader kept it from finishing.
//
// Why the pause. A truncating checkpoint needs SQLite's write lock, which
// the writer holds nearly all the time under load. Left to SQLite, the
// checkpointer and the writer took it from each other by polling with
// sleeps (the busy handler's 1, 2, 5, 10, 15, 20, 25... ms): the
// truncation often failed after 100 ms of trying, and when it got the
// lock the writer, and every sender waiting on it, stalled behind it for
// 50-130 ms (docs/performance.md, "Latency"). Paused, the writer holds no
// lock, so the checkpoint takes it at once. And a WAL that is not copied
// completely while the writer is between transactions is never started
// over (SQLite restarts it only at a transaction that finds every frame
// copied): under steady load it grew for the whole 5 s, and truncating
// 40 MB of WAL cost the paused writer another 20-100 ms. Copied
// completely at every tick, the WAL starts over twice a second: it stays
// a few MB, and its blocks are written over instead of allocated.
func (s *Store) checkpoint(ctx context.Context, truncate bool) (frames int, busy bool, err error) {
	// One connection for both steps, taken before the pause: the writer
	// must never wait for another Checkpoint call to give it back.
	conn, err := s.cdb.Conn(ctx)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return 0, false, err
	}
	q := "PRAGMA wal_checkpoint(PASSIVE)"
	if truncate {
		q = "PRAGMA wal_checkpoint(TRUNCATE)"
	}
	var b, logFrames, done int
	s.pause.Lock()
	err = conn.QueryRowContext(ctx, q).Scan(&b, &logFrames, &done)
	s.pause.Unlock()
	return logFrames, b != 0, err
}

func (s *Store) closeDBs() {
	if s.ins != nil {
		s.ins.Close()
	}
	for _, st := range []*sql.Stmt{s.del, s.ordDevs, s.spBegin, s.spRollback, s.spRelease,
		s.qAccountByID, s.qAccountByName, s.qDevice, s.qDevices, s.qBlocked} {
		if st != nil {
			st.Close()
		}
	}
	s.wconn.Close()
	s.wdb.Close()
	s.rdb.Close()
	s.cdb.Close()
}

// Close lets the writer finish every queued operation, then closes.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.ops <- &op{fn: func(*wtx) error { return nil }} // applies the acknowledgements that wait
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	close(s.stopCkpt)
	<-s.ckptDone
	_, _ = s.wconn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	s.closeDBs()
	return nil
}

// SetNotify implements store.Store.
func (s *Store) SetNotify(f func([]*store.Message)) { s.notify.Store(&f) }

// submit queues o for the writer.
func (s *Store) submit(o *op) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	s.ops <- o
	return nil
}

// do runs fn in the writer and waits until its transaction is committed.
func (s *Store) do(ctx context.Context, multi bool, fn func(w *wtx) error) error {
	o := &op{fn: fn, multi: multi, done: make(chan error, 1)}
	if err := s.submit(o); err != nil {
		return err
	}
	// Once submitted the operation will run; waiting for it even when ctx is
	// done keeps "returned nil" equal to "durable".
	return <-o.done
}

// async runs fn in the writer without waiting. fn must leave nothing
// half-done when it fails (no savepoint protects it).
func (s *Store) async(fn func(w *wtx) error) error {
	return s.submit(&op{fn: fn})
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, maxBatch)
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
		s.pause.Lock()
		s.runBatch(batch)
		s.pause.Unlock()
	}
}

func (s *Store) runBatch(batch []*op) {
	start := time.Now()
	ctx := context.Background()
	w := &wtx{s: s, ctx: ctx}
	errs := make([]error, len(batch))
	if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
		for _, o := range batch {
			if o.done != nil {
				o.done <- fmt.Errorf("sqlitestore: begin: %w", err)
			}
		}
		return
	}
	s.applyAcks(w)
	for i, o := range batch {
		if !o.multi {
			errs[i] = o.fn(w)
			continue
		}
		mark := len(w.committed)
		if _, err := s.spBegin.ExecContext(ctx); err != nil {
			errs[i] = err
			continue
		}
		err := o.fn(w)
		if err != nil {
			_, _ = s.spRollback.ExecContext(ctx)
			w.committed = w.committed[:mark]
			clear(w.blobExp)
			if !isDomainError(err) {
				// The cached queue lengths may have counted undone work.
				s.resetCounts()
			}
		}
		_, _ = s.spRelease.ExecContext(ctx)
		errs[i] = err
	}
	if _, err := w.exec("COMMIT"); err != nil {
		_, _ = w.exec("ROLLBACK")
		s.resetCounts()
		err = fmt.Errorf("sqlitestore: commit: %w", err)
		for i := range errs {
			errs[i] = err
		}
		w.committed = nil
	}
	s.commits.Add(1)
	s.batchOps.Add(int64(len(batch)))
	if f := s.OnCommit; f != nil {
		f(len(batch), time.Since(start))
	}
	if len(w.committed) > 0 {
		if f := s.notify.Load(); f != nil && *f != nil {
			(*f)(w.committed)
		}
	}
	for i, o := range batch {
		if o.done != nil {
			o.done <- errs[i]
		}
	}
}

func isDomainError(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrUsernameTaken, store.ErrTooManyDevices,
		store.ErrMailboxFull, store.ErrNotSecretDevice, store.ErrNoKeys, store.ErrConflict, store.ErrHistoryFull, store.ErrTooManyLinks, store.ErrLinkState,
		store.ErrQuotaExceeded, store.ErrBlobUnusable} {
		if errors.Is(err, e) {
			return true
		}
	}
	var me *store.MismatchError
	return errors.As(err, &me)
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// ---- accounts and devices ----

const accountCols = `id, username, display_name, password_hash, COALESCE(secret_device, 0), identity_key, created, account_identity_key`

func scanAccount(r interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	err := r.Scan(&a.ID, &a.Username, &a.DisplayName, &a.PasswordHash, &a.SecretDevice, &a.IdentityKey, &a.Created, &a.AccountIdentityKey)
	return a, notFound(err)
}

const deviceCols = `account, device, name, token_hash, registration_id, created, last_seen, ordinary_reg_id`

func scanDevice(r interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	err := r.Scan(&d.Ref.Account, &d.Ref.Device, &d.Name, &d.TokenHash, &d.RegistrationID, &d.Created, &d.LastSeen, &d.OrdinaryRegistrationID)
	return d, notFound(err)
}

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, a store.NewAccount, d store.NewDevice) (store.Account, store.Device, error) {
	var acc store.Account
	var dev store.Device
	err := s.do(ctx, true, func(w *wtx) error {
		var one int
		switch err := w.row(`SELECT 1 FROM accounts WHERE username = ?`, a.Username).Scan(&one); {
		case err == nil:
			return store.ErrUsernameTaken
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		res, err := w.exec(`INSERT INTO accounts (username, display_name, password_hash, next_device, created)
			VALUES (?, ?, ?, 2, ?)`, a.Username, a.DisplayName, a.PasswordHash, a.Created)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if _, err := w.exec(`INSERT INTO devices (account, device, name, token_hash, created, last_seen)
			VALUES (?, 1, ?, ?, ?, ?)`, id, d.Name, d.TokenHash, d.Created, d.Created); err != nil {
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
	return scanAccount(s.qAccountByName.QueryRowContext(ctx, username))
}

// AccountByID implements store.Store.
func (s *Store) AccountByID(ctx context.Context, id int64) (store.Account, error) {
	return scanAccount(s.qAccountByID.QueryRowContext(ctx, id))
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, account int64, d store.NewDevice, max int) (store.Device, error) {
	var dev store.Device
	err := s.do(ctx, true, func(w *wtx) error {
		var err error
		dev, err = addDevice(w, account, d, max)
		return err
	})
	return dev, err
}

func addDevice(w *wtx, account int64, d store.NewDevice, max int) (store.Device, error) {
	var next uint32
	if err := w.row(`SELECT next_device FROM accounts WHERE id = ?`, account).Scan(&next); err != nil {
		return store.Device{}, notFound(err)
	}
	var n int
	if err := w.row(`SELECT COUNT(*) FROM devices WHERE account = ?`, account).Scan(&n); err != nil {
		return store.Device{}, err
	}
	if n >= max {
		return store.Device{}, store.ErrTooManyDevices
	}
	if _, err := w.exec(`UPDATE accounts SET next_device = ? WHERE id = ?`, next+1, account); err != nil {
		return store.Device{}, err
	}
	if _, err := w.exec(`INSERT INTO devices (account, device, name, token_hash, created, last_seen)
		VALUES (?, ?, ?, ?, ?, ?)`, account, next, d.Name, d.TokenHash, d.Created, d.Created); err != nil {
		return store.Device{}, err
	}
	return store.Device{Ref: store.DeviceRef{Account: account, Device: next}, Name: d.Name,
		TokenHash: d.TokenHash, Created: d.Created, LastSeen: d.Created}, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, ref store.DeviceRef) (store.Device, error) {
	return scanDevice(s.qDevice.QueryRowContext(ctx, ref.Account, ref.Device))
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, account int64) ([]store.Device, error) {
	rows, err := s.qDevices.QueryContext(ctx, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ds []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetDeviceToken implements store.Store.
func (s *Store) SetDeviceToken(ctx context.Context, ref store.DeviceRef, tokenHash []byte) error {
	return s.do(ctx, false, func(w *wtx) error {
		return mustAffect(w.exec(`UPDATE devices SET token_hash = ? WHERE account = ? AND device = ?`,
			tokenHash, ref.Account, ref.Device))
	})
}

// TouchDevice implements store.Store; it does not wait for the commit.
func (s *Store) TouchDevice(ctx context.Context, ref store.DeviceRef, t int64) error {
	return s.async(func(w *wtx) error {
		_, err := w.exec(`UPDATE devices SET last_seen = ? WHERE account = ? AND device = ?`, t, ref.Account, ref.Device)
		return err
	})
}

// secretKeys and ordinaryKeys are the prefixes of the two sets of prekey
// tables: the secret device's, and every device's ordinary ones.
const (
	secretKeys   = ""
	ordinaryKeys = "ordinary_"
)

func deleteKeys(w *wtx, prefix string, account int64, device *uint32) error {
	for _, t := range []string{"signed_prekeys", "prekeys", "kyber_prekeys", "kyber_last_resort"} {
		var err error
		if device == nil {
			_, err = w.exec(`DELETE FROM `+prefix+t+` WHERE account = ?`, account)
		} else {
			_, err = w.exec(`DELETE FROM `+prefix+t+` WHERE account = ? AND device = ?`, account, *device)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveDevice implements store.Store.
func (s *Store) RemoveDevice(ctx context.Context, ref store.DeviceRef) error {
	return s.do(ctx, true, func(w *wtx) error {
		if err := mustAffect(w.exec(`DELETE FROM devices WHERE account = ? AND device = ?`, ref.Account, ref.Device)); err != nil {
			return err
		}
		if err := deleteKeys(w, secretKeys, ref.Account, &ref.Device); err != nil {
			return err
		}
		if err := deleteKeys(w, ordinaryKeys, ref.Account, &ref.Device); err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM messages WHERE account = ? AND device = ?`, ref.Account, ref.Device); err != nil {
			return err
		}
		// Blobs sent to it no longer wait for it (the sweep deletes
		// those that wait for nobody).
		if _, err := w.exec(`DELETE FROM blob_grants WHERE account = ? AND device = ?`, ref.Account, ref.Device); err != nil {
			return err
		}
		s.resetCounts()
		_, err := w.exec(`UPDATE accounts SET secret_device = NULL, identity_key = NULL
			WHERE id = ? AND secret_device = ?`, ref.Account, ref.Device)
		return err
	})
}

// ---- prekeys ----

// MakeSecretDevice implements store.Store.
func (s *Store) MakeSecretDevice(ctx context.Context, ref store.DeviceRef, identityKey []byte, registrationID uint32, keys *store.Keys) error {
	return s.do(ctx, true, func(w *wtx) error {
		if err := mustAffect(w.exec(`UPDATE devices SET registration_id = ? WHERE account = ? AND device = ?`,
			registrationID, ref.Account, ref.Device)); err != nil {
			return err
		}
		if _, err := w.exec(`UPDATE accounts SET secret_device = ?, identity_key = ? WHERE id = ?`,
			ref.Device, identityKey, ref.Account); err != nil {
			return err
		}
		if err := deleteKeys(w, secretKeys, ref.Account, nil); err != nil {
			return err
		}
		if keys != nil {
			return setKeys(w, secretKeys, ref, *keys)
		}
		return nil
	})
}

// SetKeys implements store.Store.
func (s *Store) SetKeys(ctx context.Context, ref store.DeviceRef, keys store.Keys) error {
	return s.do(ctx, true, func(w *wtx) error {
		var secret uint32
		if err := w.row(`SELECT COALESCE(secret_device, 0) FROM accounts WHERE id = ?`, ref.Account).Scan(&secret); err != nil {
			return notFound(err)
		}
		if secret == 0 || secret != ref.Device {
			return store.ErrNotSecretDevice
		}
		return setKeys(w, secretKeys, ref, keys)
	})
}

func setKeys(w *wtx, prefix string, ref store.DeviceRef, k store.Keys) error {
	a, d := ref.Account, ref.Device
	if sk := k.SignedPreKey; sk != nil {
		if _, err := w.exec(`INSERT OR REPLACE INTO `+prefix+`signed_prekeys (account, device, key_id, public_key, signature)
			VALUES (?, ?, ?, ?, ?)`, a, d, sk.ID, sk.PublicKey, sk.Signature); err != nil {
			return err
		}
	}
	if lr := k.KyberLastResort; lr != nil {
		if _, err := w.exec(`INSERT OR REPLACE INTO `+prefix+`kyber_last_resort (account, device, key_id, public_key, signature)
			VALUES (?, ?, ?, ?, ?)`, a, d, lr.ID, lr.PublicKey, lr.Signature); err != nil {
			return err
		}
	}
	if len(k.PreKeys) > 0 {
		if _, err := w.exec(`DELETE FROM `+prefix+`prekeys WHERE account = ? AND device = ?`, a, d); err != nil {
			return err
		}
		for _, p := range k.PreKeys {
			if _, err := w.exec(`INSERT OR REPLACE INTO `+prefix+`prekeys (account, device, key_id, public_key) VALUES (?, ?, ?, ?)`,
				a, d, p.ID, p.PublicKey); err != nil {
				return err
			}
		}
	}
	if len(k.KyberPreKeys) > 0 {
		if _, err := w.exec(`DELETE FROM `+prefix+`kyber_prekeys WHERE account = ? AND device = ?`, a, d); err != nil {
			return err
		}
		for _, p := range k.KyberPreKeys {
			if _, err := w.exec(`INSERT OR REPLACE INTO `+prefix+`kyber_prekeys (account, device, key_id, public_key, signature)
				VALUES (?, ?, ?, ?, ?)`, a, d, p.ID, p.PublicKey, p.Signature); err != nil {
				return err
			}
		}
	}
	return nil
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
	var spk, lr sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM `+prefix+`prekeys WHERE account = ?1 AND device = ?2),
		(SELECT COUNT(*) FROM `+prefix+`kyber_prekeys WHERE account = ?1 AND device = ?2),
		(SELECT key_id FROM `+prefix+`signed_prekeys WHERE account = ?1 AND device = ?2),
		(SELECT key_id FROM `+prefix+`kyber_last_resort WHERE account = ?1 AND device = ?2)`,
		ref.Account, ref.Device).Scan(&c.PreKeys, &c.KyberPreKeys, &spk, &lr)
	if spk.Valid {
		v := uint32(spk.Int64)
		c.SignedPreKeyID = &v
	}
	if lr.Valid {
		v := uint32(lr.Int64)
		c.KyberLastResort = &v
	}
	return c, err
}

// TakeBundle implements store.Store.
func (s *Store) TakeBundle(ctx context.Context, ref store.DeviceRef) (store.Bundle, error) {
	var b store.Bundle
	err := s.do(ctx, true, func(w *wtx) error {
		a, d := ref.Account, ref.Device
		var secret uint32
		if err := w.row(`SELECT COALESCE(secret_device, 0), identity_key FROM accounts WHERE id = ?`, a).
			Scan(&secret, &b.IdentityKey); err != nil {
			return notFound(err)
		}
		if secret == 0 || secret != d {
			return store.ErrNotFound
		}
		b.Device = d
		if err := w.row(`SELECT registration_id FROM devices WHERE account = ? AND device = ?`, a, d).
			Scan(&b.RegistrationID); err != nil {
			return notFound(err)
		}
		return takeKeys(w, secretKeys, ref, &b)
	})
	if err != nil {
		return store.Bundle{}, err
	}
	return b, nil
}

// takeKeys fills b with ref's signed prekey and takes (deletes) one
// one-time EC and Kyber prekey, or uses the last-resort Kyber prekey.
func takeKeys(w *wtx, prefix string, ref store.DeviceRef, b *store.Bundle) error {
	a, d := ref.Account, ref.Device
	err := w.row(`SELECT key_id, public_key, signature FROM `+prefix+`signed_prekeys WHERE account = ? AND device = ?`, a, d).
		Scan(&b.SignedPreKey.ID, &b.SignedPreKey.PublicKey, &b.SignedPreKey.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNoKeys
	} else if err != nil {
		return err
	}
	var pk store.PreKey
	err = w.row(`DELETE FROM `+prefix+`prekeys WHERE rowid = (SELECT rowid FROM `+prefix+`prekeys WHERE account = ? AND device = ?
		ORDER BY key_id LIMIT 1) RETURNING key_id, public_key`, a, d).Scan(&pk.ID, &pk.PublicKey)
	switch {
	case err == nil:
		b.PreKey = &pk
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	err = w.row(`DELETE FROM `+prefix+`kyber_prekeys WHERE rowid = (SELECT rowid FROM `+prefix+`kyber_prekeys WHERE account = ? AND device = ?
		ORDER BY key_id LIMIT 1) RETURNING key_id, public_key, signature`, a, d).
		Scan(&b.KyberPreKey.ID, &b.KyberPreKey.PublicKey, &b.KyberPreKey.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		b.KyberLastResort = true
		err = w.row(`SELECT key_id, public_key, signature FROM `+prefix+`kyber_last_resort WHERE account = ? AND device = ?`, a, d).
			Scan(&b.KyberPreKey.ID, &b.KyberPreKey.PublicKey, &b.KyberPreKey.Signature)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNoKeys
		}
	}
	return err
}

// ---- ordinary conversations (docs/multidevice.md) ----

// SetAccountIdentity implements store.Store.
func (s *Store) SetAccountIdentity(ctx context.Context, account int64, key []byte) error {
	return s.do(ctx, false, func(w *wtx) error {
		var have []byte
		if err := w.row(`SELECT account_identity_key FROM accounts WHERE id = ?`, account).Scan(&have); err != nil {
			return notFound(err)
		}
		if have != nil {
			if !bytes.Equal(have, key) {
				return store.ErrConflict
			}
			return nil
		}
		_, err := w.exec(`UPDATE accounts SET account_identity_key = ? WHERE id = ?`, key, account)
		return err
	})
}

// SetOrdinaryKeys implements store.Store.
func (s *Store) SetOrdinaryKeys(ctx context.Context, ref store.DeviceRef, registrationID uint32, keys store.Keys) error {
	return s.do(ctx, true, func(w *wtx) error {
		return setOrdinaryKeys(w, ref, registrationID, keys)
	})
}

func setOrdinaryKeys(w *wtx, ref store.DeviceRef, registrationID uint32, keys store.Keys) error {
	var have uint32
	if err := w.row(`SELECT ordinary_reg_id FROM devices WHERE account = ? AND device = ?`, ref.Account, ref.Device).Scan(&have); err != nil {
		return notFound(err)
	}
	if have == 0 && (keys.SignedPreKey == nil || keys.KyberLastResort == nil) {
		return store.ErrNoKeys
	}
	if _, err := w.exec(`UPDATE devices SET ordinary_reg_id = ? WHERE account = ? AND device = ?`,
		registrationID, ref.Account, ref.Device); err != nil {
		return err
	}
	return setKeys(w, ordinaryKeys, ref, keys)
}

// TakeOrdinaryBundles implements store.Store.
func (s *Store) TakeOrdinaryBundles(ctx context.Context, account int64, devices []uint32) ([]store.Bundle, error) {
	var out []store.Bundle
	err := s.do(ctx, true, func(w *wtx) error {
		out = out[:0]
		var ik []byte
		if err := w.row(`SELECT account_identity_key FROM accounts WHERE id = ?`, account).Scan(&ik); err != nil {
			return notFound(err)
		}
		rows, err := w.s.wconn.QueryContext(w.ctx, `SELECT device, ordinary_reg_id FROM devices
			WHERE account = ? AND ordinary_reg_id != 0 ORDER BY device`, account)
		if err != nil {
			return err
		}
		var bs []store.Bundle
		for rows.Next() {
			var b store.Bundle
			if err := rows.Scan(&b.Device, &b.RegistrationID); err != nil {
				rows.Close()
				return err
			}
			if devices == nil || slices.Contains(devices, b.Device) {
				b.IdentityKey = ik
				bs = append(bs, b)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range bs {
			if err := takeKeys(w, ordinaryKeys, store.DeviceRef{Account: account, Device: bs[i].Device}, &bs[i]); err != nil {
				return err
			}
		}
		out = bs
		return nil
	})
	return out, err
}

// ordinaryDevices returns the account's ordinary devices and their
// registration ids, in the writer's transaction.
func (w *wtx) ordinaryDevices(account int64) (map[uint32]uint32, error) {
	rows, err := w.s.ordDevs.QueryContext(w.ctx, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[uint32]uint32)
	for rows.Next() {
		var d, r uint32
		if err := rows.Scan(&d, &r); err != nil {
			return nil, err
		}
		m[d] = r
	}
	return m, rows.Err()
}

// EnqueueFanout implements store.Store. Every check runs before the first
// insert, so that a refused fanout leaves the cached queue lengths alone.
func (s *Store) EnqueueFanout(ctx context.Context, f store.Fanout) ([]store.EnqueueResult, error) {
	res := make([]store.EnqueueResult, len(f.Messages))
	err := s.do(ctx, true, func(w *wtx) error {
		clear(res)
		var mm []store.Mismatch
		for _, fa := range f.Accounts {
			have, err := w.ordinaryDevices(fa.Account)
			if err != nil {
				return err
			}
			if m, ok := store.Compare(fa, have); !ok {
				mm = append(mm, m)
			}
		}
		if len(mm) > 0 {
			return &store.MismatchError{Accounts: mm}
		}
		// Room: a full mailbox is skipped, unless all of an account's are.
		stored := make(map[int64]bool)
		queued := make(map[store.DeviceRef]int)
		fromQueued := make(map[store.DeviceRef]senderCount)
		for i, m := range f.Messages {
			n, err := w.queueLen(m.To)
			if err != nil {
				return err // ErrNotFound cannot be: the device set was checked
			}
			ns, err := w.senderLen(m.To, m.From.Account, f.MaxPerSender)
			if err != nil {
				return err
			}
			queued[m.To], fromQueued[m.To] = n, ns
			if n >= f.MaxQueue || ns.n >= f.MaxPerSender {
				res[i].Err = store.ErrMailboxFull
				continue
			}
			stored[m.To.Account] = true
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
		for _, m := range f.Messages {
			if err := w.checkBlobs(m); err != nil {
				return err
			}
		}
		if len(f.History) > 0 {
			if _, err := depositHistory(w, f.HistoryAccount, f.History, f.MaxHistory); err != nil {
				return err
			}
		}
		for i, m := range f.Messages {
			if res[i].Err != nil {
				continue
			}
			if err := w.grantBlobs(m); err != nil {
				return err
			}
			r, err := w.s.ins.ExecContext(w.ctx, m.To.Account, m.To.Device, m.From.Account, m.From.Device,
				m.Type, m.Content, m.Timestamp, m.ExpiresAt, m.PublicID, store.EncodeFranking(m.Franking))
			if err != nil {
				return err
			}
			id, err := r.LastInsertId()
			if err != nil {
				return err
			}
			mb := w.s.counts[m.To]
			mb.n = queued[m.To] + 1
			w.s.counts[m.To] = mb
			ns := fromQueued[m.To]
			ns.n++
			w.s.pairs[pair{m.To, m.From.Account}] = ns
			res[i].ID = id
			cp := *m
			cp.ID = id
			w.committed = append(w.committed, &cp)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	err := s.do(ctx, true, func(w *wtx) error {
		var err error
		n, err = depositHistory(w, account, recs, max)
		return err
	})
	return n, err
}

// depositHistory stores the records of recs whose ids are new, numbering
// them after the account's history_seq; every check runs before the first
// write.
func depositHistory(w *wtx, account int64, recs []store.HistoryRecord, max int) (int, error) {
	var count, seq int64
	if err := w.row(`SELECT history_count, history_seq FROM accounts WHERE id = ?`, account).Scan(&count, &seq); err != nil {
		return 0, notFound(err)
	}
	fresh := make([]store.HistoryRecord, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		if seen[string(r.ID)] {
			continue
		}
		seen[string(r.ID)] = true
		var one int
		switch err := w.row(`SELECT 1 FROM history WHERE account = ? AND id = ?`, account, r.ID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			fresh = append(fresh, r)
		case err != nil:
			return 0, err
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	if count+int64(len(fresh)) > int64(max) {
		return 0, store.ErrHistoryFull
	}
	for _, r := range fresh {
		seq++
		if _, err := w.exec(`INSERT INTO history (account, seq, id, blob) VALUES (?, ?, ?, ?)`, account, seq, r.ID, r.Blob); err != nil {
			return 0, err
		}
	}
	_, err := w.exec(`UPDATE accounts SET history_count = ?, history_seq = ? WHERE id = ?`, count+int64(len(fresh)), seq, account)
	return len(fresh), err
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, account int64, after int64, limit, maxBytes int) ([]store.HistoryRecord, bool, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, id, blob FROM history WHERE account = ? AND seq > ? ORDER BY seq LIMIT ?`,
		account, after, limit+1)
	if err != nil {
		return nil, false, err
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
			return nil, false, err
		}
		size += len(r.Blob)
		out = append(out, r)
	}
	return out, false, rows.Err()
}

// SetRecovery implements store.Store.
func (s *Store) SetRecovery(ctx context.Context, account int64, version int64, blob []byte) error {
	return s.do(ctx, false, func(w *wtx) error {
		var have int64
		switch err := w.row(`SELECT version FROM recovery WHERE account = ?`, account).Scan(&have); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		}
		if version != have+1 {
			return store.ErrConflict
		}
		_, err := w.exec(`INSERT INTO recovery (account, version, blob) VALUES (?, ?, ?)
			ON CONFLICT (account) DO UPDATE SET version = excluded.version, blob = excluded.blob`, account, version, blob)
		return err
	})
}

// Recovery implements store.Store.
func (s *Store) Recovery(ctx context.Context, account int64) (int64, []byte, error) {
	var v int64
	var b []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT version, blob FROM recovery WHERE account = ?`, account).Scan(&v, &b)
	return v, b, notFound(err)
}

// ---- abuse reports (docs/franking.md) ----

// AddReport implements store.Store.
func (s *Store) AddReport(ctx context.Context, r store.Report) (int64, error) {
	var id int64
	err := s.do(ctx, false, func(w *wtx) error {
		var one int
		switch err := w.row(`SELECT 1 FROM reports WHERE tag = ?`, r.Tag).Scan(&one); {
		case err == nil:
			return store.ErrConflict
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		res, err := w.exec(`INSERT INTO reports (account, device, created, tag, body) VALUES (?, ?, ?, ?, ?)`,
			r.Reporter.Account, r.Reporter.Device, r.Created, r.Tag, r.Body)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

const reportCols = `id, account, device, created, tag, body`

func scanReport(r interface{ Scan(...any) error }) (store.Report, error) {
	var rp store.Report
	err := r.Scan(&rp.ID, &rp.Reporter.Account, &rp.Reporter.Device, &rp.Created, &rp.Tag, &rp.Body)
	return rp, notFound(err)
}

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, after int64, limit int) ([]store.Report, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+reportCols+` FROM reports WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Report implements store.Store.
func (s *Store) Report(ctx context.Context, id int64) (store.Report, error) {
	return scanReport(s.rdb.QueryRowContext(ctx, `SELECT `+reportCols+` FROM reports WHERE id = ?`, id))
}

// ---- links (docs/multidevice.md section 2) ----

const linkCols = `id, account, claim_hash, expires, state, hello_ephemeral, hello_mac, box_ephemeral, box, device`

func scanLink(r interface{ Scan(...any) error }) (store.Link, error) {
	var l store.Link
	err := r.Scan(&l.ID, &l.Account, &l.ClaimHash, &l.ExpiresAt, &l.State, &l.HelloEphemeral, &l.HelloMAC, &l.BoxEphemeral, &l.Box, &l.Device)
	return l, notFound(err)
}

// CreateLink implements store.Store.
func (s *Store) CreateLink(ctx context.Context, l store.Link, maxOpen int, now int64) error {
	return s.do(ctx, false, func(w *wtx) error {
		var taken bool
		var open int
		if err := w.row(`SELECT EXISTS (SELECT 1 FROM links WHERE id = ?1),
			(SELECT COUNT(*) FROM links WHERE account = ?2 AND expires > ?3 AND state != ?4)`,
			l.ID, l.Account, now, store.LinkDone).Scan(&taken, &open); err != nil {
			return err
		}
		switch {
		case taken:
			return store.ErrConflict
		case open >= maxOpen:
			return store.ErrTooManyLinks
		}
		_, err := w.exec(`INSERT INTO links (id, account, claim_hash, expires, state) VALUES (?, ?, ?, ?, ?)`,
			l.ID, l.Account, l.ClaimHash, l.ExpiresAt, store.LinkWaiting)
		return err
	})
}

// Link implements store.Store.
func (s *Store) Link(ctx context.Context, id []byte, now int64) (store.Link, error) {
	return scanLink(s.rdb.QueryRowContext(ctx, `SELECT `+linkCols+` FROM links WHERE id = ? AND expires > ?`, id, now))
}

// linkMove runs update (which names the link by id ?1 and now ?2 and
// must check the state) and, when it changed nothing, tells ErrNotFound
// from ErrLinkState: whether the link (of account, unless 0) is there.
func linkMove(w *wtx, id []byte, account, now int64, update string, args ...any) error {
	r, err := w.exec(update, append([]any{id, now}, args...)...)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var have int64
	if err := w.row(`SELECT account FROM links WHERE id = ? AND expires > ?`, id, now).Scan(&have); err != nil {
		return notFound(err)
	}
	if account != 0 && have != account {
		return store.ErrNotFound
	}
	return store.ErrLinkState
}

// LinkHello implements store.Store.
func (s *Store) LinkHello(ctx context.Context, id []byte, now int64, ephemeral, mac []byte) error {
	return s.do(ctx, false, func(w *wtx) error {
		return linkMove(w, id, 0, now, `UPDATE links SET state = ?5, hello_ephemeral = ?3, hello_mac = ?4
			WHERE id = ?1 AND expires > ?2 AND state = ?6`, ephemeral, mac, store.LinkHelloed, store.LinkWaiting)
	})
}

// SetLinkBox implements store.Store.
func (s *Store) SetLinkBox(ctx context.Context, id []byte, account int64, now int64, ephemeral, box []byte) error {
	return s.do(ctx, false, func(w *wtx) error {
		return linkMove(w, id, account, now, `UPDATE links SET state = ?5, box_ephemeral = ?3, box = ?4
			WHERE id = ?1 AND expires > ?2 AND state = ?6 AND account = ?7`, ephemeral, box, store.LinkBoxed, store.LinkHelloed, account)
	})
}

// LinkDevice implements store.Store.
func (s *Store) LinkDevice(ctx context.Context, id []byte, now int64, d store.NewDevice, maxDevices int, registrationID uint32, keys store.Keys) (store.Device, error) {
	var dev store.Device
	err := s.do(ctx, true, func(w *wtx) error {
		l, err := scanLink(w.row(`SELECT `+linkCols+` FROM links WHERE id = ? AND expires > ?`, id, now))
		if err != nil {
			return err
		}
		if l.State != store.LinkBoxed {
			return store.ErrLinkState
		}
		if dev, err = addDevice(w, l.Account, d, maxDevices); err != nil {
			return err
		}
		if err := setOrdinaryKeys(w, dev.Ref, registrationID, keys); err != nil {
			return err
		}
		dev.OrdinaryRegistrationID = registrationID
		_, err = w.exec(`UPDATE links SET state = ?, device = ?, box = NULL, box_ephemeral = NULL WHERE id = ?`,
			store.LinkDone, dev.Ref.Device, id)
		return err
	})
	return dev, err
}

// DeleteLink implements store.Store.
func (s *Store) DeleteLink(ctx context.Context, id []byte, account int64) error {
	return s.do(ctx, false, func(w *wtx) error {
		return mustAffect(w.exec(`DELETE FROM links WHERE id = ? AND account = ?`, id, account))
	})
}

// ---- blocks ----

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked int64) error {
	return s.do(ctx, true, func(w *wtx) error {
		if _, err := w.exec(`INSERT OR IGNORE INTO blocks (account, blocked) VALUES (?, ?)`, blocker, blocked); err != nil {
			return err
		}
		r, err := w.exec(`DELETE FROM messages WHERE account = ? AND from_account = ?`, blocker, blocked)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n > 0 {
			s.resetCounts()
		}
		return nil
	})
}

// Unblock implements store.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked int64) error {
	return s.do(ctx, false, func(w *wtx) error {
		_, err := w.exec(`DELETE FROM blocks WHERE account = ? AND blocked = ?`, blocker, blocked)
		return err
	})
}

// Blocked implements store.Store.
func (s *Store) Blocked(ctx context.Context, blocker int64) ([]int64, error) {
	rows, err := s.qBlocked.QueryContext(ctx, blocker)
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

// ---- messages ----

// queueLen returns the cached queue length of ref, loading it if needed.
// A device that does not exist has no entry (RemoveDevice drops it) and
// gets ErrNotFound.
func (w *wtx) queueLen(ref store.DeviceRef) (int, error) {
	if mb, ok := w.s.counts[ref]; ok {
		return mb.n, nil
	}
	var n int
	var exists bool
	if err := w.row(`SELECT (SELECT COUNT(*) FROM messages WHERE account = ?1 AND device = ?2),
		EXISTS (SELECT 1 FROM devices WHERE account = ?1 AND device = ?2)`, ref.Account, ref.Device).Scan(&n, &exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, store.ErrNotFound
	}
	w.s.counts[ref] = mailbox{n: n}
	return n, nil
}

// senderLen returns the number of messages from account from queued for
// to, or a number above it while that is below limit: the caller compares
// it with limit, and an upper bound under the limit says as much as the
// exact number. It counts (messages_by_sender) only when the cached bound
// reaches limit and is not known to be exact. to's queue length must be
// cached (queueLen).
func (w *wtx) senderLen(to store.DeviceRef, from int64, limit int) (senderCount, error) {
	k := pair{to, from}
	mb := w.s.counts[to]
	c, ok := w.s.pairs[k]
	if !ok {
		// The whole mailbox bounds any one sender's share of it.
		c = senderCount{n: mb.n}
	}
	if c.n >= limit && !(c.exact && c.ackedAt == mb.acked) {
		c = senderCount{exact: true, ackedAt: mb.acked}
		if err := w.row(`SELECT COUNT(*) FROM messages WHERE account = ? AND device = ? AND from_account = ?`,
			to.Account, to.Device, from).Scan(&c.n); err != nil {
			return c, err
		}
	}
	if !ok && len(w.s.pairs) >= maxPairs {
		clear(w.s.pairs)
	}
	w.s.pairs[k] = c
	return c, nil
}

// EnqueueBatch implements store.Store.
func (s *Store) EnqueueBatch(ctx context.Context, msgs []*store.Message, maxQueue, maxPerSender int) ([]store.EnqueueResult, error) {
	res := make([]store.EnqueueResult, len(msgs))
	// One message without blobs writes one row: the INSERT alone is atomic
	// and needs no savepoint (two statements fewer in the writer, for the
	// usual send of one message).
	multi := len(msgs) > 1
	for _, m := range msgs {
		multi = multi || len(m.Blobs) > 0
	}
	err := s.do(ctx, multi, func(w *wtx) error {
		for i, m := range msgs {
			n, err := w.queueLen(m.To)
			if errors.Is(err, store.ErrNotFound) {
				res[i].Err = err
				continue
			} else if err != nil {
				return err
			}
			if n >= maxQueue {
				res[i].Err = store.ErrMailboxFull
				continue
			}
			ns, err := w.senderLen(m.To, m.From.Account, maxPerSender)
			if err != nil {
				return err
			}
			if ns.n >= maxPerSender {
				res[i].Err = store.ErrMailboxFull
				continue
			}
			if err := w.checkBlobs(m); errors.Is(err, store.ErrBlobUnusable) {
				res[i].Err = err
				continue
			} else if err != nil {
				return err
			}
			if err := w.grantBlobs(m); err != nil {
				return err
			}
			r, err := w.s.ins.ExecContext(w.ctx, m.To.Account, m.To.Device, m.From.Account, m.From.Device,
				m.Type, m.Content, m.Timestamp, m.ExpiresAt, m.PublicID, store.EncodeFranking(m.Franking))
			if err != nil {
				return err
			}
			id, err := r.LastInsertId()
			if err != nil {
				return err
			}
			mb := w.s.counts[m.To]
			mb.n = n + 1
			w.s.counts[m.To] = mb
			ns.n++
			w.s.pairs[pair{m.To, m.From.Account}] = ns
			res[i].ID = id
			cp := *m
			cp.ID = id
			w.committed = append(w.committed, &cp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, m := range msgs {
		m.ID = res[i].ID
	}
	return res, nil
}

// Pending implements store.Store.
func (s *Store) Pending(ctx context.Context, to store.DeviceRef, after, now int64, limit int) ([]*store.Message, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, pub_id, from_account, from_device, type, content, created, expires, franking
		FROM messages WHERE account = ? AND device = ? AND id > ? AND expires > ? ORDER BY id LIMIT ?`,
		to.Account, to.Device, after, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []*store.Message
	for rows.Next() {
		m := &store.Message{To: to}
		var fr []byte
		if err := rows.Scan(&m.ID, &m.PublicID, &m.From.Account, &m.From.Device, &m.Type, &m.Content,
			&m.Timestamp, &m.ExpiresAt, &fr); err != nil {
			return nil, err
		}
		var err error
		if m.Franking, err = store.DecodeFranking(fr); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// Ack implements store.Store. The deletion is committed with the next batch
// and Ack does not wait for it.
func (s *Store) Ack(ctx context.Context, to store.DeviceRef, ids []int64) error {
	s.ackMu.Lock()
	s.acks = append(s.acks, ackReq{to, append([]int64(nil), ids...)})
	kick := !s.ackKick
	s.ackKick = true
	s.ackMu.Unlock()
	if kick {
		// Wake the writer in case no other write comes.
		time.AfterFunc(ackDelay, s.kickAcks)
	}
	return nil
}

// ackDelay is how long acknowledgements wait for another write to ride
// along with before they get a commit of their own. Until then an acked
// message stays queued: a device that reconnects within it gets it again,
// which clients tolerate (they drop what they have seen).
const ackDelay = 5 * time.Millisecond

// kickAcks wakes the writer if acknowledgements still wait.
func (s *Store) kickAcks() {
	s.ackMu.Lock()
	waiting := len(s.acks) > 0
	s.ackMu.Unlock()
	if waiting {
		_ = s.submit(&op{fn: func(*wtx) error { return nil }}) // ErrClosed: Close applied them
	}
}

// applyAcks deletes the acknowledged messages, in the writer's
// transaction. A failed delete leaves the message queued: it will be
// delivered again, which clients tolerate.
func (s *Store) applyAcks(w *wtx) {
	s.ackMu.Lock()
	acks := s.acks
	s.acks = nil
	s.ackKick = false
	s.ackMu.Unlock()
	for _, a := range acks {
		deleted := 0
		for _, id := range a.ids {
			r, err := s.del.ExecContext(w.ctx, id, a.to.Account, a.to.Device)
			if err != nil {
				continue
			}
			if n, _ := r.RowsAffected(); n > 0 {
				deleted += int(n)
			}
		}
		// The senders' counts stay as they were (upper bounds); acked
		// tells senderLen that they may no longer be exact.
		if mb, ok := s.counts[a.to]; ok && deleted > 0 {
			s.counts[a.to] = mailbox{n: mb.n - deleted, acked: mb.acked + 1}
		}
	}
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(ctx context.Context, now int64) (int, error) {
	var n int64
	err := s.do(ctx, false, func(w *wtx) error {
		r, err := w.exec(`DELETE FROM messages WHERE expires <= ?`, now)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		if n > 0 {
			w.s.resetCounts()
		}
		if err != nil {
			return err
		}
		_, err = w.exec(`DELETE FROM links WHERE expires <= ?`, now)
		return err
	})
	return int(n), err
}

// QueueDepth implements store.Store.
func (s *Store) QueueDepth(ctx context.Context) (int64, error) {
	var n int64
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n)
	return n, err
}
