package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/key"
)

// Tests of ordinary conversations on every device (docs/multidevice.md).

// person is an account with an account identity and some devices with
// ordinary keys.
type person struct {
	name     string
	id       int64
	identity *key.IdentityKeyPair
	devs     []*apiclient.Client // devs[i] is device i+1
	regs     []uint32
}

// newPerson registers name with n devices, sets the account identity and
// uploads ordinary keys (keys one-time keys of each kind) from each device.
func newPerson(t *testing.T, env *servertest.Env, name string, n, keys int) *person {
	t.Helper()
	ctx := t.Context()
	u := env.NewUser(t, name, 0)
	p := &person{name: name, id: u.Cred.AccountID, identity: servertest.NewIdentity(t), devs: []*apiclient.Client{u.C}}
	for range n - 1 {
		c := env.Client(t, "")
		_, err := c.AddDevice(ctx, api.AddDevice{Username: name, Password: "password-" + name})
		check(t, err)
		p.devs = append(p.devs, c)
	}
	check(t, u.C.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: p.identity.Public.Bytes()}))
	for i, c := range p.devs {
		reg := uint32(100*(i+1) + len(name))
		check(t, c.UploadOrdinaryKeys(ctx, servertest.OrdinaryKeys(t, p.identity, reg, 1, keys)))
		p.regs = append(p.regs, reg)
	}
	return p
}

// to addresses every device of p but except (0: none) with content body.
func (p *person) to(except uint32, typ int32, body string) api.OrdinaryRecipient {
	r := api.OrdinaryRecipient{Username: p.name, Devices: []api.OrdinaryDeviceMessage{}}
	for i, reg := range p.regs {
		if d := uint32(i + 1); d != except {
			r.Devices = append(r.Devices, api.OrdinaryDeviceMessage{Device: d, RegistrationID: reg, Type: typ, Content: []byte(fmt.Sprintf("%s %d", body, d))})
		}
	}
	return r
}

func wantMismatch(t *testing.T, err error, want ...api.Mismatch) {
	t.Helper()
	wantCode(t, err, 409, api.CodeDeviceMismatch)
	if got := err.(*apiclient.Error).Mismatches; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("mismatches %+v, want %+v", got, want)
	}
}

func verifyWith(t *testing.T, ik []byte, b api.Bundle) {
	t.Helper()
	if !bytes.Equal(b.IdentityKey, ik) {
		t.Fatalf("bundle of device %d has identity %x, want the account identity", b.DeviceID, b.IdentityKey)
	}
	verifyBundle(t, b)
}

func TestAccountIdentity(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 3) // with a secret device: another identity
	bob := env.NewUser(t, "bob", 0)
	aik := servertest.NewIdentity(t)

	// No account identity yet: no ordinary keys.
	err := alice.C.UploadOrdinaryKeys(ctx, servertest.OrdinaryKeys(t, aik, 7, 1, 1))
	wantCode(t, err, 409, api.CodeConflict)
	if a, err := alice.C.Account(ctx); err != nil || a.AccountIdentityKey != nil {
		t.Fatalf("account before: %+v %v", a, err)
	}
	err = alice.C.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: aik.Public.Bytes()[1:]})
	wantCode(t, err, 400, api.CodeBadRequest)
	err = alice.C.SetAccountIdentity(ctx, api.SetAccountIdentity{})
	wantCode(t, err, 400, api.CodeBadRequest)

	check(t, alice.C.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: aik.Public.Bytes()}))
	check(t, alice.C.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: aik.Public.Bytes()})) // the same again: 204
	err = alice.C.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: servertest.NewIdentity(t).Public.Bytes()})
	wantCode(t, err, 409, api.CodeConflict)
	// Another device of the account cannot replace it either.
	c2 := env.Client(t, "")
	_, err = c2.AddDevice(ctx, api.AddDevice{Username: "alice", Password: "password-alice"})
	check(t, err)
	err = c2.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: servertest.NewIdentity(t).Public.Bytes()})
	wantCode(t, err, 409, api.CodeConflict)

	a, err := alice.C.Account(ctx)
	check(t, err)
	if !bytes.Equal(a.AccountIdentityKey, aik.Public.Bytes()) || !bytes.Equal(a.IdentityKey, alice.Identity.Public.Bytes()) {
		t.Fatalf("account %+v", a)
	}
	d, err := bob.C.Directory(ctx, "alice")
	check(t, err)
	if !bytes.Equal(d.AccountIdentityKey, aik.Public.Bytes()) || !bytes.Equal(d.IdentityKey, alice.Identity.Public.Bytes()) {
		t.Fatalf("directory %+v", d)
	}
	if d, err := alice.C.Directory(ctx, "bob"); err != nil || d.AccountIdentityKey != nil {
		t.Fatalf("bob without account identity: %+v %v", d, err)
	}
}

