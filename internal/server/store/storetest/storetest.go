// Package storetest is the conformance suite every [store.Store] backend
// must pass: call [Run] from the backend's tests with a function that opens
// a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// Run runs every conformance test, each on a new store from open. The store
// is closed by Run.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"Devices", testDevices},
		{"SecretDevice", testSecretDevice},
		{"Bundles", testBundles},
		{"ConcurrentBundles", testConcurrentBundles},
		{"Blocks", testBlocks},
		{"Messages", testMessages},
		{"MailboxFull", testMailboxFull},
		{"SenderQuota", testSenderQuota},
		{"SenderQuotaOthersAcked", testSenderQuotaOthersAcked},
		{"BlockDropsQueued", testBlockDropsQueued},
		{"Expiry", testExpiry},
		{"Notify", testNotify},
		{"AccountIdentity", testAccountIdentity},
		{"OrdinaryKeys", testOrdinaryKeys},
		{"OrdinaryBundles", testOrdinaryBundles},
		{"ConcurrentOrdinaryBundles", testConcurrentOrdinaryBundles},
		{"Fanout", testFanout},
		{"FanoutFull", testFanoutFull},
		{"GroupFanout", testGroupFanout},
		{"History", testHistory},
		{"ConcurrentHistory", testConcurrentHistory},
		{"FanoutHistory", testFanoutHistory},
		{"Recovery", testRecovery},
		{"Links", testLinks},
		{"LinkDevice", testLinkDevice},
		{"ConcurrentHellos", testConcurrentHellos},
		{"Franking", testFranking},
		{"Reports", testReports},
		{"Blobs", testBlobs},
		{"BlobQuota", testBlobQuota},
		{"BlobSends", testBlobSends},
		{"BlobFanout", testBlobFanout},
		{"BlobExpiry", testBlobExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(mustError); ok {
						t.Fatal(e.err)
					}
					panic(r)
				}
			}()
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// must returns v, or stops the test (through the recover in Run) on error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(mustError{err})
	}
	return v
}

type mustError struct{ err error }

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// newAccount creates an account named name with one device.
func newAccount(t *testing.T, s store.Store, name string) store.Account {
	t.Helper()
	a, d, err := s.CreateAccount(ctx, store.NewAccount{Username: name, DisplayName: "D " + name, PasswordHash: "h-" + name, Created: 1000},
		store.NewDevice{Name: "first", TokenHash: []byte("tok-" + name), Created: 1000})
	ok(t, err)
	if d.Ref != (store.DeviceRef{Account: a.ID, Device: 1}) {
		t.Fatalf("first device is %+v, want device 1 of %d", d.Ref, a.ID)
	}
	return a
}

func testAccounts(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	if a.ID == b.ID {
		t.Fatal("two accounts got one id")
	}
	_, _, err := s.CreateAccount(ctx, store.NewAccount{Username: "alice", PasswordHash: "x"}, store.NewDevice{TokenHash: []byte("x")})
	wantErr(t, err, store.ErrUsernameTaken)
	got := must(s.AccountByUsername(ctx, "alice"))
	if got.ID != a.ID || got.DisplayName != "D alice" || got.PasswordHash != "h-alice" || got.SecretDevice != 0 || got.IdentityKey != nil {
		t.Fatalf("AccountByUsername = %+v", got)
	}
	got = must(s.AccountByID(ctx, b.ID))
	if got.Username != "bob" {
		t.Fatalf("AccountByID = %+v", got)
	}
	_, err = s.AccountByUsername(ctx, "carol")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccountByID(ctx, 987654)
	wantErr(t, err, store.ErrNotFound)
}

