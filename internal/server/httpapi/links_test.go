package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
)

// Tests of links (docs/multidevice.md section 2). The server never looks
// inside what the devices exchange, so random bytes stand in for the
// ephemeral keys, the MAC and the box.

type testLink struct {
	id, claim []byte
}

func newTestLink(t *testing.T) testLink {
	return testLink{id: randBytes(t, 16), claim: randBytes(t, 32)}
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (l testLink) open(t *testing.T, c *apiclient.Client, expiresIn int64) (api.LinkState, error) {
	h := sha256.Sum256(l.claim)
	return c.CreateLink(t.Context(), api.NewLink{ID: l.id, ClaimHash: h[:], ExpiresIn: expiresIn})
}

func (l testLink) hello(t *testing.T, c *apiclient.Client) error {
	return c.LinkHello(t.Context(), l.id, api.LinkHello{Claim: l.claim, Ephemeral: randBytes(t, 32), MAC: randBytes(t, 32)})
}

func linkDevice(t *testing.T, p *person, l testLink, reg uint32) api.LinkDevice {
	return api.LinkDevice{Claim: l.claim, DeviceName: "tablet", Keys: servertest.OrdinaryKeys(t, p.identity, reg, 1, 3)}
}

func TestLinkFlow(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	old, nd := alice.devs[0], env.Client(t, "") // the old device, the new one (no credential)
	l := newTestLink(t)

	st, err := l.open(t, old, 0)
	check(t, err)
	if st.State != api.LinkWaiting || st.ExpiresAt-time.Now().UnixMilli() > 300*1000 || st.ExpiresAt-time.Now().UnixMilli() < 290*1000 {
		t.Fatalf("new link %+v", st)
	}
	_, err = nd.FetchLinkBox(ctx, l.id, l.claim)
	wantCode(t, err, 409, api.CodeNotReady)

	eph, mac := randBytes(t, 32), randBytes(t, 32)
	check(t, nd.LinkHello(ctx, l.id, api.LinkHello{Claim: l.claim, Ephemeral: eph, MAC: mac}))
	st, err = old.LinkState(ctx, l.id)
	check(t, err)
	if st.State != api.LinkHelloed || !bytes.Equal(st.Ephemeral, eph) || !bytes.Equal(st.MAC, mac) {
		t.Fatalf("after hello %+v", st)
	}
	_, err = nd.FetchLinkBox(ctx, l.id, l.claim)
	wantCode(t, err, 409, api.CodeNotReady)
	_, err = nd.LinkDevice(ctx, l.id, linkDevice(t, alice, l, 71))
	wantCode(t, err, 409, api.CodeNotReady)

	box := api.LinkBox{Ephemeral: randBytes(t, 32), Box: randBytes(t, api.MaxLinkBoxBytes)}
	check(t, old.PutLinkBox(ctx, l.id, box))
	wantCode(t, old.PutLinkBox(ctx, l.id, box), 409, api.CodeLinkUsed)
	if st, err := old.LinkState(ctx, l.id); err != nil || st.State != api.LinkBoxed {
		t.Fatalf("after the box %+v %v", st, err)
	}
	got, err := nd.FetchLinkBox(ctx, l.id, l.claim)
	check(t, err)
	if !bytes.Equal(got.Ephemeral, box.Ephemeral) || !bytes.Equal(got.Box, box.Box) {
		t.Fatal("the box came back different")
	}

	cred, err := nd.LinkDevice(ctx, l.id, linkDevice(t, alice, l, 71))
	check(t, err)
	if cred.Username != "alice" || cred.DeviceID != 2 || cred.AccountID != alice.id {
		t.Fatalf("credential %+v", cred)
	}
	// The new device is a device of alice, with ordinary keys.
	a, err := nd.Account(ctx)
	check(t, err)
	if a.DeviceID != 2 || !bytes.Equal(a.AccountIdentityKey, alice.identity.Public.Bytes()) {
		t.Fatalf("new device's account %+v", a)
	}
	ds, err := old.Devices(ctx)
	check(t, err)
	if len(ds.Devices) != 2 || ds.Devices[1].Name != "tablet" || !ds.Devices[1].Ordinary {
		t.Fatalf("devices %+v", ds)
	}
	bs, err := bob.devs[0].OrdinaryBundles(ctx, "alice", 2)
	check(t, err)
	if len(bs.Devices) != 1 || bs.Devices[0].RegistrationID != 71 {
		t.Fatalf("bundles %+v", bs)
	}
	verifyWith(t, alice.identity.Public.Bytes(), bs.Devices[0])
	st, err = old.LinkState(ctx, l.id)
	check(t, err)
	if st.State != api.LinkDone || st.DeviceID != 2 {
		t.Fatalf("done link %+v", st)
	}
	// The link is of no more use, and the box is gone from the server.
	wantCode(t, l.hello(t, nd), 409, api.CodeLinkUsed)
	_, err = nd.FetchLinkBox(ctx, l.id, l.claim)
	wantCode(t, err, 409, api.CodeLinkUsed)
	_, err = env.Client(t, "").LinkDevice(ctx, l.id, linkDevice(t, alice, l, 72))
	wantCode(t, err, 409, api.CodeLinkUsed)
	if sl, err := env.Store.Link(ctx, l.id, 0); err != nil || sl.Box != nil || sl.BoxEphemeral != nil {
		t.Fatalf("done link in the store: box %d bytes, %v", len(sl.Box), err)
	}
	// A done link is not open: alice may open three more.
	for range api.MaxOpenLinks {
		_, err := newTestLink(t).open(t, old, 0)
		check(t, err)
	}
	_, err = newTestLink(t).open(t, old, 0)
	wantCode(t, err, 429, api.CodeRateLimited)
}

// TestLinkProbing: unknown ids, wrong claims and other accounts' links
// all get the same 404, and change nothing.
func TestLinkProbing(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	nd := env.Client(t, "")
	l := newTestLink(t)
	_, err := l.open(t, alice.devs[0], 0)
	check(t, err)

	var msgs []string
	notFound := func(err error) {
		t.Helper()
		wantCode(t, err, 404, api.CodeNotFound)
		msgs = append(msgs, err.(*apiclient.Error).Message)
	}
	guess := testLink{id: randBytes(t, 16), claim: l.claim}
	wrong := testLink{id: l.id, claim: randBytes(t, 32)}
	for _, x := range []testLink{guess, wrong} {
		notFound(x.hello(t, nd))
		_, err := nd.FetchLinkBox(ctx, x.id, x.claim)
		notFound(err)
		_, err = nd.LinkDevice(ctx, x.id, linkDevice(t, alice, x, 5))
		notFound(err)
	}
	// Another account's link is not there for bob.
	_, err = bob.devs[0].LinkState(ctx, l.id)
	notFound(err)
	notFound(bob.devs[0].PutLinkBox(ctx, l.id, api.LinkBox{Ephemeral: randBytes(t, 32), Box: []byte("x")}))
	notFound(bob.devs[0].DeleteLink(ctx, l.id))
	_, err = bob.devs[0].LinkState(ctx, guess.id)
	notFound(err)
	for _, m := range msgs {
		if m != msgs[0] {
			t.Fatalf("404 answers differ: %q and %q", msgs[0], m)
		}
	}
	if st, err := alice.devs[0].LinkState(ctx, l.id); err != nil || st.State != api.LinkWaiting {
		t.Fatalf("after probing: %+v %v", st, err)
	}
	// The real hello still works.
	check(t, l.hello(t, nd))
	// Malformed ids are bad requests, before anything is looked up.
	for _, id := range []string{"abc", "AAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA+", "AAAAAAAAAAAAAAAAAAAAAB"} {
		err := nd.Do(ctx, "POST", "/v1/links/"+id+"/hello", api.LinkHello{Claim: l.claim, Ephemeral: randBytes(t, 32), MAC: randBytes(t, 32)}, nil)
		wantCode(t, err, 400, api.CodeBadRequest)
		err = alice.devs[0].Do(ctx, "GET", "/v1/links/"+id, nil, nil)
		wantCode(t, err, 400, api.CodeBadRequest)
	}
}

// TestLinkFlood: hellos are limited per client address and per link, and
// only the first hello of a link counts.
func TestLinkFlood(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.LinkPerLink = ratelimit.Limit{Rate: 1e-9, Burst: 4}
	lim.LinkPerIP = ratelimit.Limit{Rate: 1e-9, Burst: 10}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 1, 1)
	nd := env.Client(t, "")
	l := newTestLink(t)
	_, err := l.open(t, alice.devs[0], 0)
	check(t, err)
	check(t, l.hello(t, nd))
	first, err := alice.devs[0].LinkState(ctx, l.id)
	check(t, err)
	for i := range 5 {
		err := l.hello(t, nd)
		if i < 3 {
			wantCode(t, err, 409, api.CodeLinkUsed)
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}
	if st, err := alice.devs[0].LinkState(ctx, l.id); err != nil || !bytes.Equal(st.Ephemeral, first.Ephemeral) {
		t.Fatalf("a later hello replaced the first: %v", err)
	}
	// 6 of the address's 10 are spent (the address is charged first);
	// guesses at other ids spend the rest.
	for i := range 5 {
		err := newTestLink(t).hello(t, nd)
		if i < 4 {
			wantCode(t, err, 404, api.CodeNotFound)
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}
}

// TestLinkRefusals: bad requests of every link endpoint, and the limits of
// opening links.
func TestLinkRefusals(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxDevices: 2})
	alice := newPerson(t, env, "alice", 1, 1)
	carol := env.NewUser(t, "carol", 0) // no account identity
	old, nd := alice.devs[0], env.Client(t, "")
	h := sha256.Sum256([]byte("x"))
	for _, tc := range []struct {
		what string
		nl   api.NewLink
		code string
	}{
		{"id of 15 bytes", api.NewLink{ID: make([]byte, 15), ClaimHash: h[:]}, api.CodeBadRequest},
		{"claim hash of 31 bytes", api.NewLink{ID: make([]byte, 16), ClaimHash: h[:31]}, api.CodeBadRequest},
		{"expiresIn too long", api.NewLink{ID: make([]byte, 16), ClaimHash: h[:], ExpiresIn: api.MaxLinkExpiresIn + 1}, api.CodeBadRequest},
		{"expiresIn negative", api.NewLink{ID: make([]byte, 16), ClaimHash: h[:], ExpiresIn: -1}, api.CodeBadRequest},
	} {
		_, err := old.CreateLink(ctx, tc.nl)
		wantCode(t, err, 400, tc.code)
	}
	_, err := newTestLink(t).open(t, carol.C, 0)
	wantCode(t, err, 409, api.CodeConflict)
	l := newTestLink(t)
	_, err = l.open(t, old, api.MaxLinkExpiresIn)
	check(t, err)
	_, err = l.open(t, old, 0)
	wantCode(t, err, 409, api.CodeConflict)

	// Hello: sizes.
	for _, hl := range []api.LinkHello{
		{Claim: l.claim[:31], Ephemeral: randBytes(t, 32), MAC: randBytes(t, 32)},
		{Claim: l.claim, Ephemeral: randBytes(t, 33), MAC: randBytes(t, 32)},
		{Claim: l.claim, Ephemeral: randBytes(t, 32)},
	} {
		wantCode(t, nd.LinkHello(ctx, l.id, hl), 400, api.CodeBadRequest)
	}
	// The box: not before the hello, sizes.
	wantCode(t, old.PutLinkBox(ctx, l.id, api.LinkBox{Ephemeral: randBytes(t, 32), Box: []byte("b")}), 409, api.CodeNotReady)
	check(t, l.hello(t, nd))
	for _, tc := range []struct {
		b      api.LinkBox
		status int
		code   string
	}{
		{api.LinkBox{Ephemeral: randBytes(t, 31), Box: []byte("b")}, 400, api.CodeBadRequest},
		{api.LinkBox{Ephemeral: randBytes(t, 32)}, 400, api.CodeBadRequest},
		{api.LinkBox{Ephemeral: randBytes(t, 32), Box: make([]byte, api.MaxLinkBoxBytes+1)}, 413, api.CodeTooLarge},
	} {
		wantCode(t, old.PutLinkBox(ctx, l.id, tc.b), tc.status, tc.code)
	}
	if st, err := old.LinkState(ctx, l.id); err != nil || st.State != api.LinkHelloed {
		t.Fatalf("after refused boxes %+v %v", st, err)
	}
	check(t, old.PutLinkBox(ctx, l.id, api.LinkBox{Ephemeral: randBytes(t, 32), Box: []byte("box")}))

	// The device: keys signed by the account identity, a name, room.
	for _, tc := range []struct {
		what string
		mut  func(*api.LinkDevice)
		code string
	}{
		{"another identity", func(d *api.LinkDevice) { d.Keys = servertest.OrdinaryKeys(t, servertest.NewIdentity(t), 5, 1, 1) }, api.CodeBadSignature},
		{"no signed prekey", func(d *api.LinkDevice) { d.Keys.SignedPreKey = nil }, api.CodeBadRequest},
		{"no last resort", func(d *api.LinkDevice) { d.Keys.KyberLastResort = nil }, api.CodeBadRequest},
		{"registration id 0", func(d *api.LinkDevice) { d.Keys.RegistrationID = 0 }, api.CodeBadRequest},
		{"a bidi override in the name", func(d *api.LinkDevice) { d.DeviceName = "tab\u202elet" }, api.CodeBadRequest},
		{"a short claim", func(d *api.LinkDevice) { d.Claim = d.Claim[:16] }, api.CodeBadRequest},
	} {
		d := linkDevice(t, alice, l, 5)
		tc.mut(&d)
		_, err := nd.LinkDevice(ctx, l.id, d)
		wantCode(t, err, 400, tc.code)
	}
	if ds, err := old.Devices(ctx); err != nil || len(ds.Devices) != 1 {
		t.Fatalf("refused devices were created: %+v %v", ds, err)
	}
	// MaxDevices 2: a device added meanwhile leaves no room.
	_, err = env.Client(t, "").AddDevice(ctx, api.AddDevice{Username: "alice", Password: "password-alice"})
	check(t, err)
	_, err = nd.LinkDevice(ctx, l.id, linkDevice(t, alice, l, 5))
	wantCode(t, err, 409, api.CodeTooManyDevices)
	if st, err := old.LinkState(ctx, l.id); err != nil || st.State != api.LinkBoxed {
		t.Fatalf("after a refused device %+v %v", st, err)
	}
	// The old device may delete its link: then it is gone.
	check(t, old.DeleteLink(ctx, l.id))
	_, err = nd.FetchLinkBox(ctx, l.id, l.claim)
	wantCode(t, err, 404, api.CodeNotFound)
}