func TestOrdinaryKeys(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 2)
	bob := env.NewUser(t, "bob", 0)
	c2 := env.Client(t, "")
	_, err := c2.AddDevice(ctx, api.AddDevice{Username: "alice", Password: "password-alice"})
	check(t, err)

	// Every check of PUT /v1/keys, and the registration id, and the first
	// upload must make a bundle possible; nothing is stored on refusal.
	for _, tc := range []struct {
		what string
		ku   func() api.OrdinaryKeyUpload
		code string
	}{
		{"another identity", func() api.OrdinaryKeyUpload { return servertest.OrdinaryKeys(t, servertest.NewIdentity(t), 5, 1, 1) }, api.CodeBadSignature},
		{"registration id 0", func() api.OrdinaryKeyUpload { return servertest.OrdinaryKeys(t, alice.identity, 0, 1, 1) }, api.CodeBadRequest},
		{"registration id 16384", func() api.OrdinaryKeyUpload { return servertest.OrdinaryKeys(t, alice.identity, 16384, 1, 1) }, api.CodeBadRequest},
		{"no signed prekey", func() api.OrdinaryKeyUpload {
			k := servertest.OrdinaryKeys(t, alice.identity, 5, 1, 1)
			k.SignedPreKey = nil
			return k
		}, api.CodeBadRequest},
		{"no last resort", func() api.OrdinaryKeyUpload {
			k := servertest.OrdinaryKeys(t, alice.identity, 5, 1, 1)
			k.KyberLastResort = nil
			return k
		}, api.CodeBadRequest},
		{"empty", func() api.OrdinaryKeyUpload { return api.OrdinaryKeyUpload{RegistrationID: 5} }, api.CodeBadRequest},
		{"repeated id", func() api.OrdinaryKeyUpload {
			k := servertest.OrdinaryKeys(t, alice.identity, 5, 1, 2)
			k.PreKeys[1].KeyID = k.PreKeys[0].KeyID
			return k
		}, api.CodeBadRequest},
	} {
		wantCode(t, c2.UploadOrdinaryKeys(ctx, tc.ku()), 400, tc.code)
	}
	if ds, err := c2.Devices(ctx); err != nil || len(ds.Devices) != 2 || !ds.Devices[0].Ordinary || ds.Devices[1].Ordinary {
		t.Fatalf("devices after refused uploads: %+v %v", ds, err)
	}
	if bs, err := bob.C.OrdinaryBundles(ctx, "alice"); err != nil || len(bs.Devices) != 1 || bs.Devices[0].DeviceID != 1 {
		t.Fatalf("bundles: %+v %v", bs, err)
	}

	check(t, c2.UploadOrdinaryKeys(ctx, servertest.OrdinaryKeys(t, alice.identity, 77, 10, 30)))
	c, err := c2.OrdinaryKeyCounts(ctx)
	check(t, err)
	if c.PreKeys != 30 || c.KyberPreKeys != 30 || *c.SignedPreKeyID != 10 || *c.KyberLastResort != 5010 {
		t.Fatalf("counts %+v", c)
	}
	// Ordinary keys are not secret keys: a device that is not the secret
	// device still cannot upload those.
	wantCode(t, c2.UploadKeys(ctx, servertest.Keys(t, alice.identity, 1, 1)), 409, api.CodeNotSecretDevice)
	if c, err := c2.KeyCounts(ctx); err != nil || c.PreKeys != 0 {
		t.Fatalf("secret counts %+v %v", c, err)
	}
	d, err := bob.C.Directory(ctx, "alice")
	check(t, err)
	if len(d.Devices) != 2 || !d.Devices[0].Ordinary || !d.Devices[1].Ordinary || d.Devices[0].Secret {
		t.Fatalf("directory devices %+v", d.Devices)
	}

	// Bundles: every device with ordinary keys, or those asked for.
	bs, err := bob.C.OrdinaryBundles(ctx, "alice")
	check(t, err)
	if !bytes.Equal(bs.IdentityKey, alice.identity.Public.Bytes()) || len(bs.Devices) != 2 {
		t.Fatalf("bundles %+v", bs)
	}
	for _, b := range bs.Devices {
		verifyWith(t, bs.IdentityKey, b)
		if b.PreKeyID == nil || b.RegistrationID != map[uint32]uint32{1: alice.regs[0], 2: 77}[b.DeviceID] {
			t.Fatalf("bundle %+v", b)
		}
	}
	bs, err = bob.C.OrdinaryBundles(ctx, "alice", 2, 9)
	check(t, err)
	if len(bs.Devices) != 1 || bs.Devices[0].DeviceID != 2 || *bs.Devices[0].PreKeyID != 11 {
		t.Fatalf("bundles of [2 9]: %+v", bs)
	}
	// Device 1 ran out of one-time keys: the last resort.
	bs, err = bob.C.OrdinaryBundles(ctx, "alice", 1)
	check(t, err)
	if len(bs.Devices) != 1 || bs.Devices[0].PreKeyID != nil || *bs.Devices[0].KyberPreKeyID != 5001 {
		t.Fatalf("bundle without one-time keys %+v", bs)
	}
	_, err = alice.devs[0].OrdinaryBundles(ctx, "bob") // no account identity
	wantCode(t, err, 404, api.CodeNotFound)
	_, err = bob.C.OrdinaryBundles(ctx, "nobody")
	wantCode(t, err, 404, api.CodeNotFound)
	for _, q := range []string{"0", "x", "1,,2", "-1", "1;2", "4294967296", strings.Repeat("1,", 16) + "1", ""} {
		err := bob.C.Do(ctx, "GET", "/v1/ordinary/keys/alice?devices="+q, nil, nil)
		wantCode(t, err, 400, api.CodeBadRequest)
	}

	// Removing a device removes its ordinary keys.
	check(t, alice.devs[0].RemoveDevice(ctx, 2))
	bs, err = bob.C.OrdinaryBundles(ctx, "alice")
	check(t, err)
	if len(bs.Devices) != 1 || bs.Devices[0].DeviceID != 1 {
		t.Fatalf("bundles after removal %+v", bs)
	}
	if c, err := env.Store.OrdinaryKeyCounts(ctx, store.DeviceRef{Account: alice.id, Device: 2}); err != nil || c.PreKeys != 0 || c.SignedPreKeyID != nil {
		t.Fatalf("removed device's keys %+v %v", c, err)
	}
}