func testDevices(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	d2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2"), Created: 2000}, 3))
	d3 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "tablet", TokenHash: []byte("t3"), Created: 3000}, 3))
	if d2.Ref.Device != 2 || d3.Ref.Device != 3 {
		t.Fatalf("device numbers %d, %d, want 2, 3", d2.Ref.Device, d3.Ref.Device)
	}
	_, err := s.AddDevice(ctx, a.ID, store.NewDevice{Name: "x", TokenHash: []byte("x")}, 3)
	wantErr(t, err, store.ErrTooManyDevices)
	_, err = s.AddDevice(ctx, 424242, store.NewDevice{Name: "x", TokenHash: []byte("x")}, 3)
	wantErr(t, err, store.ErrNotFound)

	ok(t, s.SetDeviceToken(ctx, d2.Ref, []byte("new")))
	if d := must(s.Device(ctx, d2.Ref)); !bytes.Equal(d.TokenHash, []byte("new")) || d.Name != "laptop" {
		t.Fatalf("after SetDeviceToken: %+v", d)
	}
	wantErr(t, s.SetDeviceToken(ctx, store.DeviceRef{Account: a.ID, Device: 9}, []byte("x")), store.ErrNotFound)

	// A removed device's number is never given again.
	ok(t, s.RemoveDevice(ctx, d3.Ref))
	wantErr(t, s.RemoveDevice(ctx, d3.Ref), store.ErrNotFound)
	_, err = s.Device(ctx, d3.Ref)
	wantErr(t, err, store.ErrNotFound)
	d4 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "phone2", TokenHash: []byte("t4")}, 3))
	if d4.Ref.Device != 4 {
		t.Fatalf("device after removal got number %d, want 4", d4.Ref.Device)
	}
	ds := must(s.Devices(ctx, a.ID))
	var nums []uint32
	for _, d := range ds {
		nums = append(nums, d.Ref.Device)
	}
	if fmt.Sprint(nums) != "[1 2 4]" {
		t.Fatalf("devices %v, want [1 2 4]", nums)
	}
	ok(t, s.TouchDevice(ctx, d2.Ref, 5000))
}

// Keys makes a key upload whose bytes are tagged with tag, so that tests
// can tell uploads apart. The store does not verify signatures.
func Keys(tag string, first uint32, n int) store.Keys {
	k := store.Keys{
		SignedPreKey:    &store.SignedKey{ID: first, PublicKey: []byte("spk-" + tag), Signature: []byte("sig-" + tag)},
		KyberLastResort: &store.SignedKey{ID: first + 1000, PublicKey: []byte("lr-" + tag), Signature: []byte("lrsig-" + tag)},
	}
	for i := range n {
		id := first + uint32(i)
		k.PreKeys = append(k.PreKeys, store.PreKey{ID: id, PublicKey: fmt.Appendf(nil, "pk-%s-%d", tag, id)})
		k.KyberPreKeys = append(k.KyberPreKeys, store.SignedKey{ID: id + 500, PublicKey: fmt.Appendf(nil, "kpk-%s-%d", tag, id),
			Signature: fmt.Appendf(nil, "ksig-%s-%d", tag, id)})
	}
	return k
}

