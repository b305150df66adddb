package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/store"
)

// Conformance tests of ordinary conversations (docs/multidevice.md).

func testAccountIdentity(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	if got := must(s.AccountByID(ctx, a.ID)); got.AccountIdentityKey != nil {
		t.Fatalf("new account has an account identity: %x", got.AccountIdentityKey)
	}
	ok(t, s.SetAccountIdentity(ctx, a.ID, []byte("aik1")))
	ok(t, s.SetAccountIdentity(ctx, a.ID, []byte("aik1"))) // the same again
	wantErr(t, s.SetAccountIdentity(ctx, a.ID, []byte("aik2")), store.ErrConflict)
	wantErr(t, s.SetAccountIdentity(ctx, 987654, []byte("aik1")), store.ErrNotFound)
	if got := must(s.AccountByUsername(ctx, "alice")); !bytes.Equal(got.AccountIdentityKey, []byte("aik1")) {
		t.Fatalf("account identity %q, want aik1", got.AccountIdentityKey)
	}
	// The secret identity is another key: making a secret device leaves
	// the account identity alone.
	ok(t, s.MakeSecretDevice(ctx, store.DeviceRef{Account: a.ID, Device: 1}, []byte("secret"), 5, nil))
	if got := must(s.AccountByID(ctx, a.ID)); !bytes.Equal(got.AccountIdentityKey, []byte("aik1")) || !bytes.Equal(got.IdentityKey, []byte("secret")) {
		t.Fatalf("after MakeSecretDevice: %+v", got)
	}
}

// ordinaryDevice gives the account a device with ordinary keys tagged tag
// (n one-time keys of each kind) and registration id reg.
func ordinaryDevice(t *testing.T, s store.Store, account int64, reg uint32, tag string, n int) store.DeviceRef {
	t.Helper()
	d := must(s.AddDevice(ctx, account, store.NewDevice{Name: tag, TokenHash: []byte("t-" + tag)}, 16)).Ref
	ok(t, s.SetOrdinaryKeys(ctx, d, reg, Keys(tag, 1, n)))
	return d
}

func testOrdinaryKeys(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	d1 := store.DeviceRef{Account: a.ID, Device: 1}
	// A first upload must make a bundle possible.
	wantErr(t, s.SetOrdinaryKeys(ctx, d1, 7, store.Keys{PreKeys: []store.PreKey{{ID: 1, PublicKey: []byte("p")}}}), store.ErrNoKeys)
	k := Keys("o", 1, 3)
	k.KyberLastResort = nil
	wantErr(t, s.SetOrdinaryKeys(ctx, d1, 7, k), store.ErrNoKeys)
	if d := must(s.Device(ctx, d1)); d.OrdinaryRegistrationID != 0 {
		t.Fatalf("a refused upload set the registration id: %+v", d)
	}
	wantErr(t, s.SetOrdinaryKeys(ctx, store.DeviceRef{Account: a.ID, Device: 9}, 7, Keys("o", 1, 3)), store.ErrNotFound)

	ok(t, s.SetOrdinaryKeys(ctx, d1, 7, Keys("o", 1, 3)))
	if d := must(s.Device(ctx, d1)); d.OrdinaryRegistrationID != 7 || d.RegistrationID != 0 {
		t.Fatalf("after upload: %+v", d)
	}
	c := must(s.OrdinaryKeyCounts(ctx, d1))
	if c.PreKeys != 3 || c.KyberPreKeys != 3 || c.SignedPreKeyID == nil || *c.SignedPreKeyID != 1 || c.KyberLastResort == nil || *c.KyberLastResort != 1001 {
		t.Fatalf("ordinary counts %+v", c)
	}
	// Ordinary keys are not the secret device's.
	if c := must(s.KeyCounts(ctx, d1)); c.PreKeys != 0 || c.SignedPreKeyID != nil {
		t.Fatalf("secret counts after an ordinary upload: %+v", c)
	}
	// Later uploads may be partial; the registration id follows the last.
	ok(t, s.SetOrdinaryKeys(ctx, d1, 8, store.Keys{PreKeys: []store.PreKey{{ID: 50, PublicKey: []byte("p50")}}}))
	if c := must(s.OrdinaryKeyCounts(ctx, d1)); c.PreKeys != 1 || c.KyberPreKeys != 3 || *c.SignedPreKeyID != 1 {
		t.Fatalf("after partial upload: %+v", c)
	}
	if ds := must(s.Devices(ctx, a.ID)); len(ds) != 1 || ds[0].OrdinaryRegistrationID != 8 {
		t.Fatalf("Devices: %+v", ds)
	}
	// Making a secret device removes the secret prekeys of the account,
	// never the ordinary ones.
	ok(t, s.MakeSecretDevice(ctx, d1, []byte("ik"), 5, &store.Keys{SignedPreKey: &store.SignedKey{ID: 3, PublicKey: []byte("s"), Signature: []byte("g")}}))
	if c := must(s.OrdinaryKeyCounts(ctx, d1)); c.PreKeys != 1 || c.KyberPreKeys != 3 {
		t.Fatalf("ordinary keys after MakeSecretDevice: %+v", c)
	}
	// Removing a device removes its ordinary keys.
	d2 := ordinaryDevice(t, s, a.ID, 9, "two", 2)
	ok(t, s.RemoveDevice(ctx, d2))
	if c := must(s.OrdinaryKeyCounts(ctx, d2)); c.PreKeys != 0 || c.KyberPreKeys != 0 || c.SignedPreKeyID != nil || c.KyberLastResort != nil {
		t.Fatalf("a removed device's ordinary keys: %+v", c)
	}
	if c := must(s.OrdinaryKeyCounts(ctx, d1)); c.PreKeys != 1 {
		t.Fatalf("removing device 2 touched device 1: %+v", c)
	}
}

