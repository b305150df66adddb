package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// newDevice is a store of user's device dev with an account identity and
// ordinary prekeys; it returns the store and a bundle of its ordinary keys.
func newDevice(t *testing.T, user string, dev uint32, account *key.IdentityKeyPair) (*Store, *session.Bundle) {
	ctx := t.Context()
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), user), Options{Create: true})
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	now := time.Now()
	spk, err := key.GenerateSignedPreKey(rand.Reader, 3, account, now)
	check(t, err)
	kpk, err := key.GenerateKyberPreKey(rand.Reader, 4, account, now)
	check(t, err)
	check(t, s.Update(ctx, func(tx *Tx) error {
		if err := tx.SetAccount(ctx, &Account{Server: "https://h:1", Fingerprint: "ff", Username: user, DeviceID: dev,
			Credential: "c", RegistrationID: 7}, ik); err != nil {
			return err
		}
		if err := tx.SetAccountIdentity(ctx, account); err != nil {
			return err
		}
		if err := tx.SetOrdinaryRegistrationID(ctx, key.RegistrationID(100+dev)); err != nil {
			return err
		}
		o := tx.Ordinary()
		if err := o.StoreSignedPreKey(ctx, spk); err != nil {
			return err
		}
		return o.StoreKyberPreKeys(ctx, []*key.KyberPreKey{kpk}, true)
	}))
	return s, &session.Bundle{RegistrationID: key.RegistrationID(100 + dev), DeviceID: key.DeviceID(dev), IdentityKey: account.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		KyberPreKeyID: &kpk.ID, KyberPreKey: kpk.KeyPair.Public, KyberPreKeySignature: kpk.Signature}
}

func ordinaryCipher(s *Store, tx *Tx) *session.Cipher {
	a := s.Account()
	return &session.Cipher{Store: tx.Ordinary(), Local: session.Address{Name: a.Username, Device: key.DeviceID(a.DeviceID)}}
}