func testSecretDevice(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	d1 := store.DeviceRef{Account: a.ID, Device: 1}
	d2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref

	wantErr(t, s.SetKeys(ctx, d1, Keys("a", 1, 3)), store.ErrNotSecretDevice)
	_, err := s.TakeBundle(ctx, d1)
	wantErr(t, err, store.ErrNotFound)

	ok(t, s.MakeSecretDevice(ctx, d1, []byte("ik1"), 77, nil))
	acc := must(s.AccountByID(ctx, a.ID))
	if acc.SecretDevice != 1 || !bytes.Equal(acc.IdentityKey, []byte("ik1")) {
		t.Fatalf("after MakeSecretDevice: %+v", acc)
	}
	_, err = s.TakeBundle(ctx, d1)
	wantErr(t, err, store.ErrNoKeys)
	ok(t, s.SetKeys(ctx, d1, Keys("a", 1, 3)))
	wantErr(t, s.SetKeys(ctx, d2, Keys("b", 1, 3)), store.ErrNotSecretDevice)
	c := must(s.KeyCounts(ctx, d1))
	if c.PreKeys != 3 || c.KyberPreKeys != 3 || c.SignedPreKeyID == nil || *c.SignedPreKeyID != 1 || c.KyberLastResort == nil || *c.KyberLastResort != 1001 {
		t.Fatalf("counts %+v", c)
	}

	// Another device becomes the secret device: new identity, old keys gone.
	ok(t, s.MakeSecretDevice(ctx, d2, []byte("ik2"), 88, &store.Keys{SignedPreKey: &store.SignedKey{ID: 9, PublicKey: []byte("spk2"), Signature: []byte("s2")}}))
	acc = must(s.AccountByID(ctx, a.ID))
	if acc.SecretDevice != 2 || !bytes.Equal(acc.IdentityKey, []byte("ik2")) {
		t.Fatalf("after second MakeSecretDevice: %+v", acc)
	}
	if c := must(s.KeyCounts(ctx, d1)); c.PreKeys != 0 || c.KyberPreKeys != 0 || c.SignedPreKeyID != nil || c.KyberLastResort != nil {
		t.Fatalf("old secret device still has keys: %+v", c)
	}
	if c := must(s.KeyCounts(ctx, d2)); c.SignedPreKeyID == nil || *c.SignedPreKeyID != 9 || c.PreKeys != 0 {
		t.Fatalf("new secret device counts %+v", c)
	}
	wantErr(t, s.SetKeys(ctx, d1, Keys("a", 1, 3)), store.ErrNotSecretDevice)
	_, err = s.TakeBundle(ctx, d2) // no Kyber key at all yet
	wantErr(t, err, store.ErrNoKeys)
	if c := must(s.KeyCounts(ctx, d2)); c.SignedPreKeyID == nil {
		t.Fatal("failed TakeBundle changed the keys")
	}

	// Removing the secret device removes the identity.
	ok(t, s.RemoveDevice(ctx, d2))
	acc = must(s.AccountByID(ctx, a.ID))
	if acc.SecretDevice != 0 || acc.IdentityKey != nil {
		t.Fatalf("after removing the secret device: %+v", acc)
	}
	wantErr(t, s.MakeSecretDevice(ctx, store.DeviceRef{Account: a.ID, Device: 42}, []byte("ik"), 1, nil), store.ErrNotFound)
}

func testBundles(t *testing.T, s store.Store) {
	a := newAccount(t, s, "bob")
	d := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.MakeSecretDevice(ctx, d, []byte("ikb"), 1234, nil))
	ok(t, s.SetKeys(ctx, d, Keys("x", 10, 2)))
	seen := map[string]bool{}
	for i := range 2 {
		b := must(s.TakeBundle(ctx, d))
		if b.Device != 1 || b.RegistrationID != 1234 || !bytes.Equal(b.IdentityKey, []byte("ikb")) ||
			b.SignedPreKey.ID != 10 || !bytes.Equal(b.SignedPreKey.Signature, []byte("sig-x")) {
			t.Fatalf("bundle %d: %+v", i, b)
		}
		if b.PreKey == nil || b.KyberLastResort {
			t.Fatalf("bundle %d has no one-time keys: %+v", i, b)
		}
		for _, k := range []string{string(b.PreKey.PublicKey), string(b.KyberPreKey.PublicKey)} {
			if seen[k] {
				t.Fatalf("key %s handed out twice", k)
			}
			seen[k] = true
		}
		if want := fmt.Sprintf("pk-x-%d", b.PreKey.ID); string(b.PreKey.PublicKey) != want {
			t.Fatalf("prekey id %d has key %s", b.PreKey.ID, b.PreKey.PublicKey)
		}
	}
	if c := must(s.KeyCounts(ctx, d)); c.PreKeys != 0 || c.KyberPreKeys != 0 {
		t.Fatalf("counts after taking all: %+v", c)
	}
	// Out of one-time keys: no EC prekey, and the last-resort Kyber key, every time.
	for range 2 {
		b := must(s.TakeBundle(ctx, d))
		if b.PreKey != nil || !b.KyberLastResort || b.KyberPreKey.ID != 1010 || string(b.KyberPreKey.PublicKey) != "lr-x" {
			t.Fatalf("bundle without one-time keys: %+v", b)
		}
	}
	// A new upload of one kind replaces that kind only.
	ok(t, s.SetKeys(ctx, d, store.Keys{PreKeys: []store.PreKey{{ID: 99, PublicKey: []byte("p99")}}}))
	b := must(s.TakeBundle(ctx, d))
	if b.PreKey == nil || b.PreKey.ID != 99 || b.SignedPreKey.ID != 10 || !b.KyberLastResort {
		t.Fatalf("after partial upload: %+v", b)
	}
	ok(t, s.SetKeys(ctx, d, Keys("y", 20, 3)))
	ok(t, s.SetKeys(ctx, d, store.Keys{PreKeys: []store.PreKey{{ID: 1, PublicKey: []byte("only")}}}))
	if c := must(s.KeyCounts(ctx, d)); c.PreKeys != 1 || c.KyberPreKeys != 3 {
		t.Fatalf("upload did not replace: %+v", c)
	}
}