func testOrdinaryBundles(t *testing.T, s store.Store) {
	a := newAccount(t, s, "bob")
	ok(t, s.SetAccountIdentity(ctx, a.ID, []byte("aik")))
	d1 := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, d1, 11, Keys("one", 1, 1)))
	must(s.AddDevice(ctx, a.ID, store.NewDevice{Name: "no keys", TokenHash: []byte("t2")}, 16)) // device 2: not ordinary
	d3 := ordinaryDevice(t, s, a.ID, 33, "three", 2)

	bs := must(s.TakeOrdinaryBundles(ctx, a.ID, nil))
	if len(bs) != 2 || bs[0].Device != 1 || bs[1].Device != d3.Device {
		t.Fatalf("bundles of devices %+v, want 1 and 3", bs)
	}
	for _, b := range bs {
		tag := map[uint32]string{1: "one", 3: "three"}[b.Device]
		if !bytes.Equal(b.IdentityKey, []byte("aik")) || b.RegistrationID != map[uint32]uint32{1: 11, 3: 33}[b.Device] ||
			string(b.SignedPreKey.PublicKey) != "spk-"+tag || b.PreKey == nil || b.KyberLastResort ||
			string(b.PreKey.PublicKey) != fmt.Sprintf("pk-%s-%d", tag, b.PreKey.ID) {
			t.Fatalf("bundle %+v", b)
		}
	}
	// Device 1 is out of one-time keys: no EC prekey, the last-resort Kyber key.
	bs = must(s.TakeOrdinaryBundles(ctx, a.ID, []uint32{1, 2, 99}))
	if len(bs) != 1 || bs[0].Device != 1 || bs[0].PreKey != nil || !bs[0].KyberLastResort || string(bs[0].KyberPreKey.PublicKey) != "lr-one" {
		t.Fatalf("bundles of [1 2 99]: %+v", bs)
	}
	if c := must(s.OrdinaryKeyCounts(ctx, d3)); c.PreKeys != 1 || c.KyberPreKeys != 1 {
		t.Fatalf("device 3 counts %+v, want one of each left", c)
	}
	if bs := must(s.TakeOrdinaryBundles(ctx, a.ID, []uint32{2})); len(bs) != 0 {
		t.Fatalf("bundles of a device without ordinary keys: %+v", bs)
	}
	// The secret bundle is another thing.
	_, err := s.TakeBundle(ctx, d1)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.TakeOrdinaryBundles(ctx, 987654, nil)
	wantErr(t, err, store.ErrNotFound)
}

