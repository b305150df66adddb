package store

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB, home string, o Options) *Store {
	ctx := t.Context()
	t.Helper()
	s, err := Open(ctx, home, o)
	check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func newAccount(t *testing.T, s *Store) *key.IdentityKeyPair {
	ctx := t.Context()
	t.Helper()
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	check(t, err)
	check(t, s.Update(ctx, func(tx *Tx) error {
		return tx.SetAccount(ctx, &Account{Server: "https://h:1", Fingerprint: "ff", Username: "alice", DeviceID: 1,
			Credential: "secret-credential", RegistrationID: 7}, ik)
	}))
	return ik
}

func TestOpenAndReopen(t *testing.T) {
	ctx := t.Context()
	home := filepath.Join(t.TempDir(), "h")
	if _, err := Open(ctx, home, Options{}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("opening a missing store: %v", err)
	}
	s, err := Open(ctx, home, Options{Create: true})
	check(t, err)
	ik := newAccount(t, s)
	check(t, s.Close())
	for _, f := range []string{KeyFile, DBFile} {
		fi, err := os.Stat(filepath.Join(home, f))
		check(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, fi.Mode().Perm())
		}
	}
	s = open(t, home, Options{})
	a := s.Account()
	if a == nil || a.Username != "alice" || a.Credential != "secret-credential" || a.RegistrationID != 7 || s.Identity().Public != ik.Public {
		t.Fatalf("account after reopening: %+v", a)
	}
	// Secrets are not in the files in the clear.
	s.Close()
	for _, f := range []string{DBFile, DBFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(home, f))
		if bytes.Contains(b, []byte("secret-credential")) || bytes.Contains(b, ik.Private.Bytes()) {
			t.Errorf("%s holds a secret in the clear", f)
		}
	}
}

func TestWrongKey(t *testing.T) {
	ctx := t.Context()
	home := t.TempDir()
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	s.Close()
	other := make([]byte, 32)
	rand.Read(other)
	check(t, os.WriteFile(filepath.Join(home, KeyFile), other, 0o600))
	if _, err := Open(ctx, home, Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("opening with another key: %v", err)
	}
	check(t, os.Remove(filepath.Join(home, KeyFile)))
	if _, err := Open(ctx, home, Options{}); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("opening without the key file: %v", err)
	}
}

// TestBoundToPlace: a sealed value moved to another row (or column) does
// not open.
func TestBoundToPlace(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	newAccount(t, s)
	var a, b int64
	check(t, s.Update(ctx, func(tx *Tx) error {
		m1 := &Message{Peer: "bob", MsgID: content.NewID(), Body: "first", SentAt: tx.Now}
		m2 := &Message{Peer: "bob", MsgID: content.NewID(), Body: "second", SentAt: tx.Now}
		if _, err := tx.AddMessage(ctx, m1); err != nil {
			return err
		}
		_, err := tx.AddMessage(ctx, m2)
		a, b = m1.ID, m2.ID
		return err
	}))
	_, err := s.db.Exec("UPDATE messages SET body = (SELECT body FROM messages WHERE id = ?) WHERE id = ?", a, b)
	check(t, err)
	if _, err := s.Read().Message(ctx, b); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a body moved to another message opened: %v", err)
	}
	if m, err := s.Read().Message(ctx, a); err != nil || m.Body != "first" {
		t.Fatalf("the original: %v %v", m, err)
	}
}

func TestPassphrase(t *testing.T) {
	ctx := t.Context()
	argonTime, argonMemory = 1, 1024 // fast for the test
	home := t.TempDir()
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	check(t, s.SetPassphrase(ctx, []byte("correct horse")))
	s.Close()
	if _, err := os.Stat(filepath.Join(home, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the key file is still there")
	}
	if _, err := Open(ctx, home, Options{}); !errors.Is(err, ErrNeedPassphrase) {
		t.Fatalf("without a passphrase: %v", err)
	}
	pass := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }
	if _, err := Open(ctx, home, Options{Passphrase: pass("wrong")}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("a wrong passphrase: %v", err)
	}
	s = open(t, home, Options{Passphrase: pass("correct horse")})
	if s.Account().Credential != "secret-credential" {
		t.Fatal("the account did not survive")
	}
	check(t, s.SetPassphrase(ctx, nil))
	s.Close()
	open(t, home, Options{})
}