// TestOrdinaryKeysLow: a bundle fetch that leaves a device fewer than
// KeysLowMark ordinary one-time keys sends that device keys_low.
func TestOrdinaryKeysLow(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, api.KeysLowMark+1)
	bob := env.NewUser(t, "bob", 0)
	conn, err := alice.devs[1].Connect(ctx)
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("first frame %+v", f)
	}
	_, err = bob.C.OrdinaryBundles(ctx, "alice", 2)
	check(t, err) // 25 left: not low
	_, err = bob.C.OrdinaryBundles(ctx, "alice", 2)
	check(t, err) // 24 left
	deadline, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		f, err := conn.Next(deadline)
		check(t, err) // no keys_low before the deadline fails here
		if f.Type == api.FrameKeysLow {
			break
		}
	}
}

func TestOrdinarySend(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := env.NewUser(t, "carol", 0) // no account identity, no ordinary devices
	// Bob's third device has no ordinary keys: it is not expected.
	b3 := env.Client(t, "")
	_, err := b3.AddDevice(ctx, api.AddDevice{Username: "bob", Password: "password-bob"})
	check(t, err)
	depth := func() int64 {
		check(t, env.Store.Unblock(ctx, 0, 0)) // after lazy acks
		n, err := env.Store.QueueDepth(ctx)
		check(t, err)
		return n
	}

	send := api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "hi bob"), alice.to(1, 13, "sync")}, ExpiresIn: 3600}
	res, err := alice.devs[0].SendOrdinary(ctx, send)
	check(t, err)
	if len(res.IDs) != 2 || len(res.IDs[0]) != 2 || len(res.IDs[1]) != 1 || res.Timestamp == 0 {
		t.Fatalf("result %+v", res)
	}
	for _, c := range []struct {
		c    *apiclient.Client
		id   int64
		body string
	}{{bob.devs[0], res.IDs[0][0], "hi bob 1"}, {bob.devs[1], res.IDs[0][1], "hi bob 2"}, {alice.devs[1], res.IDs[1][0], "sync 2"}} {
		conn, err := c.c.Connect(ctx)
		check(t, err)
		f := servertest.Recv(t, conn, wait)
		if m := f.Msg; m == nil || m.ID != c.id || string(m.Content) != c.body || m.From != "alice" || m.FromDevice != 1 || m.Type != 13 ||
			m.ExpiresAt-m.Timestamp != 3600*1000 {
			t.Fatalf("%s: %+v %+v", c.body, f, f.Msg)
		}
		check(t, conn.Ack(ctx, c.id))
		conn.Close()
	}
	if n := depth(); n != 0 {
		t.Fatalf("%d messages left after acks", n)
	}

	// Device lists that are not current: 409 with every difference, and
	// nothing stored.
	stale := bob.to(0, 12, "x")
	stale.Devices[1].RegistrationID++
	stale.Devices = append(stale.Devices, api.OrdinaryDeviceMessage{Device: 3, RegistrationID: 1, Type: 12, Content: []byte("x")})
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{stale, alice.to(1, 12, "x")}})
	wantMismatch(t, err, api.Mismatch{Username: "bob", Extra: []uint32{3}, Stale: []uint32{2}})
	missing := bob.to(0, 12, "x")
	missing.Devices = missing.Devices[1:]
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{missing}})
	wantMismatch(t, err, api.Mismatch{Username: "bob", Missing: []uint32{1}}, api.Mismatch{Username: "alice", Missing: []uint32{2}})
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 12, "x"), alice.to(0, 12, "x")}})
	wantMismatch(t, err, api.Mismatch{Username: "alice", Extra: []uint32{1}})
	// An account without ordinary devices takes an empty list only.
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{{Username: "carol", Devices: []api.OrdinaryDeviceMessage{
		{Device: 1, RegistrationID: 1, Type: 13, Content: []byte("x")}}}, alice.to(1, 12, "x")}})
	wantMismatch(t, err, api.Mismatch{Username: "carol", Extra: []uint32{1}})
	if n := depth(); n != 0 {
		t.Fatalf("refused sends stored %d messages", n)
	}

	// The sender's own account may be left out only when it has no other
	// ordinary device; bob's device 3 has none, so bob's device 3 sending
	// to alice must still name bob's devices 1 and 2.
	check(t, b3.UploadOrdinaryKeys(ctx, servertest.OrdinaryKeys(t, bob.identity, 33, 1, 1)))
	_, err = b3.SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{alice.to(0, 13, "from b3")}})
	wantMismatch(t, err, api.Mismatch{Username: "bob", Missing: []uint32{1, 2}})
	bob.regs = append(bob.regs, 33)
	_, err = b3.SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{alice.to(0, 13, "from b3"), bob.to(3, 13, "sync")}})
	check(t, err)
	if n := depth(); n != 4 {
		t.Fatalf("depth %d after a send to 2+2 devices", n)
	}
	// carol has no ordinary device: she may send to alice with no own list.
	_, err = carol.C.SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{alice.to(0, 13, "from carol")}})
	check(t, err)
}