func testConcurrentOrdinaryBundles(t *testing.T, s store.Store) {
	a := newAccount(t, s, "bob")
	ok(t, s.SetAccountIdentity(ctx, a.ID, []byte("aik")))
	ok(t, s.SetOrdinaryKeys(ctx, store.DeviceRef{Account: a.ID, Device: 1}, 1, Keys("c", 1, 40)))
	ordinaryDevice(t, s, a.ID, 2, "d", 40)
	const fetchers = 60
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range fetchers {
		wg.Go(func() {
			bs, err := s.TakeOrdinaryBundles(ctx, a.ID, nil)
			if err != nil || len(bs) != 2 {
				t.Error(len(bs), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bs {
				if b.PreKey != nil {
					seen[string(b.PreKey.PublicKey)]++
				}
				if !b.KyberLastResort {
					seen[string(b.KyberPreKey.PublicKey)]++
				}
			}
		})
	}
	wg.Wait()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s handed out %d times", k, n)
		}
	}
	if len(seen) != 4*40 {
		t.Errorf("%d one-time keys handed out, want %d", len(seen), 4*40)
	}
}

// fanoutAccount names every device of refs with its registration id.
func fanoutAccount(account int64, except uint32, regs map[uint32]uint32) store.FanoutAccount {
	return store.FanoutAccount{Account: account, Except: except, Devices: regs}
}

func testFanout(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, a1, 101, Keys("a1", 1, 1)))
	a2 := ordinaryDevice(t, s, a.ID, 102, "a2", 1)
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, b1, 201, Keys("b1", 1, 1)))
	b2 := ordinaryDevice(t, s, b.ID, 202, "b2", 1)
	b3 := must(s.AddDevice(ctx, b.ID, store.NewDevice{Name: "no keys", TokenHash: []byte("t")}, 16)).Ref

	var mu sync.Mutex
	var notified []*store.Message
	s.SetNotify(func(ms []*store.Message) {
		mu.Lock()
		defer mu.Unlock()
		notified = append(notified, ms...)
	})
	depth := func() int64 { return must(s.QueueDepth(ctx)) }

	// Device lists that differ: nothing stored, every difference told.
	f := store.Fanout{
		Accounts: []store.FanoutAccount{
			fanoutAccount(b.ID, 0, map[uint32]uint32{b1.Device: 201, b2.Device: 999, b3.Device: 1, 77: 1}),
			fanoutAccount(a.ID, a1.Device, map[uint32]uint32{a1.Device: 101}),
		},
		Messages: []*store.Message{msg(a1, b1, "x", 100), msg(a1, b2, "x", 100), msg(a1, b3, "x", 100), msg(a1, a1, "x", 100)},
		MaxQueue: 10, MaxPerSender: 10,
	}
	_, err := s.EnqueueFanout(ctx, f)
	var me *store.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("EnqueueFanout with wrong devices: %v", err)
	}
	want := fmt.Sprint([]store.Mismatch{
		{Account: b.ID, Extra: []uint32{b3.Device, 77}, Stale: []uint32{b2.Device}},
		{Account: a.ID, Missing: []uint32{a2.Device}, Extra: []uint32{a1.Device}},
	})
	if got := fmt.Sprint(me.Accounts); got != want {
		t.Fatalf("mismatches %s, want %s", got, want)
	}
	if n := depth(); n != 0 {
		t.Fatalf("a refused fanout stored %d messages", n)
	}

	// The right lists: every copy stored, in one commit, in order.
	f = store.Fanout{
		Accounts: []store.FanoutAccount{
			fanoutAccount(b.ID, 0, map[uint32]uint32{b1.Device: 201, b2.Device: 202}),
			fanoutAccount(a.ID, a1.Device, map[uint32]uint32{a2.Device: 102}),
		},
		Messages: []*store.Message{msg(a1, b1, "to b1", 100), msg(a1, b2, "to b2", 100), msg(a1, a2, "sync", 100)},
		MaxQueue: 10, MaxPerSender: 10,
	}
	res := must(s.EnqueueFanout(ctx, f))
	for i, r := range res {
		if r.Err != nil || r.ID == 0 || f.Messages[i].ID != r.ID || i > 0 && r.ID <= res[i-1].ID {
			t.Fatalf("results %+v", res)
		}
	}
	for _, c := range []struct {
		to   store.DeviceRef
		body string
	}{{b1, "to b1"}, {b2, "to b2"}, {a2, "sync"}} {
		got := must(s.Pending(ctx, c.to, 0, 100, 10))
		if len(got) != 1 || string(got[0].Content) != c.body || got[0].From != a1 {
			t.Fatalf("mailbox of %+v: %v", c.to, got)
		}
	}
	mu.Lock()
	if len(notified) != 3 || notified[0].ID != res[0].ID || notified[2].ID != res[2].ID {
		t.Errorf("notified %v", notified)
	}
	mu.Unlock()

	// An account named with no messages (it blocks the sender) is checked
	// all the same; a sender alone on its account may leave it out.
	f = store.Fanout{
		Accounts: []store.FanoutAccount{fanoutAccount(b.ID, 0, map[uint32]uint32{b1.Device: 201})},
		MaxQueue: 10, MaxPerSender: 10,
	}
	if _, err := s.EnqueueFanout(ctx, f); !errors.As(err, &me) || len(me.Accounts) != 1 || fmt.Sprint(me.Accounts[0].Missing) != fmt.Sprint([]uint32{b2.Device}) {
		t.Fatalf("blocked account with a wrong list: %v", err)
	}
	f.Accounts[0].Devices[b2.Device] = 202
	if res := must(s.EnqueueFanout(ctx, f)); len(res) != 0 {
		t.Fatalf("results %+v", res)
	}

	// A new registration id makes the device stale; a removed device extra.
	ok(t, s.SetOrdinaryKeys(ctx, b2, 203, store.Keys{PreKeys: []store.PreKey{{ID: 9, PublicKey: []byte("p")}}}))
	ok(t, s.RemoveDevice(ctx, b1))
	f = store.Fanout{
		Accounts: []store.FanoutAccount{fanoutAccount(b.ID, 0, map[uint32]uint32{b1.Device: 201, b2.Device: 202})},
		Messages: []*store.Message{msg(a1, b1, "x", 100), msg(a1, b2, "x", 100)},
		MaxQueue: 10, MaxPerSender: 10,
	}
	_, err = s.EnqueueFanout(ctx, f)
	if !errors.As(err, &me) || fmt.Sprint(me.Accounts) != fmt.Sprint([]store.Mismatch{{Account: b.ID, Extra: []uint32{b1.Device}, Stale: []uint32{b2.Device}}}) {
		t.Fatalf("after new keys and a removal: %v", err)
	}
}