func testConcurrentBundles(t *testing.T, s store.Store) {
	a := newAccount(t, s, "bob")
	d := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.MakeSecretDevice(ctx, d, []byte("ikb"), 1, nil))
	const keys, fetchers = 100, 150
	ok(t, s.SetKeys(ctx, d, Keys("c", 1, keys)))
	var mu sync.Mutex
	ec, kem := map[uint32]int{}, map[uint32]int{}
	lastResort := 0
	var wg sync.WaitGroup
	for range fetchers {
		wg.Go(func() {
			b, err := s.TakeBundle(ctx, d)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if b.PreKey != nil {
				ec[b.PreKey.ID]++
			}
			if b.KyberLastResort {
				lastResort++
			} else {
				kem[b.KyberPreKey.ID]++
			}
		})
	}
	wg.Wait()
	for id, n := range ec {
		if n != 1 {
			t.Errorf("EC prekey %d handed out %d times", id, n)
		}
	}
	for id, n := range kem {
		if n != 1 {
			t.Errorf("Kyber prekey %d handed out %d times", id, n)
		}
	}
	if len(ec) != keys || len(kem) != keys || lastResort != fetchers-keys {
		t.Errorf("handed out %d EC, %d Kyber, %d last resort; want %d, %d, %d", len(ec), len(kem), lastResort, keys, keys, fetchers-keys)
	}
}

func testBlocks(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	c := newAccount(t, s, "carol")
	ok(t, s.Block(ctx, a.ID, b.ID))
	ok(t, s.Block(ctx, a.ID, b.ID)) // twice is fine
	ok(t, s.Block(ctx, a.ID, c.ID))
	if got := must(s.Blocked(ctx, a.ID)); fmt.Sprint(got) != fmt.Sprint([]int64{b.ID, c.ID}) {
		t.Fatalf("Blocked = %v", got)
	}
	if got := must(s.Blocked(ctx, b.ID)); len(got) != 0 {
		t.Fatalf("bob blocked %v", got)
	}
	ok(t, s.Unblock(ctx, a.ID, b.ID))
	ok(t, s.Unblock(ctx, a.ID, b.ID))
	if got := must(s.Blocked(ctx, a.ID)); fmt.Sprint(got) != fmt.Sprint([]int64{c.ID}) {
		t.Fatalf("Blocked after unblock = %v", got)
	}
}

// pubIDs makes public ids unlike the store's own, so that a backend that
// acknowledges by its own id fails.
var pubIDs atomic.Int64

func msg(from, to store.DeviceRef, body string, now int64) *store.Message {
	pub := 1<<40 + pubIDs.Add(7919)
	return &store.Message{PublicID: pub, To: to, From: from, Type: 3, Content: []byte(body), Timestamp: now, ExpiresAt: now + 1000}
}

// pub returns the public ids of msgs.
func pub(msgs ...*store.Message) []int64 {
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, m.PublicID)
	}
	return ids
}