// TestOrdinarySendRefusals: malformed sends get 400 (or 413), and change
// nothing; single-device sends refuse the ordinary types.
func TestOrdinarySendRefusals(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	dev := func(d uint32, reg uint32, typ int32, content []byte) api.OrdinaryDeviceMessage {
		return api.OrdinaryDeviceMessage{Device: d, RegistrationID: reg, Type: typ, Content: content}
	}
	ok := func(mut func(*api.OrdinarySend)) api.OrdinarySend {
		s := api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "x")}}
		mut(&s)
		return s
	}
	for _, tc := range []struct {
		what   string
		s      api.OrdinarySend
		status int
		code   string
	}{
		{"no recipients", api.OrdinarySend{}, 400, api.CodeBadRequest},
		{"type 2", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[0].Type = 2 }), 400, api.CodeBadRequest},
		{"type 3", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[0].Type = 3 }), 400, api.CodeBadRequest},
		{"type 1", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[1].Type = 1 }), 400, api.CodeBadRequest},
		{"empty content", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[0].Content = nil }), 400, api.CodeBadRequest},
		{"device 0", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[0].Device = 0 }), 400, api.CodeBadRequest},
		{"registration id 0", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[0].RegistrationID = 0 }), 400, api.CodeBadRequest},
		{"device twice", ok(func(s *api.OrdinarySend) {
			s.Recipients[0].Devices = append(s.Recipients[0].Devices, s.Recipients[0].Devices[0])
		}), 400, api.CodeBadRequest},
		{"recipient twice", ok(func(s *api.OrdinarySend) { s.Recipients = append(s.Recipients, s.Recipients[0]) }), 400, api.CodeBadRequest},
		{"negative expiresIn", ok(func(s *api.OrdinarySend) { s.ExpiresIn = -1 }), 400, api.CodeBadRequest},
		{"history record of a short id", ok(func(s *api.OrdinarySend) {
			s.History = []api.HistoryRecord{{ID: make([]byte, 15), Blob: []byte("b")}}
		}), 400, api.CodeBadRequest},
		{"history record too large", ok(func(s *api.OrdinarySend) {
			s.History = []api.HistoryRecord{{ID: make([]byte, 16), Blob: make([]byte, api.MaxHistoryRecordBytes+1)}}
		}), 413, api.CodeTooLarge},
		{"17 devices", ok(func(s *api.OrdinarySend) {
			for d := range uint32(15) {
				s.Recipients[0].Devices = append(s.Recipients[0].Devices, dev(10+d, 1, 13, []byte("x")))
			}
		}), 400, api.CodeBadRequest},
		{"content too large", ok(func(s *api.OrdinarySend) { s.Recipients[0].Devices[1].Content = make([]byte, 256<<10+1) }), 413, api.CodeTooLarge},
		{"no such user", ok(func(s *api.OrdinarySend) { s.Recipients[0].Username = "nobody" }), 404, api.CodeNotFound},
		{"bad username", ok(func(s *api.OrdinarySend) { s.Recipients[0].Username = "BOB\u202e" }), 404, api.CodeNotFound},
	} {
		_, err := alice.devs[0].SendOrdinary(ctx, tc.s)
		e, isAPI := err.(*apiclient.Error)
		if !isAPI || e.Status != tc.status || e.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.what, err, tc.status, tc.code)
		}
	}
	// Ordinary types never go through the single-device endpoints.
	for _, typ := range []int32{12, 13} {
		_, err := alice.devs[0].Send(ctx, "bob", 1, api.SendMessage{Type: typ, Content: []byte("x")})
		wantCode(t, err, 400, api.CodeBadRequest)
		if !strings.Contains(err.Error(), "/v1/ordinary/messages") {
			t.Errorf("refusal does not say where to go: %v", err)
		}
	}
	conn, err := alice.devs[0].Connect(ctx)
	check(t, err)
	servertest.Recv(t, conn, wait) // empty
	check(t, conn.Send(ctx, 5, "bob", 1, api.SendMessage{Type: 12, Content: []byte("x")}))
	f, err := conn.Next(ctx)
	check(t, err)
	if f.Type != api.FrameError || f.ReqID != 5 || f.Error.Code != api.CodeBadRequest {
		t.Fatalf("WebSocket send of type 12: %+v", f)
	}
	check(t, env.Store.Unblock(ctx, 0, 0))
	if n, err := env.Store.QueueDepth(ctx); err != nil || n != 0 {
		t.Fatalf("refused sends stored %d messages (%v)", n, err)
	}
}

