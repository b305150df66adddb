package pgstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/store/storetest"
)

func open(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.URL(t)) })
}

func TestBlobData(t *testing.T) {
	storetest.RunBlobData(t, func(t *testing.T) (store.Store, store.BlobData) {
		s := open(t, pgtest.URL(t))
		return s, s
	})
}

// TestMigrateTwiceAndConcurrently migrates one schema from several
// goroutines at once (nodes starting together), then again: every call
// succeeds and each migration is applied once.
func TestMigrateTwiceAndConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- MigrateURL(t.Context(), url) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := MigrateURL(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	s := open(t, url)
	defer s.Close()
	var n, v int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != Version || v != Version {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, v, Version)
	}
}

// TestNewerSchemaRefused: a node older than the schema does not start.
func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, Version+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(t.Context(), url); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// TestBundlesAcrossNodes takes one device's one-time keys from two stores
// (two nodes) at once: no key is handed out twice.
func TestBundlesAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	s1, s2 := open(t, url), open(t, url)
	defer s1.Close()
	defer s2.Close()
	ctx := t.Context()
	a, _, err := s1.CreateAccount(ctx, store.NewAccount{Username: "bob", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	d := store.DeviceRef{Account: a.ID, Device: 1}
	if err := s1.MakeSecretDevice(ctx, d, []byte("ik"), 1, nil); err != nil {
		t.Fatal(err)
	}
	const keys, fetchers = 60, 80
	if err := s2.SetKeys(ctx, d, storetest.Keys("n", 1, keys)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := range fetchers {
		s := []*Store{s1, s2}[i%2]
		wg.Go(func() {
			b, err := s.TakeBundle(ctx, d)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if b.PreKey != nil {
				seen["ec"+string(b.PreKey.PublicKey)]++
			}
			if !b.KyberLastResort {
				seen["kem"+string(b.KyberPreKey.PublicKey)]++
			}
		})
	}
	wg.Wait()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s handed out %d times", k, n)
		}
	}
	if len(seen) != 2*keys {
		t.Errorf("%d one-time keys handed out, want %d", len(seen), 2*keys)
	}
}