func testMessages(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	from := store.DeviceRef{Account: a.ID, Device: 1}
	to := store.DeviceRef{Account: b.ID, Device: 1}
	var batch []*store.Message
	for i := range 5 {
		batch = append(batch, msg(from, to, fmt.Sprint("m", i), 100))
	}
	res := must(s.EnqueueBatch(ctx, batch, 100, 100))
	for i := 1; i < len(res); i++ {
		if res[i].Err != nil || res[i].ID <= res[i-1].ID {
			t.Fatalf("results %+v: ids must increase", res)
		}
	}
	got := must(s.Pending(ctx, to, 0, 100, 10))
	if len(got) != 5 {
		t.Fatalf("%d pending, want 5", len(got))
	}
	for i, m := range got {
		if m.ID != res[i].ID || m.PublicID != batch[i].PublicID || string(m.Content) != fmt.Sprint("m", i) || m.From != from ||
			m.Type != 3 || m.Timestamp != 100 || m.ExpiresAt != 1100 || m.To != to {
			t.Fatalf("pending[%d] = %+v", i, m)
		}
	}
	if got := must(s.Pending(ctx, to, res[2].ID, 100, 10)); len(got) != 2 || got[0].ID != res[3].ID {
		t.Fatalf("Pending after id: %v", got)
	}
	if got := must(s.Pending(ctx, to, 0, 100, 2)); len(got) != 2 {
		t.Fatalf("limit ignored: %d", len(got))
	}
	if got := must(s.Pending(ctx, from, 0, 100, 10)); len(got) != 0 {
		t.Fatalf("sender has %d pending", len(got))
	}
	// Acks name public ids. Acks by another device are ignored; acks delete.
	ok(t, s.Ack(ctx, from, pub(batch[0])))
	ok(t, s.Ack(ctx, to, append(pub(batch[0], batch[1]), 999999, res[2].ID)))
	// Ack may be lazy; a later synchronous write orders after it.
	ok(t, s.Block(ctx, a.ID, b.ID))
	got = must(s.Pending(ctx, to, 0, 100, 10))
	if len(got) != 3 || got[0].ID != res[2].ID {
		t.Fatalf("after ack: %d pending, first %v", len(got), got)
	}
	if n := must(s.QueueDepth(ctx)); n != 3 {
		t.Fatalf("QueueDepth = %d", n)
	}
	// New ids keep increasing even after the queue is emptied.
	ok(t, s.Ack(ctx, to, pub(batch[2:]...)))
	ok(t, s.Block(ctx, a.ID, b.ID))
	r2 := must(s.EnqueueBatch(ctx, []*store.Message{msg(from, to, "later", 100)}, 100, 100))
	if r2[0].ID <= res[4].ID {
		t.Fatalf("id %d reused after %d", r2[0].ID, res[4].ID)
	}
	// Removing a device drops its mailbox, and nothing more is queued for it.
	ok(t, s.RemoveDevice(ctx, to))
	if n := must(s.QueueDepth(ctx)); n != 0 {
		t.Fatalf("QueueDepth after RemoveDevice = %d", n)
	}
	r3 := must(s.EnqueueBatch(ctx, []*store.Message{msg(from, to, "gone", 100), msg(from, store.DeviceRef{Account: b.ID, Device: 7}, "never", 100)}, 100, 100))
	for i, r := range r3 {
		if !errors.Is(r.Err, store.ErrNotFound) {
			t.Fatalf("enqueue %d to a missing device: %+v", i, r)
		}
	}
}

func testMailboxFull(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	from := store.DeviceRef{Account: a.ID, Device: 1}
	to := store.DeviceRef{Account: b.ID, Device: 1}
	var batch []*store.Message
	for i := range 5 {
		batch = append(batch, msg(from, to, fmt.Sprint(i), 100))
	}
	res := must(s.EnqueueBatch(ctx, batch, 3, 3))
	for i, r := range res {
		if (i < 3) != (r.Err == nil) || (i >= 3 && !errors.Is(r.Err, store.ErrMailboxFull)) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	ok(t, s.Ack(ctx, to, pub(batch[0])))
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(from, to, "x", 100), msg(from, to, "y", 100)}, 3, 3))
	if res[0].Err != nil || !errors.Is(res[1].Err, store.ErrMailboxFull) {
		t.Fatalf("after one ack: %+v", res)
	}
	// Another device's queue is its own.
	other := store.DeviceRef{Account: a.ID, Device: 1}
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(to, other, "z", 100)}, 3, 3))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