// TestOrdinarySendBlocked: a recipient who blocks the sender gets nothing,
// the sender cannot tell, and the device lists are checked all the same.
func TestOrdinarySendBlocked(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	check(t, bob.devs[0].Block(ctx, "alice"))
	res, err := alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{
		bob.to(0, 13, "blocked"), carol.to(0, 13, "hi carol"), alice.to(1, 13, "sync")}})
	check(t, err)
	for i, ids := range res.IDs {
		for j, id := range ids {
			if id <= 0 {
				t.Fatalf("id %d of recipient %d device %d", id, i, j)
			}
		}
	}
	for d := uint32(1); d <= 2; d++ {
		if ms, err := env.Store.Pending(ctx, store.DeviceRef{Account: bob.id, Device: d}, 0, 0, 10); err != nil || len(ms) != 0 {
			t.Fatalf("bob's device %d got %d messages (%v)", d, len(ms), err)
		}
	}
	for _, ref := range []store.DeviceRef{{Account: carol.id, Device: 1}, {Account: alice.id, Device: 2}} {
		if ms, err := env.Store.Pending(ctx, ref, 0, 0, 10); err != nil || len(ms) != 1 {
			t.Fatalf("%+v got %d messages (%v)", ref, len(ms), err)
		}
	}
	// A wrong list for the blocking account is still a mismatch: that a
	// block answers differently would tell.
	wrong := bob.to(0, 13, "x")
	wrong.Devices = wrong.Devices[:1]
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{wrong, alice.to(1, 13, "x")}})
	wantMismatch(t, err, api.Mismatch{Username: "bob", Missing: []uint32{2}})
}

