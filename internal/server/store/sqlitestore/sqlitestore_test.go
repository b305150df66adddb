package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "hush.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks that what a returned call wrote is there after the
// store is closed and opened again.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hush.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	res, err := s.EnqueueBatch(ctx, []*store.Message{{To: to, From: to, Content: []byte("x"), ExpiresAt: 1 << 50}}, 10, 10)
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueBatch(ctx, nil, 1, 1); err != store.ErrClosed {
		t.Fatalf("write after Close: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.Pending(ctx, to, 0, 0, 10)
	if err != nil || len(ms) != 1 || ms[0].ID != res[0].ID || string(ms[0].Content) != "x" {
		t.Fatalf("after reopen: %v %v", ms, err)
	}
}

func BenchmarkEnqueueParallel(b *testing.B) {
	ctx := b.Context()
	s, err := Open(filepath.Join(b.TempDir(), "hush.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, _, _ := s.CreateAccount(ctx, store.NewAccount{Username: "a", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	to := store.DeviceRef{Account: a.ID, Device: 1}
	content := make([]byte, 256)
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.EnqueueBatch(ctx, []*store.Message{{To: to, From: to, Content: content, ExpiresAt: 1 << 50}}, 1<<30, 1<<30); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestMigrateFromVersion1 opens a data folder of schema version 1 (the
// sender's username beside each queued message, sequential ids only): its
// queued message survives with its old id as public id, and the username
// column is gone.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hushd.db")
	v1, err := os.ReadFile("testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, string(v1)+`
		INSERT INTO accounts (username, display_name, password_hash, next_device, created) VALUES ('alice', '', 'h', 2, 1), ('bob', '', 'h', 2, 1);
		INSERT INTO devices (account, device, name, token_hash, created, last_seen) VALUES (1, 1, '', x'00', 1, 1), (2, 1, '', x'00', 1, 1);
		INSERT INTO messages (account, device, from_account, from_device, from_username, type, content, created, expires)
			VALUES (2, 1, 1, 1, 'alice', 3, x'6869', 100, 5000);`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: 2, Device: 1}
	ms, err := s.Pending(ctx, to, 0, 200, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("pending after migration: %v %v", ms, err)
	}
	if m := ms[0]; m.PublicID != m.ID || m.From != (store.DeviceRef{Account: 1, Device: 1}) || string(m.Content) != "hi" || m.ExpiresAt != 5000 || m.Franking != nil {
		t.Fatalf("migrated message %+v", m)
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'from_username'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("from_username column: %d %v", n, err)
	}
	// Schema 3: accounts have no account identity, devices no ordinary keys.
	if a, err := s.AccountByID(ctx, 1); err != nil || a.AccountIdentityKey != nil {
		t.Fatalf("migrated account: %+v %v", a, err)
	}
	if ds, err := s.Devices(ctx, 2); err != nil || len(ds) != 1 || ds[0].OrdinaryRegistrationID != 0 {
		t.Fatalf("migrated devices: %+v %v", ds, err)
	}
	if err := s.SetOrdinaryKeys(ctx, to, 5, storetest.Keys("m", 1, 1)); err != nil {
		t.Fatal(err)
	}
	// Schema 4: an empty history, no recovery blob.
	if n, err := s.DepositHistory(ctx, 2, []store.HistoryRecord{{ID: []byte("0123456789abcdef"), Blob: []byte("b")}}, 10); err != nil || n != 1 {
		t.Fatalf("history after migration: %d %v", n, err)
	}
	if _, _, err := s.Recovery(ctx, 2); err != store.ErrNotFound {
		t.Fatalf("recovery after migration: %v", err)
	}
	// Schema 5: links.
	if err := s.CreateLink(ctx, store.Link{ID: []byte("0123456789abcdef"), Account: 1, ClaimHash: []byte("h"), ExpiresAt: 1 << 50}, 3, 0); err != nil {
		t.Fatalf("link after migration: %v", err)
	}
	// Schema 6: reports.
	if id, err := s.AddReport(ctx, store.Report{Reporter: to, Created: 1, Tag: []byte("t"), Body: []byte("{}")}); err != nil || id != 1 {
		t.Fatalf("report after migration: %d %v", id, err)
	}
	// Acks by the public id work on migrated messages.
	if err := s.Ack(ctx, to, []int64{ms[0].PublicID}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path) // opening again migrates nothing
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ms, err := s.Pending(ctx, to, 0, 200, 10); err != nil || len(ms) != 0 {
		t.Fatalf("after ack and reopen: %v %v", ms, err)
	}
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version %d %v", v, err)
	}
}

// TestRefuseNewerSchema: a data folder from a newer hushd is not opened.
func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hushd.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("opened a database of schema version 99")
	}
}

// TestDeliveredLeavesNoCopy reproduces finding 8 of issue 14: acknowledged
// and deleted messages stayed readable in free pages of hushd.db and its
// WAL. After an ack and a checkpoint as the server makes them, no file of
// the store holds the message's content.
// TestJournalsInMemory checks that savepoint journals and temporary tables
// stay in memory (temp_store=MEMORY) on the writer's connection and the
// readers'.
func TestJournalsInMemory(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hush.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, q := range map[string]interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}{"writer": s.wconn, "reader": s.rdb} {
		var mode int
		if err := q.QueryRowContext(t.Context(), "PRAGMA temp_store").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != 2 {
			t.Errorf("%s: temp_store = %d, want 2 (MEMORY)", name, mode)
		}
	}
}

// openWithAlice opens a store in dir (closed when t ends) with the
// checkpointer timing ck and one account, alice; it returns her device.
func openWithAlice(t *testing.T, dir string, ck ckptTiming) (*Store, store.DeviceRef) {
	t.Helper()
	s, err := open(filepath.Join(dir, "hushd.db"), ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, _, err := s.CreateAccount(t.Context(), store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	return s, store.DeviceRef{Account: a.ID, Device: 1}
}

// filesHolding names the store's files in dir that contain b.
func filesHolding(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var found []string
	files, _ := filepath.Glob(filepath.Join(dir, "hushd.db*"))
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(content, b) {
			found = append(found, filepath.Base(f))
		}
	}
	return found
}

func TestDeliveredLeavesNoCopy(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, to := openWithAlice(t, dir, defaultTiming)
	canary := []byte("CANARY-" + strings.Repeat("7f3a", 64))
	var msgs []*store.Message
	for i := range 20 { // enough to fill pages of their own
		msgs = append(msgs, &store.Message{PublicID: int64(1000 + i), To: to, From: to, Type: 3, Content: canary, ExpiresAt: 1 << 50})
	}
	if _, err := s.EnqueueBatch(ctx, msgs, 100, 100); err != nil {
		t.Fatal(err)
	}
	// Let the inserts reach the database file, as they would on a server.
	checkpoint(t, s)
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, m.PublicID)
	}
	if err := s.Ack(ctx, to, ids); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(ctx, to.Account, to.Account+1); err != nil { // a synchronous write after the lazy ack
		t.Fatal(err)
	}
	if ms, err := s.Pending(ctx, to, 0, 0, 100); err != nil || len(ms) != 0 {
		t.Fatalf("still pending: %d %v", len(ms), err)
	}
	checkpoint(t, s)
	if found := filesHolding(t, dir, canary[:40]); len(found) > 0 {
		t.Errorf("%v still hold an acknowledged message's content", found)
	}
}

// checkpoint truncates the WAL, retrying while a reader holds it.
func checkpoint(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Checkpoint(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkEnqueueFanout stores one ordinary message for 2 recipient
// devices and 2 of the sender's own, from many goroutines (each fanout is
// its own savepoint within the group commit).
func BenchmarkEnqueueFanout(b *testing.B) {
	ctx := b.Context()
	s, err := Open(filepath.Join(b.TempDir(), "hush.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	accts := map[string]int64{}
	for _, name := range []string{"alice", "bob"} {
		a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: name, PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
		if err != nil {
			b.Fatal(err)
		}
		accts[name] = a.ID
		for d := uint32(1); d <= 3; d++ {
			if d > 1 {
				if _, err := s.AddDevice(ctx, a.ID, store.NewDevice{TokenHash: []byte("t")}, 16); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.SetOrdinaryKeys(ctx, store.DeviceRef{Account: a.ID, Device: d}, d, storetest.Keys("k", 1, 1)); err != nil {
				b.Fatal(err)
			}
		}
	}
	from := store.DeviceRef{Account: accts["alice"], Device: 1}
	content := make([]byte, 256)
	b.SetParallelism(64) // as BenchmarkEnqueueParallel
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f := store.Fanout{
				Accounts: []store.FanoutAccount{
					{Account: accts["bob"], Devices: map[uint32]uint32{1: 1, 2: 2, 3: 3}},
					{Account: accts["alice"], Except: 1, Devices: map[uint32]uint32{2: 2, 3: 3}},
				},
				MaxQueue: 1 << 30, MaxPerSender: 1 << 30,
			}
			for _, to := range []store.DeviceRef{{Account: accts["bob"], Device: 1}, {Account: accts["bob"], Device: 2},
				{Account: accts["bob"], Device: 3}, {Account: accts["alice"], Device: 2}, {Account: accts["alice"], Device: 3}} {
				f.Messages = append(f.Messages, &store.Message{To: to, From: from, Type: 13, Content: content, ExpiresAt: 1 << 50})
			}
			if _, err := s.EnqueueFanout(ctx, f); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestAckApplied checks that an acknowledgement with no other write after
// it is committed all the same, and that Close commits the ones that
// wait.
func TestAckApplied(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hush.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	var msgs []*store.Message
	for _, pub := range []int64{11, 12} {
		msgs = append(msgs, &store.Message{PublicID: pub, To: to, From: to, Content: []byte("x"), ExpiresAt: 1 << 50})
	}
	if _, err := s.EnqueueBatch(ctx, msgs, 10, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, to, []int64{11}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ms, err := s.Pending(ctx, to, 0, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 1 && ms[0].PublicID == 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ack was not applied: %d pending", len(ms))
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Ack(ctx, to, []int64{12}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ms, err := s.Pending(ctx, to, 0, 0, 10); err != nil || len(ms) != 0 {
		t.Fatalf("after Close and reopen: %d pending, %v", len(ms), err)
	}
}

// TestCheckpointUnderWrites checks that a truncating checkpoint succeeds
// while writers keep the writer busy: it pauses the writer between two
// batches instead of competing with it for SQLite's write lock (which,
// polled with sleeps, it lost for its whole busy timeout), and with no
// reader in the WAL nothing else can make it fail.
func TestCheckpointUnderWrites(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "hush.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.EnqueueBatch(ctx, []*store.Message{{To: to, From: to, Content: make([]byte, 256), ExpiresAt: 1 << 50}}, 1<<30, 1<<30)
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 5 {
		for start := written.Load(); written.Load() < start+200; {
			runtime.Gosched()
		}
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatalf("checkpoint %d, %d messages written: %v", i, written.Load(), err)
		}
	}
}

// TestWALBoundedUnderLoad checks that, with the writer never idle (the
// idle truncation off), the frames of a burst of acknowledged messages
// leave the WAL anyway: later transactions write over the start of the
// file, and the journal size limit cuts off the tail that the smaller
// transactions after the burst no longer reach. Without the limit, the
// burst's tail would stay until the server next idles.
func TestWALBoundedUnderLoad(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, to := openWithAlice(t, dir, ckptTiming{tick: 20 * time.Millisecond, tail: 5})
	canary := []byte("CANARY-" + strings.Repeat("5e1d", 256))
	var burst []*store.Message
	var ids []int64
	for i := range 2000 { // one transaction: a WAL of a few MB
		burst = append(burst, &store.Message{PublicID: int64(1 + i), To: to, From: to, Content: canary, ExpiresAt: 1 << 50})
		ids = append(ids, int64(1+i))
	}
	if _, err := s.EnqueueBatch(ctx, burst, 1<<30, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, to, ids); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "hushd.db-wal")
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	burstSize := fi.Size()

	// From now on, a small write after another: the writer is never idle
	// for a tick.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1 << 20); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.EnqueueBatch(ctx, []*store.Message{{PublicID: i, To: to, From: to, Content: []byte("small"), ExpiresAt: 1 << 50}}, 1<<30, 1<<30); err != nil {
				t.Error(err)
				return
			}
			if err := s.Ack(ctx, to, []int64{i}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		found := filesHolding(t, dir, canary[:64])
		fi, err := os.Stat(wal)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			if fi.Size() == 0 {
				t.Fatal("the WAL was truncated to zero bytes under load")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s of small writes: acknowledged content still in %v (WAL %d bytes, %d after the burst)", found, fi.Size(), burstSize)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWALTruncatedWhenIdle checks that the checkpointer truncates the WAL
// to zero bytes once the writer has nothing to do.
func TestWALTruncatedWhenIdle(t *testing.T) {
	dir := t.TempDir()
	openWithAlice(t, dir, ckptTiming{tick: 20 * time.Millisecond, tail: 5, idleTruncate: true})
	wal := filepath.Join(dir, "hushd.db-wal")
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(wal)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL still holds %d bytes 20 s after the last write", fi.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