// testSenderQuota: one sender account cannot take more than maxPerSender
// places in a mailbox, whichever of its devices sends; others still can;
// acks and expiry give the places back.
func testSenderQuota(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	c := newAccount(t, s, "carol")
	a2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref
	from := store.DeviceRef{Account: a.ID, Device: 1}
	to := store.DeviceRef{Account: b.ID, Device: 1}
	var batch []*store.Message
	for i := range 3 {
		batch = append(batch, msg(from, to, fmt.Sprint(i), 100))
	}
	batch = append(batch, msg(a2, to, "other device", 100))
	res := must(s.EnqueueBatch(ctx, batch, 10, 3))
	for i, r := range res {
		if (i < 3) != (r.Err == nil) || (i == 3 && !errors.Is(r.Err, store.ErrMailboxFull)) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// Another sender has room; the mailbox limit still holds for all.
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(store.DeviceRef{Account: c.ID, Device: 1}, to, "carol", 100)}, 10, 3))
	if res[0].Err != nil {
		t.Fatalf("another sender refused: %v", res[0].Err)
	}
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(store.DeviceRef{Account: c.ID, Device: 1}, to, "carol", 100)}, 4, 3))
	if !errors.Is(res[0].Err, store.ErrMailboxFull) {
		t.Fatalf("past maxQueue: %+v", res[0])
	}
	// Another recipient device is another quota.
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(from, store.DeviceRef{Account: c.ID, Device: 1}, "x", 100)}, 10, 3))
	if res[0].Err != nil {
		t.Fatalf("another recipient refused: %v", res[0].Err)
	}
	// An ack gives one place back to the sender whose message it was.
	ok(t, s.Ack(ctx, to, pub(batch[0])))
	ok(t, s.Block(ctx, c.ID, b.ID)) // a synchronous write after the lazy ack
	res = must(s.EnqueueBatch(ctx, []*store.Message{msg(a2, to, "again", 100), msg(from, to, "too many", 100)}, 10, 3))
	if res[0].Err != nil || !errors.Is(res[1].Err, store.ErrMailboxFull) {
		t.Fatalf("after one ack: %+v", res)
	}
}