// TestOrdinarySendFull: a full mailbox is skipped (id 0) unless every
// device of a recipient is full; then nothing is stored at all.
func TestOrdinarySendFull(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxQueue: 20, MaxQueuePerSender: 2})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	sendTo := func(rs ...api.OrdinaryRecipient) (api.OrdinarySendResult, error) {
		return alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: append(rs, alice.to(1, 13, "sync"))})
	}
	// Two sends fill alice's share of every mailbox: bob's and her own
	// device 2's.
	for range 2 {
		_, err := sendTo(bob.to(0, 13, "x"))
		check(t, err)
	}
	// Bob's device 2 acknowledges: it has room again, device 1 has not;
	// alice's device 2 is full, which never fails her send.
	ms, err := env.Store.Pending(ctx, store.DeviceRef{Account: bob.id, Device: 2}, 0, 0, 10)
	check(t, err)
	check(t, env.Store.Ack(ctx, store.DeviceRef{Account: bob.id, Device: 2}, []int64{ms[0].PublicID}))
	check(t, env.Store.Unblock(ctx, 0, 0))
	res, err := sendTo(bob.to(0, 13, "y"))
	check(t, err)
	if res.IDs[0][0] != 0 || res.IDs[0][1] == 0 || res.IDs[1][0] != 0 {
		t.Fatalf("ids %v: want bob's device 1 and alice's device 2 skipped (0)", res.IDs)
	}
	// Now every device of bob is full: nothing is stored, carol's copy
	// neither.
	before, err := env.Store.QueueDepth(ctx)
	check(t, err)
	_, err = sendTo(bob.to(0, 13, "z"), carol.to(0, 13, "z"))
	wantCode(t, err, 409, api.CodeMailboxFull)
	if n, err := env.Store.QueueDepth(ctx); err != nil || n != before {
		t.Fatalf("a refused send stored %d messages (%v)", n-before, err)
	}
}