// TestTamperedKDF: Argon2id parameters read from the store are checked
// before use: zero lanes or passes made argon2 panic, and absurd memory or
// passes would exhaust the machine. Each gets a clear error, and the
// passphrase is not even asked for.
func TestTamperedKDF(t *testing.T) {
	ctx := t.Context()
	argonTime, argonMemory = 1, 1024 // fast for the test
	home := t.TempDir()
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	check(t, s.SetPassphrase(ctx, []byte("correct horse")))
	good, err := s.Read().meta(ctx, "wrapped_key")
	check(t, err)
	s.Close()
	for _, tc := range []struct {
		name string
		edit func(b []byte)
	}{
		{"zero lanes", func(b []byte) { b[9] = 0 }},
		{"zero passes", func(b []byte) { binary.BigEndian.PutUint32(b[1:], 0) }},
		{"absurd passes", func(b []byte) { binary.BigEndian.PutUint32(b[1:], 1<<31) }},
		{"absurd memory", func(b []byte) { binary.BigEndian.PutUint32(b[5:], 0xffffffff) }},
		{"memory below 8 KiB per lane", func(b []byte) { binary.BigEndian.PutUint32(b[5:], 7) }},
		{"short salt", func(b []byte) { b[10] = 4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(good)
			tc.edit(bad)
			setMetaRaw(t, home, "wrapped_key", bad)
			asked := false
			_, err = Open(ctx, home, Options{Passphrase: func() ([]byte, error) { asked = true; return []byte("correct horse"), nil }})
			if !errors.Is(err, errBadKDF) || !strings.Contains(err.Error(), "tampered") {
				t.Fatalf("a tampered store opened with: %v", err)
			}
			if asked {
				t.Fatal("the passphrase was asked for before the parameters were checked")
			}
		})
	}
	// The untouched parameters still open the store, and nothing was
	// changed by the refusals.
	setMetaRaw(t, home, "wrapped_key", good)
	open(t, home, Options{Passphrase: func() ([]byte, error) { return []byte("correct horse"), nil }})
}

// setMetaRaw writes a meta value with SQL alone, as someone who has the
// home but not the key would.
func setMetaRaw(t *testing.T, home, k string, v []byte) {
	ctx := t.Context()
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(home, DBFile))
	check(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, "UPDATE meta SET v = ? WHERE k = ?", v, k)
	check(t, err)
}

func TestKyberLastResortReuse(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	ik := newAccount(t, s)
	lr, err := key.GenerateKyberPreKey(rand.Reader, 9, ik, time.Now())
	check(t, err)
	ot, err := key.GenerateKyberPreKey(rand.Reader, 10, ik, time.Now())
	check(t, err)
	base, err := key.GenerateECKeyPair(rand.Reader)
	check(t, err)
	check(t, s.Update(ctx, func(tx *Tx) error {
		if err := tx.StoreKyberPreKeys(ctx, []*key.KyberPreKey{lr}, true); err != nil {
			return err
		}
		return tx.StoreKyberPreKeys(ctx, []*key.KyberPreKey{ot}, false)
	}))
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.MarkKyberPreKeyUsed(ctx, 9, 1, base.Public) }))
	err = s.Update(ctx, func(tx *Tx) error { return tx.MarkKyberPreKeyUsed(ctx, 9, 1, base.Public) })
	if !errors.Is(err, ErrKyberReuse) {
		t.Fatalf("a last-resort key used twice: %v", err)
	}
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.MarkKyberPreKeyUsed(ctx, 10, 1, base.Public) }))
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.LoadKyberPreKey(ctx, 10)
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a used one-time Kyber key is still there: %v", err)
	}
}