// testFanoutFull: a full mailbox is skipped, unless all of a recipient
// account's are full; the sender's own devices never fail a send.
func testFanoutFull(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	c := newAccount(t, s, "carol")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, a1, 1, Keys("a1", 1, 1)))
	a2 := ordinaryDevice(t, s, a.ID, 2, "a2", 1)
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, b1, 1, Keys("b1", 1, 1)))
	b2 := ordinaryDevice(t, s, b.ID, 2, "b2", 1)
	c1 := store.DeviceRef{Account: c.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, c1, 1, Keys("c1", 1, 1)))
	// Fill b1's mailbox with alice's messages, and a2's.
	must(s.EnqueueBatch(ctx, []*store.Message{msg(a1, b1, "1", 100), msg(a1, b1, "2", 100), msg(a1, a2, "1", 100), msg(a1, a2, "2", 100)}, 2, 2))

	fan := func(msgs ...*store.Message) store.Fanout {
		return store.Fanout{
			Accounts: []store.FanoutAccount{
				fanoutAccount(b.ID, 0, map[uint32]uint32{1: 1, b2.Device: 2}),
				fanoutAccount(a.ID, 1, map[uint32]uint32{a2.Device: 2}),
			},
			Messages: msgs, MaxQueue: 2, MaxPerSender: 2,
		}
	}
	res := must(s.EnqueueFanout(ctx, fan(msg(a1, b1, "x", 100), msg(a1, b2, "x", 100), msg(a1, a2, "x", 100))))
	if !errors.Is(res[0].Err, store.ErrMailboxFull) || res[1].Err != nil || res[1].ID == 0 || !errors.Is(res[2].Err, store.ErrMailboxFull) {
		t.Fatalf("results %+v: want b1 and a2 skipped", res)
	}
	// b2 full too (2 from alice): every device of bob is full.
	must(s.EnqueueBatch(ctx, []*store.Message{msg(a1, b2, "fill", 100)}, 2, 2))
	before := must(s.QueueDepth(ctx))
	_, err := s.EnqueueFanout(ctx, fan(msg(a1, b1, "y", 100), msg(a1, b2, "y", 100), msg(a1, a2, "y", 100)))
	wantErr(t, err, store.ErrMailboxFull)
	// Carol has room, but the fanout is all or nothing.
	f := fan(msg(a1, b1, "z", 100), msg(a1, b2, "z", 100), msg(a1, a2, "z", 100), msg(a1, c1, "z", 100))
	f.Accounts = append(f.Accounts, fanoutAccount(c.ID, 0, map[uint32]uint32{1: 1}))
	_, err = s.EnqueueFanout(ctx, f)
	wantErr(t, err, store.ErrMailboxFull)
	if n := must(s.QueueDepth(ctx)); n != before {
		t.Fatalf("refused fanouts stored %d messages", n-before)
	}
	// Another sender has its own share of bob's mailboxes.
	res = must(s.EnqueueFanout(ctx, store.Fanout{
		Accounts: []store.FanoutAccount{fanoutAccount(b.ID, 0, map[uint32]uint32{1: 1, b2.Device: 2})},
		Messages: []*store.Message{msg(c1, b1, "from carol", 100), msg(c1, b2, "from carol", 100)},
		MaxQueue: 10, MaxPerSender: 2,
	}))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("carol's fanout: %+v", res)
	}
}