// TestMailboxOrderAcrossNodes writes to one device from two stores (two
// nodes) while a reader follows the mailbox as a delivery session does,
// asking only for ids after the last one it saw. It must see every
// message: ids of one device become visible in increasing order.
func TestMailboxOrderAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	s1, s2 := open(t, url), open(t, url)
	defer s1.Close()
	defer s2.Close()
	ctx := t.Context()
	a, _, err := s1.CreateAccount(ctx, store.NewAccount{Username: "bob", PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		s := []*Store{s1, s2}[w%2]
		wg.Go(func() {
			for i := range each {
				m := &store.Message{To: to, From: to, Content: fmt.Appendf(nil, "%d-%d", w, i), ExpiresAt: 1 << 50}
				if res, err := s.EnqueueBatch(ctx, []*store.Message{m}, 1<<20, 1<<20); err != nil || res[0].Err != nil {
					t.Error(err, res)
					return
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	got := map[string]bool{}
	var last int64
	for done := false; !done; {
		select {
		case <-writing:
			done = true // one more read after the last write
		default:
		}
		ms, err := s2.Pending(ctx, to, last, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			got[string(m.Content)] = true
			last = m.ID
		}
	}
	if len(got) != writers*each {
		t.Fatalf("a reader following the mailbox saw %d of %d messages", len(got), writers*each)
	}
}

// TestLimiterAcrossNodes spreads requests of one key over three nodes'
// limiters: together they grant the bucket once, not once per node.
func TestLimiterAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	var nodes []*Store
	for range 3 {
		s := open(t, url)
		defer s.Close()
		nodes = append(nodes, s)
	}
	for _, tc := range []struct {
		limit    ratelimit.Limit
		n        int     // requests per node
		min, max float64 // tokens granted in all
	}{
		// A login-like limit: every token goes through the database.
		{ratelimit.Limit{Rate: 1.0 / 3600, Burst: 10}, 20, 10, 10},
		// A message-like limit: nodes take chunks of 100; a chunk a node
		// took and did not hand out is lost, never given twice.
		{ratelimit.Limit{Rate: 1e-6, Burst: 1000}, 600, 1000 - 3*100, 1000},
	} {
		name := fmt.Sprint("test-", tc.limit.Burst)
		var mu sync.Mutex
		granted := 0.0
		var wg sync.WaitGroup
		for _, s := range nodes {
			l := s.Limiter(name, tc.limit, nil)
			for range 4 {
				wg.Go(func() {
					for range tc.n / 4 {
						if l.Allow("alice", 1) {
							mu.Lock()
							granted++
							mu.Unlock()
						}
					}
				})
			}
		}
		wg.Wait()
		if granted < tc.min || granted > tc.max {
			t.Errorf("limit %+v over 3 nodes granted %v, want %v to %v", tc.limit, granted, tc.min, tc.max)
		}
		if !nodes[0].Limiter(name, tc.limit, nil).Allow("bob", 1) {
			t.Errorf("limit %+v: another key was refused", tc.limit)
		}
	}
}

// TestMigrateFromVersion1: a queued message of schema 1 (with the sender's
// username) survives migration 3 with its id as public id, and the
// username column is gone.
func TestMigrateFromVersion1(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, migrations[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES (1);
		INSERT INTO accounts (username, display_name, password_hash, next_device, created) VALUES ('alice', '', 'h', 2, 1);
		INSERT INTO devices (account, device, name, token_hash, created, last_seen) SELECT id, 1, '', '\x00', 1, 1 FROM accounts;
		INSERT INTO messages (account, device, id, from_account, from_device, from_username, type, content, created, expires)
			SELECT id, 1, nextval('message_ids'), id, 1, 'alice', 3, 'hi', 100, 5000 FROM accounts`); err != nil {
		t.Fatal(err)
	}
	s := open(t, url)
	defer s.Close()
	var acct int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM accounts`).Scan(&acct); err != nil {
		t.Fatal(err)
	}
	to := store.DeviceRef{Account: acct, Device: 1}
	ms, err := s.Pending(ctx, to, 0, 200, 10)
	if err != nil || len(ms) != 1 || ms[0].PublicID != ms[0].ID || string(ms[0].Content) != "hi" {
		t.Fatalf("after migration: %v %v", ms, err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'messages' AND column_name = 'from_username'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("from_username column: %d %v", n, err)
	}
	// Migration 4: no account identity, no ordinary keys yet.
	if a, err := s.AccountByID(ctx, acct); err != nil || a.AccountIdentityKey != nil {
		t.Fatalf("migrated account: %+v %v", a, err)
	}
	if err := s.SetOrdinaryKeys(ctx, to, 5, storetest.Keys("m", 1, 1)); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.Devices(ctx, acct); err != nil || len(ds) != 1 || ds[0].OrdinaryRegistrationID != 5 {
		t.Fatalf("migrated devices: %+v %v", ds, err)
	}
	// Migration 5: an empty history.
	if n, err := s.DepositHistory(ctx, acct, []store.HistoryRecord{{ID: []byte("0123456789abcdef"), Blob: []byte("b")}}, 10); err != nil || n != 1 {
		t.Fatalf("history after migration: %d %v", n, err)
	}
	// Migration 6: links.
	if err := s.CreateLink(ctx, store.Link{ID: []byte("0123456789abcdef"), Account: acct, ClaimHash: []byte("h"), ExpiresAt: 1 << 50}, 3, 0); err != nil {
		t.Fatalf("link after migration: %v", err)
	}
}

// TestFanoutDeviceChurn runs fanouts with history while devices of both
// accounts are removed, added, given keys and made secret: every call
// ends in success or a domain error, never a deadlock (each transaction
// that takes an account row and device rows takes the account first).
func TestFanoutDeviceChurn(t *testing.T) {
	url := pgtest.URL(t)
	s1, s2 := open(t, url), open(t, url)
	defer s1.Close()
	defer s2.Close()
	ctx := t.Context()
	var ids [2]int64
	for i, name := range []string{"alice", "bob"} {
		a, _, err := s1.CreateAccount(ctx, store.NewAccount{Username: name, PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
		if err := s1.SetOrdinaryKeys(ctx, store.DeviceRef{Account: a.ID, Device: 1}, 1, storetest.Keys("k", 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	domain := func(err error) bool {
		var me *store.MismatchError
		return err == nil || errors.As(err, &me) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTooManyDevices) || errors.Is(err, store.ErrMailboxFull)
	}
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 4 {
		s := []*Store{s1, s2}[w%2]
		wg.Go(func() {
			for range 30 {
				f := store.Fanout{MaxQueue: 1 << 20, MaxPerSender: 1 << 20, HistoryAccount: ids[0], MaxHistory: 1 << 20,
					History: []store.HistoryRecord{{ID: fmt.Appendf(nil, "%016d", seq.Add(1)), Blob: []byte("h")}}}
				for i, acct := range ids {
					ds, err := s.Devices(ctx, acct)
					if err != nil {
						t.Error(err)
						return
					}
					fa := store.FanoutAccount{Account: acct, Devices: map[uint32]uint32{}}
					if i == 0 {
						fa.Except = 1
					}
					for _, d := range ds {
						if d.OrdinaryRegistrationID != 0 && d.Ref.Device != fa.Except {
							fa.Devices[d.Ref.Device] = d.OrdinaryRegistrationID
							f.Messages = append(f.Messages, &store.Message{To: d.Ref, From: store.DeviceRef{Account: ids[0], Device: 1},
								Content: []byte("m"), ExpiresAt: 1 << 50})
						}
					}
					f.Accounts = append(f.Accounts, fa)
				}
				if _, err := s.EnqueueFanout(ctx, f); !domain(err) {
					t.Errorf("fanout: %v", err)
					return
				}
			}
		})
	}
	for i, acct := range ids {
		s := []*Store{s1, s2}[i]
		wg.Go(func() {
			for n := range 15 {
				d, err := s.AddDevice(ctx, acct, store.NewDevice{TokenHash: []byte("t")}, 16)
				if !domain(err) {
					t.Errorf("add device: %v", err)
					return
				}
				if err == nil {
					if err := s.SetOrdinaryKeys(ctx, d.Ref, uint32(n+2), storetest.Keys("c", 1, 1)); !domain(err) {
						t.Errorf("ordinary keys: %v", err)
						return
					}
					if err := s.MakeSecretDevice(ctx, d.Ref, []byte("ik"), 5, nil); !domain(err) {
						t.Errorf("make secret: %v", err)
						return
					}
					if n%2 == 0 {
						if err := s.RemoveDevice(ctx, d.Ref); !domain(err) {
							t.Errorf("remove device: %v", err)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
}