// TestLinkExpiry: an expired link answers 404 to everyone, frees its
// place, and the expiry sweep deletes it.
func TestLinkExpiry(t *testing.T) {
	ctx := t.Context()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, Now: now})
	alice := newPerson(t, env, "alice", 1, 1)
	old, nd := alice.devs[0], env.Client(t, "")
	var ls []testLink
	for range api.MaxOpenLinks {
		l := newTestLink(t)
		_, err := l.open(t, old, 60)
		check(t, err)
		ls = append(ls, l)
	}
	check(t, ls[0].hello(t, nd))
	offset.Store(int64(61 * time.Second))
	wantCode(t, ls[1].hello(t, nd), 404, api.CodeNotFound)
	_, err := old.LinkState(ctx, ls[0].id)
	wantCode(t, err, 404, api.CodeNotFound)
	wantCode(t, old.PutLinkBox(ctx, ls[0].id, api.LinkBox{Ephemeral: randBytes(t, 32), Box: []byte("b")}), 404, api.CodeNotFound)
	_, err = newTestLink(t).open(t, old, 0) // the expired ones do not count
	check(t, err)
	if _, err := env.Store.DeleteExpired(ctx, now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if _, err := env.Store.Link(ctx, l.id, 0); err != store.ErrNotFound {
			t.Fatalf("an expired link after the sweep: %v", err)
		}
	}
}