// testGroupFanout: a group send names devices without registration ids
// (0: not compared, but missing and extra devices still are), and with
// SkipFull an account whose every mailbox is full is skipped, not a
// failure.
func testGroupFanout(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	c := newAccount(t, s, "carol")
	a1 := store.DeviceRef{Account: a.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, a1, 1, Keys("a1", 1, 1)))
	b1 := store.DeviceRef{Account: b.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, b1, 11, Keys("b1", 1, 1)))
	b2 := ordinaryDevice(t, s, b.ID, 12, "b2", 1)
	c1 := store.DeviceRef{Account: c.ID, Device: 1}
	ok(t, s.SetOrdinaryKeys(ctx, c1, 21, Keys("c1", 1, 1)))

	group := func(bob map[uint32]uint32, msgs ...*store.Message) store.Fanout {
		return store.Fanout{
			Accounts: []store.FanoutAccount{
				fanoutAccount(b.ID, 0, bob),
				fanoutAccount(c.ID, 0, map[uint32]uint32{1: 0}),
				fanoutAccount(a.ID, a1.Device, nil),
			},
			Messages: msgs, MaxQueue: 2, MaxPerSender: 2, SkipFull: true,
		}
	}
	// Missing and extra devices are told; no registration id is stale.
	_, err := s.EnqueueFanout(ctx, group(map[uint32]uint32{1: 0, 9: 0}, msg(a1, b1, "g", 100), msg(a1, c1, "g", 100)))
	var me *store.MismatchError
	if !errors.As(err, &me) || fmt.Sprint(me.Accounts) != fmt.Sprint([]store.Mismatch{{Account: b.ID, Missing: []uint32{b2.Device}, Extra: []uint32{9}}}) {
		t.Fatalf("group fanout with wrong devices: %v", err)
	}
	if n := must(s.QueueDepth(ctx)); n != 0 {
		t.Fatalf("a refused group fanout stored %d messages", n)
	}
	bob := map[uint32]uint32{1: 0, b2.Device: 0}
	all := func(body string) []*store.Message {
		return []*store.Message{msg(a1, b1, body, 100), msg(a1, b2, body, 100), msg(a1, c1, body, 100)}
	}
	for _, body := range []string{"g1", "g2"} {
		res := must(s.EnqueueFanout(ctx, group(bob, all(body)...)))
		for _, r := range res {
			if r.Err != nil || r.ID == 0 {
				t.Fatalf("group fanout %s: %+v", body, res)
			}
		}
	}
	// Bob's mailboxes are full of alice's messages, carol's not once
	// she reads: bob is skipped, carol gets hers.
	ok(t, s.Ack(ctx, c1, pub(must(s.Pending(ctx, c1, 0, 100, 10))...)))
	var res []store.EnqueueResult
	deadline := time.Now().Add(10 * time.Second)
	for {
		res = must(s.EnqueueFanout(ctx, group(bob, all("g3")...)))
		if res[2].Err == nil || time.Now().After(deadline) {
			break // acks may be lazy
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(res[0].Err, store.ErrMailboxFull) || !errors.Is(res[1].Err, store.ErrMailboxFull) || res[2].Err != nil || res[2].ID == 0 {
		t.Fatalf("results %+v: want bob skipped, carol stored", res)
	}
	got := must(s.Pending(ctx, c1, 0, 100, 10))
	if len(got) != 1 || string(got[0].Content) != "g3" {
		t.Fatalf("carol's mailbox: %v", got)
	}
}
