// Package store is the hush client's persistence: one SQLite database in
// the home folder (modernc.org/sqlite, no cgo) holding this device's
// identity and prekeys, its sessions, its contacts and its messages.
//
// Secrets are sealed at rest (see crypt.go): private keys, session records,
// the device credential and message bodies. The database runs in WAL mode
// with synchronous=FULL and secure_delete=ON, so that a committed
// transaction survives a crash and a deleted row leaves no copy in the
// database file; [Store.Checkpoint] empties the WAL after deletions.
//
// Writes go through [Store.Update], which runs a function in one IMMEDIATE
// transaction. Its [Tx] implements [session.Store], so that a session
// operation (decrypting a message and advancing the ratchet) commits or
// rolls back together with whatever else the caller does in the same
// transaction (storing the message).
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/hushmsg/hush/key"
)

// DBFile is the database's name in the home folder.
const DBFile = "hush.db"

// ErrNoStore means the home folder has no store yet (not registered).
var ErrNoStore = errors.New("store: no hush store in this home")

// ErrNotFound is returned for a missing key, contact or message.
var ErrNotFound = errors.New("store: not found")

// schemaVersion: 2 the received table; 3 the ordinary key space (o_*
// tables), messages.device and outbox.request (docs/multidevice.md); 4
// o_devices; 5 attachments, uploads and outbox.blobs (issue 11); 6 the
// franking of received messages and outbox.commitment (issue 11,
// docs/franking.md); 7 groups, sender_keys and messages.sender
// (docs/groups.md).
const schemaVersion = 7

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS signed_prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS kyber_prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, last_resort INTEGER NOT NULL,
	created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS kyber_used (
	kyber_id INTEGER NOT NULL, signed_id INTEGER NOT NULL, base_key BLOB NOT NULL,
	PRIMARY KEY (kyber_id, signed_id, base_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
	name TEXT NOT NULL, device INTEGER NOT NULL, record BLOB NOT NULL,
	PRIMARY KEY (name, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contacts (
	name TEXT PRIMARY KEY, device INTEGER NOT NULL, identity BLOB,
	verified INTEGER NOT NULL DEFAULT 0, needs_confirm INTEGER NOT NULL DEFAULT 0,
	pending_identity BLOB, pending_device INTEGER, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS old_identities (
	name TEXT NOT NULL, identity BLOB NOT NULL, PRIMARY KEY (name, identity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	peer TEXT NOT NULL,
	msg_id BLOB,
	outgoing INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	secret INTEGER NOT NULL,
	body BLOB NOT NULL,
	sent_at INTEGER NOT NULL,
	at INTEGER NOT NULL,
	timer INTEGER NOT NULL,
	expires_at INTEGER,
	shown INTEGER NOT NULL,
	state INTEGER NOT NULL,
	server_id INTEGER,
	device INTEGER NOT NULL DEFAULT 0,
	sender TEXT NOT NULL DEFAULT '',
	UNIQUE (peer, outgoing, msg_id));
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages(peer, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_unshown ON messages(id) WHERE shown = 0;
CREATE TABLE IF NOT EXISTS received (server_id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
	message INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	peer TEXT NOT NULL, device INTEGER NOT NULL, identity BLOB NOT NULL,
	type INTEGER NOT NULL, ciphertext BLOB NOT NULL, expires_in INTEGER NOT NULL,
	request BLOB, blobs TEXT, commitment BLOB);
CREATE TABLE IF NOT EXISTS o_prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS o_signed_prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS o_kyber_prekeys (
	id INTEGER PRIMARY KEY, record BLOB NOT NULL, last_resort INTEGER NOT NULL,
	created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE IF NOT EXISTS o_kyber_used (
	kyber_id INTEGER NOT NULL, signed_id INTEGER NOT NULL, base_key BLOB NOT NULL,
	PRIMARY KEY (kyber_id, signed_id, base_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS o_sessions (
	name TEXT NOT NULL, device INTEGER NOT NULL, record BLOB NOT NULL,
	PRIMARY KEY (name, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS o_contacts (
	name TEXT PRIMARY KEY, identity BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS o_devices (
	name TEXT NOT NULL, device INTEGER NOT NULL, PRIMARY KEY (name, device)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attachments (
	message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	idx INTEGER NOT NULL, meta BLOB NOT NULL, state INTEGER NOT NULL, path TEXT,
	PRIMARY KEY (message, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attachments_pending ON attachments(message) WHERE state = 0;
CREATE TABLE IF NOT EXISTS uploads (
	id INTEGER PRIMARY KEY, peer TEXT NOT NULL, secret INTEGER NOT NULL, file TEXT NOT NULL,
	size INTEGER NOT NULL, mtime INTEGER NOT NULL, blob TEXT NOT NULL, secrets BLOB NOT NULL,
	created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id BLOB PRIMARY KEY, record BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sender_keys (
	name TEXT NOT NULL, device INTEGER NOT NULL, dist BLOB NOT NULL, grp BLOB NOT NULL, record BLOB NOT NULL,
	PRIMARY KEY (name, device, dist)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sender_keys_by_group ON sender_keys(grp, name);
` + frankingTable

// migrations bring a store of an older schema version (the index) up to
// the next one; the schema above then adds the tables that are new.
var migrations = map[int]string{
	2: `ALTER TABLE messages ADD COLUMN device INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN request BLOB;`,
	3: ``,                                                                 // o_devices: made by the schema
	4: `ALTER TABLE outbox ADD COLUMN blobs TEXT;`,                        // and attachments, uploads: made by the schema
	5: `ALTER TABLE outbox ADD COLUMN commitment BLOB;`,                   // and franking: made by the schema
	6: `ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT '';`, // and the group tables: made by the schema
}

// Store is an open client store. Its methods are safe for concurrent use;
// writes are serialized by SQLite (one connection in this process, and a
// busy timeout against other processes on the same home).
type Store struct {
	db   *sql.DB
	seal *sealer
	home string

	account  *Account
	identity *key.IdentityKeyPair
	// accountIdentity is the account identity key of ordinary
	// conversations, nil until made here or received when linking.
	accountIdentity *key.IdentityKeyPair
	commits         atomic.Uint64 // write transactions committed by this Store
	stmts           sync.Map      // SQL text → *sql.Stmt
	toPrepare       sync.Map      // SQL text → true: to prepare after a commit
	oGen            atomic.Uint64 // writes to the ordinary sessions table (fancache.go)
	fan             fanCache
}

// Account is this device's registration.
type Account struct {
	// Server is the first of Servers. Setting only Server (one URL) is
	// the same as Servers with that one URL.
	Server string // https://host:port
	// Servers are the URLs of the nodes of the server's cluster, in the
	// order given (docs/client.md, "Several servers"); one for most homes.
	// A home of before them has only "server" in its meta: it reads as
	// that one URL.
	Servers        []string
	Fingerprint    string // hex SHA-256 of the server's certificate (every node's)
	Username       string
	DeviceID       uint32
	Credential     string // the device's bearer credential (sealed at rest)
	RegistrationID key.RegistrationID
}

// Options configure Open.
type Options struct {
	// Create makes the home folder, the database and the key file if they
	// do not exist.
	Create bool
	// Passphrase is called when the store is protected by a passphrase.
	Passphrase func() ([]byte, error)
}

// Open opens the store in home.
func Open(ctx context.Context, home string, o Options) (*Store, error) {
	dbPath := filepath.Join(home, DBFile)
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if !o.Create {
			return nil, ErrNoStore
		}
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, err
		}
		// SQLite gives the -wal and -shm files the database's mode.
		f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	dsn := "file:" + dbPath + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(ON)&_pragma=secure_delete(ON)&_pragma=temp_store(MEMORY)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	s := &Store{db: db, home: home}
	if err := s.init(ctx, o); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, o Options) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("store: opening %s: %w", filepath.Join(s.home, DBFile), err)
	}
	if v > schemaVersion {
		return fmt.Errorf("store: the store was written by a newer hush (schema %d)", v)
	}
	if v < schemaVersion {
		if err := s.migrate(ctx, v); err != nil {
			return fmt.Errorf("store: creating schema: %w", err)
		}
	}
	m, err := s.allMeta(ctx)
	if err != nil {
		return err
	}
	var dk []byte
	switch {
	case m["wrapped_key"] != nil:
		if o.Passphrase == nil {
			return ErrNeedPassphrase
		}
		w, err := parseWrapped(m["wrapped_key"])
		if err != nil {
			return err
		}
		pass, err := o.Passphrase()
		if err != nil {
			return err
		}
		if dk, err = unwrapKey(w, pass); err != nil {
			return err
		}
	case m["key_check"] == nil:
		// A new store: make its data key.
		dk = make([]byte, dataKeySize)
		rand.Read(dk)
		if err := writeKeyFile(s.home, dk); err != nil {
			return fmt.Errorf("store: writing the key file: %w", err)
		}
	default:
		if dk, err = readKeyFile(s.home); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: the key file %s is missing: the store cannot be opened without it", filepath.Join(s.home, KeyFile))
		} else if err != nil {
			return err
		}
	}
	if s.seal, err = newSealer(dk); err != nil {
		return err
	}
	if m["key_check"] == nil {
		if _, err := s.db.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('key_check', ?)",
			s.seal.seal([]byte(keyCheck), "meta", "key_check", "")); err != nil {
			return err
		}
	} else if err := checkKey(s.seal, m["key_check"]); err != nil {
		return err
	}
	return s.loadAccount(m)
}

// migrate brings the schema from version v (0: a new store) to
// schemaVersion in one transaction.
func (s *Store) migrate(ctx context.Context, v int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if v > 0 {
		// Version 1 differs from 2 only by a table the schema creates.
		for from := max(v, 2); from < schemaVersion; from++ {
			if migrations[from] == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
				return fmt.Errorf("migrating from version %d: %w", from, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, schema+"PRAGMA user_version = "+strconv.Itoa(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) allMeta(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT k, v FROM meta")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[string][]byte)
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

func (s *Store) loadAccount(m map[string][]byte) error {
	if m["identity"] == nil || m["credential"] == nil {
		return nil
	}
	if v := m[metaAccountIdentity]; v != nil {
		b, err := s.seal.open(v, "meta", "v", metaAccountIdentity)
		if err != nil {
			return err
		}
		if s.accountIdentity, err = key.ParseIdentityKeyPair(b); err != nil {
			return fmt.Errorf("store: account identity: %w", err)
		}
	}
	idb, err := s.seal.open(m["identity"], "meta", "v", "identity")
	if err != nil {
		return err
	}
	if s.identity, err = key.ParseIdentityKeyPair(idb); err != nil {
		return fmt.Errorf("store: identity: %w", err)
	}
	cred, err := s.seal.open(m["credential"], "meta", "v", "credential")
	if err != nil {
		return err
	}
	dev, _ := strconv.ParseUint(string(m["device"]), 10, 32)
	reg, _ := strconv.ParseUint(string(m["registration_id"]), 10, 32)
	servers := []string{string(m["server"])}
	if v := m["servers"]; v != nil {
		servers = strings.Split(string(v), "\n")
	}
	s.account = &Account{
		Server:         servers[0],
		Servers:        servers,
		Fingerprint:    string(m["fingerprint"]),
		Username:       string(m["username"]),
		DeviceID:       uint32(dev),
		Credential:     string(cred),
		RegistrationID: key.RegistrationID(reg),
	}
	return nil
}

// Close closes the database. (SQLite checkpoints the WAL when the last
// connection to it closes.)
func (s *Store) Close() error { return s.db.Close() }

// Home is the folder the store is in.
func (s *Store) Home() string { return s.home }

// Account returns this device's registration, or nil before registering.
func (s *Store) Account() *Account {
	if s.account == nil {
		return nil
	}
	a := *s.account
	a.Servers = append([]string(nil), a.Servers...)
	return &a
}

// Identity returns this device's identity key pair, or nil.
func (s *Store) Identity() *key.IdentityKeyPair { return s.identity }

// AccountIdentity returns the account identity key pair of ordinary
// conversations, or nil if this device does not hold it.
func (s *Store) AccountIdentity() *key.IdentityKeyPair { return s.accountIdentity }

// Checkpoint copies the WAL into the database and truncates it to zero
// bytes, so that deleted rows leave no copy in the WAL file.
func (s *Store) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("store: WAL checkpoint blocked by another reader")
	}
	return nil
}

// Update runs fn in one write transaction, committed if fn returns nil.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	err := s.update(ctx, fn, false)
	s.prepareNoted(ctx) // once the connection is back in the pool
	return err
}

// UpdateUnsynced is Update for a transaction that may be lost in a power
// failure (never in a crash of the process): it commits without waiting for
// the disk (synchronous=NORMAL: in WAL mode the commit stays atomic, and
// becomes durable with the next commit that syncs). It is for records whose
// loss only repeats work safely: that the server accepted a message (lost,
// the message is sent again and every device drops the copy). It saves an
// fsync, which costs more CPU than ten ratchet steps here.
func (s *Store) UpdateUnsynced(ctx context.Context, fn func(tx *Tx) error) error {
	err := s.update(ctx, fn, true)
	s.prepareNoted(ctx)
	return err
}

func (s *Store) update(ctx context.Context, fn func(tx *Tx) error, unsynced bool) (err error) {
	// The pool's one connection, held until the transaction is over (and
	// its sessions are back in the fan-out cache): no other transaction
	// runs meanwhile, unsynced or not.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var dc any
	conn.Raw(func(c any) error { dc = c; return nil })
	if unsynced {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			return err
		}
		defer func() {
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); rerr != nil {
				// A connection that could stay unsynced is thrown away; the
				// next one is opened with synchronous=FULL.
				conn.Raw(func(any) error { return driver.ErrBadConn })
				err = errors.Join(err, rerr)
			}
		}()
	}
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return s.run(sqlTx, dc, fn)
}

func (s *Store) run(sqlTx *sql.Tx, conn any, fn func(tx *Tx) error) error {
	tx := &Tx{q: q{x: cachedTx{tx: sqlTx, s: s}, s: s}, Now: time.Now(), conn: conn}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return err
	}
	s.commits.Add(1)
	s.fanCommitted(tx.fan)
	if tx.newIdentity != nil {
		s.identity = tx.newIdentity
	}
	if tx.newAccount != nil {
		s.account = tx.newAccount
	}
	if tx.accountIdentitySet {
		s.accountIdentity = tx.newAccountIdentity
	}
	return nil
}

// Version identifies a state of the store: it changes whenever a write
// transaction commits, in this process or another one on the same home.
type Version struct {
	local  uint64 // commits through this Store
	others int64  // SQLite's data_version: commits by other connections
}

// Version returns the store's current version, for a UI to poll: when it
// differs from the last one seen, read again. It costs one PRAGMA.
func (s *Store) Version(ctx context.Context) (Version, error) {
	v := Version{local: s.commits.Load()}
	// data_version is per connection, and the pool holds one, which this
	// process's own commits leave unchanged: they are counted above.
	err := s.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v.others)
	return v, err
}

// Read returns a reader of the store outside any transaction.
func (s *Store) Read() *q { return &q{x: cachedDB{s}, s: s} }

// Statements are prepared once per Store and kept (the pool holds one
// connection, so a prepared statement stays on it): modernc's SQLite parses
// a statement again at every call otherwise, which was a third of the cost
// of an ordinary fan-out's transaction. The set of statements is fixed by
// the code (a few vary with a count, bounded by the devices of an account).

// prepared returns the Store's prepared statement for query. Within a
// transaction (which holds the pool's one connection) a statement not
// prepared yet cannot be prepared on the pool: it is run unprepared and
// noted, and Update prepares it after the commit.
func (s *Store) prepared(ctx context.Context, query string, inTx bool) *sql.Stmt {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if inTx {
		s.toPrepare.Store(query, true)
		return nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if old, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return old.(*sql.Stmt)
	}
	return st
}

// prepareNoted prepares the statements transactions ran unprepared.
func (s *Store) prepareNoted(ctx context.Context) {
	s.toPrepare.Range(func(k, _ any) bool {
		s.toPrepare.Delete(k)
		s.prepared(ctx, k.(string), false)
		return true
	})
}

// cachedTx runs statements of a transaction with the Store's prepared ones.
type cachedTx struct {
	tx *sql.Tx
	s  *Store
}

// stmtContext is the context a statement of a transaction runs with: ctx
// without its cancellation while ctx is not done. For every statement
// whose context can be cancelled, modernc's driver starts a goroutine that
// waits for it (to interrupt SQLite), a few percent of an ordinary send's
// CPU (BenchmarkOrdinaryFanOut). A transaction's statements are short and
// wait for no lock (BEGIN IMMEDIATE took the write lock, with ctx), and a
// cancelled ctx still ends the transaction: database/sql rolls it back,
// and the next statement fails.
func stmtContext(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (c cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = stmtContext(ctx)
	if st := c.s.prepared(ctx, query, true); st != nil {
		return c.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, query, args...)
}

func (c cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = stmtContext(ctx)
	if st := c.s.prepared(ctx, query, true); st != nil {
		return c.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, query, args...)
}

func (c cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = stmtContext(ctx)
	if st := c.s.prepared(ctx, query, true); st != nil {
		return c.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, query, args...)
}

// cachedDB runs statements outside a transaction with the prepared ones.
type cachedDB struct{ s *Store }

func (c cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.s.prepared(ctx, query, false); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.s.db.ExecContext(ctx, query, args...)
}

func (c cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.s.prepared(ctx, query, false); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.s.db.QueryContext(ctx, query, args...)
}

func (c cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.s.prepared(ctx, query, false); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.s.db.QueryRowContext(ctx, query, args...)
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q holds the queries shared by reads and transactions.
type q struct {
	x querier
	s *Store
}

// Tx is a write transaction. It implements session.Store.
type Tx struct {
	q
	// Now is the transaction's time, for every timestamp it writes.
	Now time.Time
	// Changes lists the identity changes SaveIdentity recorded.
	Changes []IdentityChange
	// Notices lists the notices added in this transaction.
	Notices []int64

	newIdentity *key.IdentityKeyPair
	newAccount  *Account

	newAccountIdentity *key.IdentityKeyPair
	accountIdentitySet bool

	conn any    // the driver connection it runs on
	fan  *fanTx // what it took from the fan-out cache
}

// account is the registration as this transaction sees it.
func (t *Tx) account() *Account {
	if t.newAccount != nil {
		return t.newAccount
	}
	return t.s.account
}

// AccountIdentity is the account identity key pair as this transaction
// sees it, or nil.
func (t *Tx) AccountIdentity() *key.IdentityKeyPair {
	if t.accountIdentitySet {
		return t.newAccountIdentity
	}
	return t.s.accountIdentity
}

// Meta keys of the ordinary key space.
const (
	metaAccountIdentity = "account_identity"
	metaOrdinaryRegID   = "o_registration_id"
)

// SetAccountIdentity records the account identity key pair (sealed at rest
// like the secret identity), or removes it when ik is nil.
func (t *Tx) SetAccountIdentity(ctx context.Context, ik *key.IdentityKeyPair) error {
	if ik == nil {
		if _, err := t.x.ExecContext(ctx, "DELETE FROM meta WHERE k = ?", metaAccountIdentity); err != nil {
			return err
		}
	} else {
		b, err := ik.MarshalBinary()
		if err != nil {
			return err
		}
		if err := t.setMeta(ctx, metaAccountIdentity, t.s.seal.seal(b, "meta", "v", metaAccountIdentity)); err != nil {
			return err
		}
	}
	t.newAccountIdentity, t.accountIdentitySet = ik, true
	return nil
}

// SetOrdinaryRegistrationID records this device's ordinary registration
// id (1..16383).
func (t *Tx) SetOrdinaryRegistrationID(ctx context.Context, reg key.RegistrationID) error {
	return t.SetMetaInt(ctx, metaOrdinaryRegID, int64(reg))
}

// OrdinaryRegistrationID returns this device's ordinary registration id,
// or 0.
func (t *q) OrdinaryRegistrationID(ctx context.Context) (key.RegistrationID, error) {
	v, err := t.MetaInt(ctx, metaOrdinaryRegID, 0)
	return key.RegistrationID(v), err
}

// IdentityChange is a peer's identity key replaced by a new one.
type IdentityChange struct {
	Name        string
	Old, New    key.IdentityKey
	WasVerified bool // sending needs a new confirmation
}

func (t *q) meta(ctx context.Context, k string) ([]byte, error) {
	var v []byte
	err := t.x.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = ?", k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

func (t *Tx) setMeta(ctx context.Context, k string, v []byte) error {
	_, err := t.x.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v)
	return err
}

// MetaInt returns an integer setting, or def.
func (t *q) MetaInt(ctx context.Context, k string, def int64) (int64, error) {
	v, err := t.meta(ctx, k)
	if err != nil || v == nil {
		return def, err
	}
	return strconv.ParseInt(string(v), 10, 64)
}

// SetMetaInt sets an integer setting.
func (t *Tx) SetMetaInt(ctx context.Context, k string, v int64) error {
	return t.setMeta(ctx, k, []byte(strconv.FormatInt(v, 10)))
}

// SetAccount records this device's registration and identity.
func (t *Tx) SetAccount(ctx context.Context, a *Account, identity *key.IdentityKeyPair) error {
	idb, err := identity.MarshalBinary()
	if err != nil {
		return err
	}
	servers := a.Servers
	if len(servers) == 0 {
		servers = []string{a.Server}
	}
	for _, u := range servers {
		if u == "" || strings.ContainsAny(u, "\n") {
			return fmt.Errorf("store: bad server URL %q", u)
		}
	}
	for k, v := range map[string][]byte{
		"server":          []byte(servers[0]),
		"servers":         []byte(strings.Join(servers, "\n")),
		"fingerprint":     []byte(a.Fingerprint),
		"username":        []byte(a.Username),
		"device":          []byte(strconv.FormatUint(uint64(a.DeviceID), 10)),
		"registration_id": []byte(strconv.FormatUint(uint64(a.RegistrationID), 10)),
		"credential":      t.s.seal.seal([]byte(a.Credential), "meta", "v", "credential"),
		"identity":        t.s.seal.seal(idb, "meta", "v", "identity"),
	} {
		if err := t.setMeta(ctx, k, v); err != nil {
			return err
		}
	}
	acc := *a
	acc.Server, acc.Servers = servers[0], append([]string(nil), servers...)
	t.newAccount, t.newIdentity = &acc, identity
	return nil
}

// SetPendingIdentity keeps a new identity (and registration id) that
// make-secret is about to install, so that a crash between the server's
// answer and the local switch can be finished later.
func (t *Tx) SetPendingIdentity(ctx context.Context, identity *key.IdentityKeyPair, reg key.RegistrationID) error {
	if identity == nil {
		_, err := t.x.ExecContext(ctx, "DELETE FROM meta WHERE k IN ('pending_identity', 'pending_registration_id')")
		return err
	}
	idb, err := identity.MarshalBinary()
	if err != nil {
		return err
	}
	if err := t.setMeta(ctx, "pending_identity", t.s.seal.seal(idb, "meta", "v", "pending_identity")); err != nil {
		return err
	}
	return t.setMeta(ctx, "pending_registration_id", []byte(strconv.FormatUint(uint64(reg), 10)))
}

// PendingIdentity returns what SetPendingIdentity kept, or nil.
func (t *q) PendingIdentity(ctx context.Context) (*key.IdentityKeyPair, key.RegistrationID, error) {
	v, err := t.meta(ctx, "pending_identity")
	if err != nil || v == nil {
		return nil, 0, err
	}
	b, err := t.s.seal.open(v, "meta", "v", "pending_identity")
	if err != nil {
		return nil, 0, err
	}
	ik, err := key.ParseIdentityKeyPair(b)
	if err != nil {
		return nil, 0, err
	}
	reg, err := t.MetaInt(ctx, "pending_registration_id", 0)
	return ik, key.RegistrationID(reg), err
}

// SetPassphrase protects the data key with pass (Argon2id) and removes the
// key file; a nil pass goes back to the key file.
func (s *Store) SetPassphrase(ctx context.Context, pass []byte) error {
	dk := s.dataKey()
	if pass == nil {
		if err := writeKeyFile(s.home, dk); err != nil {
			return err
		}
		_, err := s.db.ExecContext(ctx, "DELETE FROM meta WHERE k = 'wrapped_key'")
		if err == nil {
			err = s.Checkpoint(ctx)
		}
		return err
	}
	w, err := wrapKey(dk, pass)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('wrapped_key', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", w.marshal()); err != nil {
		return err
	}
	if err := s.Checkpoint(ctx); err != nil {
		return err
	}
	return removeKeyFile(s.home)
}

// HasPassphrase reports whether the store is protected by a passphrase.
func (s *Store) HasPassphrase(ctx context.Context) (bool, error) {
	v, err := s.Read().meta(ctx, "wrapped_key")
	return v != nil, err
}

// dataKey recovers the data key from the sealer (it is kept only there).
func (s *Store) dataKey() []byte { return s.seal.key }