// TestTrustPolicy: trust is per person. Receiving from the current key or
// a new one goes; a new key of an unverified person is taken with a
// notice; of a verified one, it makes sending wait for a confirmation; a
// replaced key is never trusted again, either way.
func TestTrustPolicy(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	newAccount(t, s)
	k := func() key.IdentityKey {
		ik, err := key.GenerateIdentityKeyPair(rand.Reader)
		check(t, err)
		return ik.Public
	}
	k1, k2, k3 := k(), k(), k()
	bob1, bob2 := session.Address{Name: "bob", Device: 1}, session.Address{Name: "bob", Device: 2}
	trusted := func(a session.Address, ik key.IdentityKey, d session.Direction) bool {
		var ok bool
		check(t, s.Update(ctx, func(tx *Tx) error {
			var err error
			ok, err = tx.IsTrustedIdentity(ctx, a, ik, d)
			return err
		}))
		return ok
	}
	save := func(a session.Address, ik key.IdentityKey) (bool, []IdentityChange) {
		var replaced bool
		var ch []IdentityChange
		check(t, s.Update(ctx, func(tx *Tx) error {
			var err error
			replaced, err = tx.SaveIdentity(ctx, a, ik)
			ch = tx.Changes
			return err
		}))
		return replaced, ch
	}
	if !trusted(bob1, k1, session.Sending) {
		t.Fatal("first use is not trusted")
	}
	save(bob1, k1)
	if !trusted(bob2, k2, session.Sending) {
		t.Fatal("an unverified person's new key is not taken")
	}
	if r, ch := save(bob2, k2); !r || len(ch) != 1 || ch[0].WasVerified {
		t.Fatalf("change not recorded: %v %v", r, ch)
	}
	c, err := s.Read().Contact(ctx, "bob")
	check(t, err)
	if c.Device != 2 || *c.Identity != k2 || c.NeedsConfirm {
		t.Fatalf("contact %+v", c)
	}
	if trusted(bob1, k1, session.Sending) {
		t.Fatal("an old key is trusted for sending")
	}
	// A replaced key never speaks for bob again (issue 14, finding 1): not
	// for receiving (an old device, a restored copy of bob's home, a
	// withheld message from before the change), not as a key to save, to
	// keep for confirmation or to confirm.
	if trusted(bob1, k1, session.Receiving) || trusted(bob2, k1, session.Receiving) {
		t.Fatal("a replaced key is trusted for receiving")
	}
	refused := func(what string, f func(tx *Tx) error) {
		t.Helper()
		if err := s.Update(ctx, f); !errors.Is(err, ErrReplacedIdentity) {
			t.Fatalf("%s with a replaced key: %v", what, err)
		}
	}
	refused("SaveIdentity", func(tx *Tx) error { _, err := tx.SaveIdentity(ctx, bob1, k1); return err })
	refused("SetPending", func(tx *Tx) error { return tx.SetPending(ctx, "bob", k1, 1) })
	refused("Confirm", func(tx *Tx) error { return tx.Confirm(ctx, "bob", k1, 1, true) })
	if c, err := s.Read().Contact(ctx, "bob"); err != nil || *c.Identity != k2 || c.Pending != nil || c.Verified {
		t.Fatalf("after the refusals: %+v %v", c, err)
	}
	// Verified, then changed: sending waits.
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.Confirm(ctx, "bob", k2, 2, true) }))
	if trusted(bob2, k3, session.Sending) {
		t.Fatal("a verified person's new key is trusted for sending")
	}
	if !trusted(bob2, k3, session.Receiving) {
		t.Fatal("receiving from a new key is refused")
	}
	if _, ch := save(bob2, k3); len(ch) != 1 || !ch[0].WasVerified {
		t.Fatalf("change %v", ch)
	}
	if trusted(bob2, k3, session.Sending) {
		t.Fatal("sending goes on without a confirmation")
	}
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.Confirm(ctx, "bob", k3, 2, false) }))
	if !trusted(bob2, k3, session.Sending) {
		t.Fatal("confirmed, still not trusted")
	}
	h, err := s.Read().History(ctx, "bob", 0, time.Now())
	check(t, err)
	if len(h) != 2 || h[0].Kind != KindNotice || !strings.Contains(h[1].Body, "You had verified bob") {
		t.Fatalf("notices %+v", h)
	}
}