// TestOrdinarySpace: an ordinary session runs on the ordinary key space of
// a transaction (PQXDH from ordinary prekeys signed by the account
// identity), apart from the secret space: the same (name, device) has no
// secret session after it, the account identity survives a reopen sealed,
// and a sealed ordinary record moved into the secret table does not open.
func TestOrdinarySpace(t *testing.T) {
	ctx := t.Context()
	aliceID, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	bobID, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	alice, _ := newDevice(t, "alice", 1, aliceID)
	bob, bundle := newDevice(t, "bob", 2, bobID)
	bobAddr := session.Address{Name: "bob", Device: 2}
	aliceAddr := session.Address{Name: "alice", Device: 1}
	var ct *session.Ciphertext
	check(t, alice.Update(ctx, func(tx *Tx) error {
		c := ordinaryCipher(alice, tx)
		if err := c.ProcessBundle(ctx, bobAddr, bundle); err != nil {
			return err
		}
		var err error
		ct, err = c.Encrypt(ctx, bobAddr, []byte("hello"))
		return err
	}))
	check(t, bob.Update(ctx, func(tx *Tx) error {
		pt, err := ordinaryCipher(bob, tx).Decrypt(ctx, aliceAddr, ct.Type, ct.Body)
		if err == nil && string(pt) != "hello" {
			t.Errorf("decrypted %q", pt)
		}
		return err
	}))
	if r, err := alice.Read().LoadSession(ctx, bobAddr); err != nil || r != nil {
		t.Fatalf("a secret session with bob after an ordinary one: %v %v", r, err)
	}
	if devs, err := alice.Read().Keys(OrdinarySpace).SessionDevices(ctx, "bob"); err != nil || len(devs) != 1 || devs[0] != 2 {
		t.Fatalf("ordinary session devices %v %v", devs, err)
	}
	if k, err := bob.Read().AccountIdentityOf(ctx, "alice"); err != nil || k == nil || *k != aliceID.Public {
		t.Fatalf("bob's account key of alice: %v %v", k, err)
	}
	// Reopen: the account identity comes back from its sealed form.
	home := alice.Home()
	check(t, alice.Close())
	alice = open(t, home, Options{})
	if ik := alice.AccountIdentity(); ik == nil || ik.Public != aliceID.Public {
		t.Fatal("the account identity did not survive a reopen")
	}
	db, err := sql.Open("sqlite", filepath.Join(home, DBFile))
	check(t, err)
	defer db.Close()
	var sealed []byte
	check(t, db.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'account_identity'").Scan(&sealed))
	priv, _ := aliceID.MarshalBinary()
	if strings.Contains(string(sealed), string(priv[len(priv)-32:])) {
		t.Fatal("the account identity's private key is in the database in the clear")
	}
	_, err = db.ExecContext(ctx, "INSERT INTO sessions (name, device, record) SELECT name, device, record FROM o_sessions")
	check(t, err)
	if _, err := alice.Read().LoadSession(ctx, bobAddr); err == nil {
		t.Fatal("an ordinary session record moved into the secret table opened")
	}
}

// TestOrdinaryTrust: a device of one's own account must hold the account
// identity this device has; others are trusted on first use, and a change
// is taken with a notice in the ordinary conversation (not the secret one).
func TestOrdinaryTrust(t *testing.T) {
	ctx := t.Context()
	aliceID, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	other, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	k2, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	s, _ := newDevice(t, "alice", 1, aliceID)
	check(t, s.Update(ctx, func(tx *Tx) error {
		o := tx.Ordinary()
		self := session.Address{Name: "alice", Device: 3}
		if ok, err := o.IsTrustedIdentity(ctx, self, aliceID.Public, session.Receiving); err != nil || !ok {
			t.Errorf("own device with the account key: %v %v", ok, err)
		}
		if ok, err := o.IsTrustedIdentity(ctx, self, other.Public, session.Receiving); err != nil || ok {
			t.Errorf("own device with another key: %v %v", ok, err)
		}
		bob := session.Address{Name: "bob", Device: 1}
		for i, k := range []key.IdentityKey{other.Public, other.Public, k2.Public} {
			if ok, err := o.IsTrustedIdentity(ctx, bob, k, session.Sending); err != nil || !ok {
				t.Errorf("bob's key %d not trusted: %v", i, err)
			}
			replaced, err := o.SaveIdentity(ctx, bob, k)
			if err != nil || replaced != (i == 2) {
				t.Errorf("save %d: replaced %v, %v", i, replaced, err)
			}
		}
		return nil
	}))
	ms, err := s.Read().Conversation(ctx, "bob", false, 0, time.Now())
	check(t, err)
	if len(ms) != 1 || ms[0].Kind != KindNotice || ms[0].Secret || !strings.Contains(ms[0].Body, "account key changed") {
		t.Fatalf("ordinary conversation %+v", ms)
	}
	if ms, _ := s.Read().Conversation(ctx, "bob", true, 0, time.Now()); len(ms) != 0 {
		t.Fatalf("secret conversation %+v", ms)
	}
}

// TestTwoConversations: the ordinary and the secret conversation with the
// same person are listed apart, a message keeps its sending device, and a
// content id is stored once per (peer, direction).
func TestTwoConversations(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	newAccount(t, s)
	id := content.NewID()
	check(t, s.Update(ctx, func(tx *Tx) error {
		for _, m := range []*Message{
			{Peer: "bob", MsgID: content.NewID(), Secret: true, Body: "secret", SentAt: tx.Now, Device: 1},
			{Peer: "bob", MsgID: id, Body: "ordinary", SentAt: tx.Now, Device: 3},
			{Peer: "bob", MsgID: id, Outgoing: true, Body: "mine", SentAt: tx.Now, Device: 2, State: StateSent},
		} {
			if added, err := tx.AddMessage(ctx, m); err != nil || !added {
				return err
			}
		}
		added, err := tx.AddMessage(ctx, &Message{Peer: "bob", MsgID: id, Body: "again", SentAt: tx.Now})
		if added {
			t.Error("the same content id from the same peer stored twice")
		}
		return err
	}))
	cs, err := s.Read().Conversations(ctx)
	check(t, err)
	if len(cs) != 2 || cs[0].Peer != "bob" || cs[1].Peer != "bob" || cs[0].Secret == cs[1].Secret {
		t.Fatalf("conversations %+v", cs)
	}
	for _, c := range cs {
		if want := map[bool]int{true: 1, false: 2}[c.Secret]; c.Messages != want {
			t.Errorf("%+v: want %d messages", c, want)
		}
	}
	ms, err := s.Read().Conversation(ctx, "bob", false, 0, time.Now())
	check(t, err)
	if len(ms) != 2 || ms[0].Body != "ordinary" || ms[0].Device != 3 || ms[1].Device != 2 || !ms[1].Outgoing {
		t.Fatalf("ordinary conversation %+v", ms)
	}
}

// schemaV2 is the schema of version 2, as hush wrote it before the
// ordinary key space.
const schemaV2 = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE signed_prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE kyber_prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL, last_resort INTEGER NOT NULL,
	created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE kyber_used (kyber_id INTEGER NOT NULL, signed_id INTEGER NOT NULL, base_key BLOB NOT NULL,
	PRIMARY KEY (kyber_id, signed_id, base_key)) WITHOUT ROWID;
CREATE TABLE sessions (name TEXT NOT NULL, device INTEGER NOT NULL, record BLOB NOT NULL, PRIMARY KEY (name, device)) WITHOUT ROWID;
CREATE TABLE contacts (name TEXT PRIMARY KEY, device INTEGER NOT NULL, identity BLOB,
	verified INTEGER NOT NULL DEFAULT 0, needs_confirm INTEGER NOT NULL DEFAULT 0,
	pending_identity BLOB, pending_device INTEGER, updated INTEGER NOT NULL);
CREATE TABLE old_identities (name TEXT NOT NULL, identity BLOB NOT NULL, PRIMARY KEY (name, identity)) WITHOUT ROWID;
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, msg_id BLOB, outgoing INTEGER NOT NULL,
	kind INTEGER NOT NULL, secret INTEGER NOT NULL, body BLOB NOT NULL, sent_at INTEGER NOT NULL, at INTEGER NOT NULL,
	timer INTEGER NOT NULL, expires_at INTEGER, shown INTEGER NOT NULL, state INTEGER NOT NULL, server_id INTEGER,
	UNIQUE (peer, outgoing, msg_id));