// TestOrdinaryLimits: the per-device message limit is charged once per
// ciphertext, the pair limit once per recipient account, and bundle
// fetches as for the secret device, before the username is looked up.
func TestOrdinaryLimits(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.MessagesPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 5}
	lim.MessagesPerPair = ratelimit.Limit{Rate: 1e-9, Burst: 3}
	lim.BundlePerUser = ratelimit.Limit{Rate: 1e-9, Burst: 5}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	send := func(from uint32) error {
		_, err := alice.devs[from-1].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "m"), alice.to(from, 13, "m")}})
		return err
	}
	// Two ciphertexts per send: the third send of device 1 finds one of
	// its five tokens left.
	check(t, send(1))
	check(t, send(1))
	wantCode(t, send(1), 429, api.CodeRateLimited)
	// Device 2 has its own budget, but the pair limit (once per send and
	// recipient account, whatever the devices) has one of three left.
	check(t, send(2))
	wantCode(t, send(2), 429, api.CodeRateLimited)
	// Bundle fetches are charged before the lookup: a missing person
	// costs what an existing one does.
	for i := range 6 {
		_, err := bob.devs[0].OrdinaryBundles(ctx, fmt.Sprintf("nobody%d", i))
		if i < 5 {
			wantCode(t, err, 404, api.CodeNotFound)
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}
	_, err := bob.devs[0].OrdinaryBundles(ctx, "alice")
	wantCode(t, err, 429, api.CodeRateLimited)
}

// TestOrdinaryDrain: one fetcher cannot drain a device's ordinary one-time
// keys faster than the per-target limit allows, and other devices'
// bundles come out of the same fetches.
func TestOrdinaryDrain(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BundlePerTarget = ratelimit.Limit{Rate: 1e-9, Burst: 4}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 2, 10)
	var thieves []*servertest.User
	for i := range 6 {
		thieves = append(thieves, env.NewUser(t, fmt.Sprintf("thief%d", i), 0))
	}
	got := 0
	for _, th := range thieves {
		bs, err := th.C.OrdinaryBundles(ctx, "alice")
		if err == nil {
			got++
			if len(bs.Devices) != 2 {
				t.Fatalf("bundles %+v", bs)
			}
			continue
		}
		wantCode(t, err, 429, api.CodeRateLimited)
	}
	if got != 4 {
		t.Fatalf("%d fetches by throwaway accounts got through, want 4", got)
	}
	for d := range uint32(2) {
		c, err := env.Store.OrdinaryKeyCounts(ctx, store.DeviceRef{Account: alice.id, Device: d + 1})
		check(t, err)
		if c.PreKeys != 6 {
			t.Fatalf("device %d has %d one-time keys left, want 6", d+1, c.PreKeys)
		}
	}
}

// TestOrdinaryDeviceListProbing: sends with empty device lists would list
// anyone's devices in the device_mismatch answer; those answers are
// charged as directory lookups, and a recipient named with no device is
// charged as a message.
func TestOrdinaryDeviceListProbing(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.LookupPerUser = ratelimit.Limit{Rate: 1e-9, Burst: 3}
	lim.MessagesPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 8}
	env := servertest.Start(t, server.Config{Limits: lim})
	mallory := newPerson(t, env, "mallory", 1, 1)
	for i := range 5 {
		newPerson(t, env, fmt.Sprintf("victim%d", i), 2, 1)
	}
	probe := func(name string) error {
		_, err := mallory.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{{Username: name, Devices: []api.OrdinaryDeviceMessage{}}}})
		return err
	}
	for i := range 3 {
		wantMismatch(t, probe(fmt.Sprintf("victim%d", i)), api.Mismatch{Username: fmt.Sprintf("victim%d", i), Missing: []uint32{1, 2}})
	}
	wantCode(t, probe("victim3"), 429, api.CodeRateLimited)
	// 4 of the device's 8 message tokens are spent by now, one per empty
	// recipient: four more lookups of names, and then none.
	for i := range 5 {
		err := probe(fmt.Sprintf("nobody%d", i))
		if i < 4 {
			wantCode(t, err, 404, api.CodeNotFound)
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}
}
