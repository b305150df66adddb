package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// Conformance tests of links (docs/multidevice.md section 2).

func linkID(s string) []byte { return []byte(fmt.Sprintf("%-16s", s)) }

func newLink(account int64, id string, expires int64) store.Link {
	return store.Link{ID: linkID(id), Account: account, ClaimHash: []byte("hash-" + id), ExpiresAt: expires}
}

func testLinks(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	b := newAccount(t, s, "bob")
	ok(t, s.CreateLink(ctx, newLink(a.ID, "one", 1000), 3, 100))
	wantErr(t, s.CreateLink(ctx, newLink(b.ID, "one", 1000), 3, 100), store.ErrConflict)
	l := must(s.Link(ctx, linkID("one"), 100))
	if l.Account != a.ID || l.State != store.LinkWaiting || l.ExpiresAt != 1000 || string(l.ClaimHash) != "hash-one" ||
		l.HelloEphemeral != nil || l.Box != nil || l.Device != 0 {
		t.Fatalf("new link %+v", l)
	}
	_, err := s.Link(ctx, linkID("one"), 1000) // expired at 1000
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Link(ctx, linkID("nothing"), 100)
	wantErr(t, err, store.ErrNotFound)

	// At most maxOpen open links: expired and done ones do not count.
	ok(t, s.CreateLink(ctx, newLink(a.ID, "two", 1000), 3, 100))
	ok(t, s.CreateLink(ctx, newLink(a.ID, "old", 150), 3, 100))
	wantErr(t, s.CreateLink(ctx, newLink(a.ID, "four", 1000), 3, 100), store.ErrTooManyLinks)
	ok(t, s.CreateLink(ctx, newLink(b.ID, "bob's", 1000), 3, 100)) // another account
	ok(t, s.CreateLink(ctx, newLink(a.ID, "four", 1000), 3, 200))  // "old" expired

	// Hello: once, and only on a live link.
	wantErr(t, s.LinkHello(ctx, linkID("nothing"), 100, []byte("e"), []byte("m")), store.ErrNotFound)
	wantErr(t, s.LinkHello(ctx, linkID("old"), 200, []byte("e"), []byte("m")), store.ErrNotFound)
	ok(t, s.LinkHello(ctx, linkID("one"), 100, []byte("eph-n"), []byte("mac-n")))
	wantErr(t, s.LinkHello(ctx, linkID("one"), 100, []byte("eph-x"), []byte("mac-x")), store.ErrLinkState)
	l = must(s.Link(ctx, linkID("one"), 100))
	if l.State != store.LinkHelloed || string(l.HelloEphemeral) != "eph-n" || string(l.HelloMAC) != "mac-n" {
		t.Fatalf("after hello %+v", l)
	}
	// The box: only by the opening account, only after a hello, once.
	wantErr(t, s.SetLinkBox(ctx, linkID("two"), a.ID, 100, []byte("eph-o"), []byte("box")), store.ErrLinkState)
	wantErr(t, s.SetLinkBox(ctx, linkID("one"), b.ID, 100, []byte("eph-o"), []byte("box")), store.ErrNotFound)
	wantErr(t, s.SetLinkBox(ctx, linkID("one"), a.ID, 1000, []byte("eph-o"), []byte("box")), store.ErrNotFound)
	ok(t, s.SetLinkBox(ctx, linkID("one"), a.ID, 100, []byte("eph-o"), []byte("the box")))
	wantErr(t, s.SetLinkBox(ctx, linkID("one"), a.ID, 100, []byte("eph-2"), []byte("another")), store.ErrLinkState)
	l = must(s.Link(ctx, linkID("one"), 100))
	if l.State != store.LinkBoxed || string(l.BoxEphemeral) != "eph-o" || string(l.Box) != "the box" || string(l.HelloEphemeral) != "eph-n" {
		t.Fatalf("after the box %+v", l)
	}
	// Delete: only the opening account's.
	wantErr(t, s.DeleteLink(ctx, linkID("two"), b.ID), store.ErrNotFound)
	ok(t, s.DeleteLink(ctx, linkID("two"), a.ID))
	wantErr(t, s.DeleteLink(ctx, linkID("two"), a.ID), store.ErrNotFound)

	// The expiry sweep deletes expired links, and only those.
	must(s.DeleteExpired(ctx, 150))
	if _, err := s.Link(ctx, linkID("old"), 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired link after the sweep: %v", err)
	}
	must(s.Link(ctx, linkID("one"), 100))
	must(s.DeleteExpired(ctx, 5000))
	_, err = s.Link(ctx, linkID("one"), 0)
	wantErr(t, err, store.ErrNotFound)
}