// TestExpire: expired rows are deleted and checkpointed away.
func TestExpire(t *testing.T) {
	ctx := t.Context()
	home := t.TempDir()
	s := open(t, home, Options{Create: true})
	newAccount(t, s)
	var id int64
	check(t, s.Update(ctx, func(tx *Tx) error {
		m := &Message{Peer: "bob", MsgID: content.NewID(), Body: "short", SentAt: tx.Now, Timer: 5 * time.Second}
		_, err := tx.AddMessage(ctx, m)
		id = m.ID
		return err
	}))
	now := time.Now()
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.MarkShown(ctx, now, id) }))
	m, err := s.Read().Message(ctx, id)
	check(t, err)
	if !m.ExpiresAt.Equal(now.Add(5*time.Second).Truncate(time.Millisecond)) || !m.Shown {
		t.Fatalf("expiry %v, shown %v", m.ExpiresAt, m.Shown)
	}
	var ids []int64
	check(t, s.Update(ctx, func(tx *Tx) error {
		var err error
		ids, err = tx.Expire(ctx, now.Add(4*time.Second))
		return err
	}))
	if len(ids) != 0 {
		t.Fatal("expired early")
	}
	check(t, s.Update(ctx, func(tx *Tx) error {
		var err error
		ids, err = tx.Expire(ctx, now.Add(6*time.Second))
		return err
	}))
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("expired %v", ids)
	}
	check(t, s.Checkpoint(ctx))
	if fi, err := os.Stat(filepath.Join(home, DBFile+"-wal")); err == nil && fi.Size() != 0 {
		t.Fatalf("the WAL has %d bytes after the checkpoint", fi.Size())
	}
}

func TestReceived(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir(), Options{Create: true})
	seen := func(id int64) bool {
		var ok bool
		check(t, s.Update(ctx, func(tx *Tx) error {
			var err error
			ok, err = tx.Received(ctx, id)
			return err
		}))
		return ok
	}
	if seen(42) {
		t.Fatal("an id never processed is seen")
	}
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.SetReceived(ctx, 42, time.Now().Add(-time.Hour)) }))
	if !seen(42) || seen(43) {
		t.Fatal("processed ids are not remembered exactly")
	}
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.SetReceived(ctx, 43, time.Now().Add(time.Hour)) }))
	if seen(42) {
		t.Fatal("old ids are not forgotten")
	}
}

// TestServers: a home of before several servers (only "server" in its
// meta) reads as that one URL; a list is kept in its order, across
// reopening; a URL with a newline (the list's separator) is refused.
func TestServers(t *testing.T) {
	ctx := t.Context()
	home := filepath.Join(t.TempDir(), "h")
	s := open(t, home, Options{Create: true})
	ik := newAccount(t, s)
	// newAccount sets Server only, as a home made before the list did.
	check(t, s.Update(ctx, func(tx *Tx) error {
		_, err := tx.x.ExecContext(ctx, "DELETE FROM meta WHERE k = 'servers'")
		return err
	}))
	check(t, s.Close())
	s = open(t, home, Options{})
	if a := s.Account(); a.Server != "https://h:1" || len(a.Servers) != 1 || a.Servers[0] != "https://h:1" {
		t.Fatalf("old home: %+v", a)
	}
	a := s.Account()
	a.Servers = []string{"https://n2:1", "https://n1:1", "https://n3:1"}
	check(t, s.Update(ctx, func(tx *Tx) error { return tx.SetAccount(ctx, a, ik) }))
	if got := s.Account(); got.Server != "https://n2:1" || strings.Join(got.Servers, " ") != "https://n2:1 https://n1:1 https://n3:1" {
		t.Fatalf("after setting the list: %+v", got)
	}
	s.Account().Servers[0] = "changed" // a copy
	check(t, s.Close())
	s = open(t, home, Options{})
	if got := s.Account(); got.Server != "https://n2:1" || strings.Join(got.Servers, " ") != "https://n2:1 https://n1:1 https://n3:1" || got.Credential != "secret-credential" {
		t.Fatalf("reopened: %+v", got)
	}
	a.Servers = []string{"https://n1:1", "https://x:1\nhttps://y:1"}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetAccount(ctx, a, ik) }); err == nil {
		t.Fatal("a URL with a newline was stored")
	}
	if got := s.Account(); len(got.Servers) != 3 {
		t.Fatalf("after a refused list: %+v", got)
	}
}