CREATE TABLE received (server_id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE outbox (message INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	peer TEXT NOT NULL, device INTEGER NOT NULL, identity BLOB NOT NULL,
	type INTEGER NOT NULL, ciphertext BLOB NOT NULL, expires_in INTEGER NOT NULL);
PRAGMA user_version = 2;`

// TestMigrateFromV2: a home of schema 2 opens, keeps its account, messages
// and queued message, and gains the ordinary key space.
func TestMigrateFromV2(t *testing.T) {
	ctx := t.Context()
	home := filepath.Join(t.TempDir(), "h")
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	var mid int64
	check(t, s.Update(ctx, func(tx *Tx) error {
		m := &Message{Peer: "bob", MsgID: content.NewID(), Outgoing: true, Secret: true, Body: "kept", SentAt: tx.Now, State: StatePending}
		if _, err := tx.AddMessage(ctx, m); err != nil {
			return err
		}
		mid = m.ID
		return tx.AddOutgoing(ctx, &Outgoing{Message: m.ID, Peer: "bob", Device: 1, Identity: []byte{5}, Type: 3, Ciphertext: []byte{1}})
	}))
	check(t, s.Close())
	// Rebuild the same rows in a version-2 database.
	db, err := sql.Open("sqlite", filepath.Join(home, DBFile))
	check(t, err)
	_, err = db.ExecContext(ctx, `ATTACH ':memory:' AS old;`)
	check(t, err)
	for _, stmt := range []string{
		"CREATE TABLE old.meta AS SELECT * FROM meta", "CREATE TABLE old.messages AS SELECT * FROM messages",
		"CREATE TABLE old.outbox AS SELECT * FROM outbox",
		"DROP TABLE outbox", "DROP TABLE messages", "DROP TABLE meta", "DROP TABLE o_prekeys", "DROP TABLE o_signed_prekeys",
		"DROP TABLE o_kyber_prekeys", "DROP TABLE o_kyber_used", "DROP TABLE o_sessions", "DROP TABLE o_contacts", "DROP TABLE o_devices",
		"DROP TABLE prekeys", "DROP TABLE signed_prekeys", "DROP TABLE kyber_prekeys", "DROP TABLE kyber_used",
		"DROP TABLE sessions", "DROP TABLE contacts", "DROP TABLE old_identities", "DROP TABLE received",
	} {
		_, err := db.ExecContext(ctx, stmt)
		check(t, err)
	}
	_, err = db.ExecContext(ctx, schemaV2)
	check(t, err)
	for _, stmt := range []string{
		"INSERT INTO meta SELECT * FROM old.meta",
		"INSERT INTO messages SELECT id, peer, msg_id, outgoing, kind, secret, body, sent_at, at, timer, expires_at, shown, state, server_id FROM old.messages",
		"INSERT INTO outbox SELECT message, peer, device, identity, type, ciphertext, expires_in FROM old.outbox",
	} {
		_, err := db.ExecContext(ctx, stmt)
		check(t, err)
	}
	check(t, db.Close())

	s = open(t, home, Options{})
	if a := s.Account(); a == nil || a.Username != "alice" {
		t.Fatalf("account after migration: %+v", a)
	}
	if s.AccountIdentity() != nil {
		t.Fatal("an account identity out of nowhere")
	}
	m, err := s.Read().Message(ctx, mid)
	if err != nil || m.Body != "kept" || m.Device != 0 {
		t.Fatalf("message after migration: %+v %v", m, err)
	}
	out, err := s.Read().Outbox(ctx)
	if err != nil || len(out) != 1 || out[0].Request != nil || out[0].Type != 3 {
		t.Fatalf("outbox after migration: %+v %v", out, err)
	}
	var v int
	check(t, s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v))
	if v != schemaVersion {
		t.Fatalf("user_version %d", v)
	}
	check(t, s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AddMessage(ctx, &Message{Peer: "bob", MsgID: content.NewID(), Body: "new", SentAt: tx.Now, Device: 4})
		return err
	}))
}

// TestUpdateUnsynced: the transaction commits without syncing
// (synchronous=NORMAL inside), and every other transaction syncs again
// afterwards (FULL), also after one that failed.
func TestUpdateUnsynced(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	newAccount(t, s)
	syncMode := func(x interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		var v int
		check(t, x.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v))
		return v
	}
	for _, fail := range []bool{false, true} {
		err := s.UpdateUnsynced(ctx, func(tx *Tx) error {
			if v := syncMode(tx.x); v != 1 {
				t.Errorf("synchronous is %d inside, want 1 (NORMAL)", v)
			}
			if err := tx.SetMetaInt(ctx, "x", 5); err != nil {
				return err
			}
			if fail {
				return errors.New("no")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatal(err)
		}
		check(t, s.Update(ctx, func(tx *Tx) error {
			if v := syncMode(tx.x); v != 2 {
				t.Errorf("synchronous is %d after, want 2 (FULL)", v)
			}
			return nil
		}))
	}
	if v, err := s.Read().MetaInt(ctx, "x", 0); err != nil || v != 5 {
		t.Fatalf("x = %d, %v", v, err)
	}
}

// TestGroups: a group's record and the sender key records bound to it are
// kept sealed, read back, and deleted by group and name; a group's lines
// carry their sender.
func TestGroups(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "h"), Options{Create: true})
	newAccount(t, s)
	g1, g2 := [16]byte{1}, [16]byte{2}
	d1, d2 := [16]byte{0xd1}, [16]byte{0xd2}
	check(t, s.Update(ctx, func(tx *Tx) error {
		if err := tx.SetGroup(ctx, g1, []byte("group one")); err != nil {
			return err
		}
		if err := tx.SetSenderKey(ctx, "bob", 2, d1, g1, []byte("bob's chain")); err != nil {
			return err
		}
		if err := tx.SetSenderKey(ctx, "bob", 2, d2, g2, []byte("bob's other chain")); err != nil {
			return err
		}
		_, err := tx.AddMessage(ctx, &Message{Peer: GroupPeer(g1), MsgID: content.NewID(), Body: "hi", SentAt: tx.Now, Sender: "bob", Device: 2})
		return err
	}))
	if b, err := s.Read().Group(ctx, g1); err != nil || string(b) != "group one" {
		t.Fatalf("group %q %v", b, err)
	}
	if _, err := s.Read().Group(ctx, g2); err != ErrNotFound {
		t.Fatalf("no group: %v", err)
	}
	if grp, rec, err := s.Read().SenderKey(ctx, "bob", 2, d1); err != nil || [16]byte(grp) != g1 || string(rec) != "bob's chain" {
		t.Fatalf("sender key %x %q %v", grp, rec, err)
	}
	var raw []byte
	check(t, s.db.QueryRowContext(ctx, "SELECT record FROM sender_keys WHERE dist = ?", d1[:]).Scan(&raw))
	if bytes.Contains(raw, []byte("bob's chain")) {
		t.Fatal("a sender key record stored in the clear")
	}
	check(t, s.Update(ctx, func(tx *Tx) error {
		n, err := tx.DeleteSenderKeys(ctx, g1, "bob")
		if n != 1 {
			t.Errorf("deleted %d", n)
		}
		return err
	}))
	if _, rec, err := s.Read().SenderKey(ctx, "bob", 2, d1); err != nil || rec != nil {
		t.Fatalf("deleted sender key %q %v", rec, err)
	}
	if _, rec, err := s.Read().SenderKey(ctx, "bob", 2, d2); err != nil || rec == nil {
		t.Fatalf("another group's sender key went: %v", err)
	}
	ms, err := s.Read().History(ctx, GroupPeer(g1), 0, time.Now())
	if err != nil || len(ms) != 1 || ms[0].Sender != "bob" {
		t.Fatalf("group lines %+v %v", ms, err)
	}
	if id, ok := ParseGroupPeer(GroupPeer(g1)); !ok || id != g1 {
		t.Fatal("group peer")
	}
	for _, p := range []string{"bob", "#", "#00", "#" + strings.Repeat("g", 32)} {
		if _, ok := ParseGroupPeer(p); ok {
			t.Errorf("%q read as a group", p)
		}
	}
}