func testLinkDevice(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	dev := func(name string) store.NewDevice {
		return store.NewDevice{Name: name, TokenHash: []byte("tok-" + name), Created: 500}
	}
	ok(t, s.CreateLink(ctx, newLink(a.ID, "l", 1000), 3, 100))
	// Not before the box.
	_, err := s.LinkDevice(ctx, linkID("l"), 100, dev("new"), 5, 9, Keys("n", 1, 2))
	wantErr(t, err, store.ErrLinkState)
	ok(t, s.LinkHello(ctx, linkID("l"), 100, []byte("e"), []byte("m")))
	_, err = s.LinkDevice(ctx, linkID("l"), 100, dev("new"), 5, 9, Keys("n", 1, 2))
	wantErr(t, err, store.ErrLinkState)
	ok(t, s.SetLinkBox(ctx, linkID("l"), a.ID, 100, []byte("e2"), []byte("box")))
	_, err = s.LinkDevice(ctx, linkID("l"), 1000, dev("new"), 5, 9, Keys("n", 1, 2)) // expired
	wantErr(t, err, store.ErrNotFound)
	// Keys that cannot make a bundle: nothing is created.
	_, err = s.LinkDevice(ctx, linkID("l"), 100, dev("new"), 5, 9, store.Keys{PreKeys: []store.PreKey{{ID: 1, PublicKey: []byte("p")}}})
	wantErr(t, err, store.ErrNoKeys)
	if ds := must(s.Devices(ctx, a.ID)); len(ds) != 1 {
		t.Fatalf("a refused link made devices: %+v", ds)
	}
	d := must(s.LinkDevice(ctx, linkID("l"), 100, dev("new"), 5, 9, Keys("n", 1, 2)))
	if d.Ref != (store.DeviceRef{Account: a.ID, Device: 2}) || d.Name != "new" || d.OrdinaryRegistrationID != 9 {
		t.Fatalf("linked device %+v", d)
	}
	got := must(s.Device(ctx, d.Ref))
	if !bytes.Equal(got.TokenHash, []byte("tok-new")) || got.OrdinaryRegistrationID != 9 {
		t.Fatalf("stored device %+v", got)
	}
	if c := must(s.OrdinaryKeyCounts(ctx, d.Ref)); c.PreKeys != 2 || c.SignedPreKeyID == nil {
		t.Fatalf("linked device's keys %+v", c)
	}
	l := must(s.Link(ctx, linkID("l"), 100))
	if l.State != store.LinkDone || l.Device != 2 || l.Box != nil || l.BoxEphemeral != nil {
		t.Fatalf("done link %+v", l)
	}
	// Used: no second device, no hello, no box.
	_, err = s.LinkDevice(ctx, linkID("l"), 100, dev("again"), 5, 9, Keys("m", 1, 2))
	wantErr(t, err, store.ErrLinkState)
	wantErr(t, s.LinkHello(ctx, linkID("l"), 100, []byte("e"), []byte("m")), store.ErrLinkState)
	// A done link is not open: it does not count against the limit.
	ok(t, s.CreateLink(ctx, newLink(a.ID, "m1", 1000), 1, 100))

	// The device limit holds.
	ok(t, s.LinkHello(ctx, linkID("m1"), 100, []byte("e"), []byte("m")))
	ok(t, s.SetLinkBox(ctx, linkID("m1"), a.ID, 100, []byte("e2"), []byte("box")))
	_, err = s.LinkDevice(ctx, linkID("m1"), 100, dev("third"), 2, 9, Keys("t", 1, 2))
	wantErr(t, err, store.ErrTooManyDevices)
	if l := must(s.Link(ctx, linkID("m1"), 100)); l.State != store.LinkBoxed {
		t.Fatalf("a refused device moved the link to %v", l.State)
	}
}

// testConcurrentHellos: of many hellos at once, one wins.
func testConcurrentHellos(t *testing.T, s store.Store) {
	a := newAccount(t, s, "alice")
	ok(t, s.CreateLink(ctx, newLink(a.ID, "race", 1000), 3, 100))
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = s.LinkHello(ctx, linkID("race"), 100, fmt.Appendf(nil, "e%d", i), []byte("m")) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrLinkState):
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d hellos won", wins)
	}
}