// testSenderQuotaOthersAcked: the quota counts a sender's own messages,
// exactly, whatever else the mailbox holds and whoever's messages were
// acknowledged (a backend may keep counts that acks do not update).
func testSenderQuotaOthersAcked(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	c := newAccount(t, s, "carol")
	from := store.DeviceRef{Account: a.ID, Device: 1}
	car := store.DeviceRef{Account: c.ID, Device: 1}
	to := store.DeviceRef{Account: b.ID, Device: 1}
	send := func(from store.DeviceRef, n int) []store.EnqueueResult {
		var batch []*store.Message
		for i := range n {
			batch = append(batch, msg(from, to, fmt.Sprint(i), 100))
		}
		return must(s.EnqueueBatch(ctx, batch, 100, 3))
	}
	// Carol's messages fill more of the mailbox than alice's share.
	var carols []int64
	for range 2 {
		for _, r := range must(s.EnqueueBatch(ctx, []*store.Message{msg(car, to, "c", 100), msg(car, to, "c", 100)}, 100, 100)) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	for _, m := range must(s.Pending(ctx, to, 0, 100, 10)) {
		carols = append(carols, m.PublicID)
	}
	res := send(from, 4)
	for i, r := range res {
		if (i < 3) != (r.Err == nil) || (i == 3 && !errors.Is(r.Err, store.ErrMailboxFull)) {
			t.Fatalf("alice's message %d beside carol's 4: %+v", i, r)
		}
	}
	// Carol's acknowledged messages give alice nothing.
	ok(t, s.Ack(ctx, to, carols[:2]))
	if r := send(from, 1); !errors.Is(r[0].Err, store.ErrMailboxFull) {
		t.Fatalf("after carol's messages were acked: %+v", r[0])
	}
	ok(t, s.Ack(ctx, to, carols[2:3]))
	if r := send(from, 1); !errors.Is(r[0].Err, store.ErrMailboxFull) {
		t.Fatalf("after another of carol's was acked: %+v", r[0])
	}
	// One of alice's own gives her one place.
	var alices []int64
	for _, m := range must(s.Pending(ctx, to, 0, 100, 10)) {
		if m.From == from {
			alices = append(alices, m.PublicID)
		}
	}
	if len(alices) != 3 {
		t.Fatalf("alice has %d messages queued, want 3", len(alices))
	}
	ok(t, s.Ack(ctx, to, alices[:1]))
	if r := send(from, 2); r[0].Err != nil || !errors.Is(r[1].Err, store.ErrMailboxFull) {
		t.Fatalf("after one of alice's was acked: %+v", r)
	}
	// An ack of nothing (an unknown id) changes nothing either.
	ok(t, s.Ack(ctx, to, []int64{12345}))
	if r := send(from, 1); !errors.Is(r[0].Err, store.ErrMailboxFull) {
		t.Fatalf("after an unknown id was acked: %+v", r[0])
	}
}

// testBlockDropsQueued: blocking deletes what the blocked account queued
// for every device of the blocker, and nothing else.
func testBlockDropsQueued(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	m := newAccount(t, s, "mallory")
	c := newAccount(t, s, "carol")
	a2 := must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "laptop", TokenHash: []byte("t2")}, 5)).Ref
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	mal := store.DeviceRef{Account: m.ID, Device: 1}
	car := store.DeviceRef{Account: c.ID, Device: 1}
	must(s.EnqueueBatch(ctx, []*store.Message{
		msg(mal, a1, "spam 1", 100), msg(mal, a2, "spam 2", 100), msg(car, a1, "hello", 100), msg(mal, car, "for carol", 100),
	}, 10, 10))
	ok(t, s.Block(ctx, a.ID, m.ID))
	if got := must(s.Pending(ctx, a1, 0, 100, 10)); len(got) != 1 || string(got[0].Content) != "hello" {
		t.Fatalf("alice's device 1 after the block: %v", got)
	}
	if got := must(s.Pending(ctx, a2, 0, 100, 10)); len(got) != 0 {
		t.Fatalf("alice's device 2 after the block: %v", got)
	}
	if got := must(s.Pending(ctx, car, 0, 100, 10)); len(got) != 1 {
		t.Fatalf("carol's mailbox after alice's block: %v", got)
	}
	// The places are free again.
	res := must(s.EnqueueBatch(ctx, []*store.Message{msg(car, a2, "1", 100), msg(car, a2, "2", 100)}, 2, 2))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("after the block: %+v", res)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	from := store.DeviceRef{Account: a.ID, Device: 1}
	to := store.DeviceRef{Account: a.ID, Device: 1}
	m1 := msg(from, to, "short", 100)
	m1.ExpiresAt = 200
	m2 := msg(from, to, "long", 100)
	m2.ExpiresAt = 5000
	must(s.EnqueueBatch(ctx, []*store.Message{m1, m2}, 10, 10))
	if got := must(s.Pending(ctx, to, 0, 300, 10)); len(got) != 1 || string(got[0].Content) != "long" {
		t.Fatalf("expired message still pending: %v", got)
	}
	if n := must(s.DeleteExpired(ctx, 300)); n != 1 {
		t.Fatalf("DeleteExpired = %d", n)
	}
	if n := must(s.QueueDepth(ctx)); n != 1 {
		t.Fatalf("QueueDepth = %d", n)
	}
	// The mailbox limit counts what is left.
	res := must(s.EnqueueBatch(ctx, []*store.Message{msg(from, to, "a", 100)}, 2, 2))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func testNotify(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	ref := store.DeviceRef{Account: a.ID, Device: 1}
	var mu sync.Mutex
	var got []int64
	s.SetNotify(func(ms []*store.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got = append(got, m.ID)
		}
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := s.EnqueueBatch(ctx, []*store.Message{msg(ref, ref, "a", 1), msg(ref, ref, "b", 1)}, 1000, 1000); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 40 {
		t.Fatalf("notified %d messages, want 40", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("notifications out of id order: %v", got)
		}
	}
}
