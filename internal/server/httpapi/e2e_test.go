package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/key"
)

const wait = 10 * time.Second

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	e, ok := err.(*apiclient.Error)
	if !ok || e.Status != status || e.Code != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

// verifyBundle checks a bundle's signatures the way a client would.
func verifyBundle(t *testing.T, b api.Bundle) {
	t.Helper()
	ik, err := key.ParseIdentityKey(b.IdentityKey)
	check(t, err)
	if !ik.Verify(b.SignedPreKeySignature, b.SignedPreKey) {
		t.Fatal("signed prekey signature does not verify")
	}
	if !ik.Verify(b.KyberPreKeySignature, b.KyberPreKey) {
		t.Fatal("Kyber prekey signature does not verify")
	}
	if _, err := key.ParseKEMPublic(b.KyberPreKey); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEnd(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 3)

	// Directory.
	d, err := alice.C.Directory(ctx, "bob")
	check(t, err)
	if d.Username != "bob" || d.DisplayName != "The bob" || !d.CanReceiveSecret || d.SecretDeviceID == nil || *d.SecretDeviceID != 1 ||
		!bytes.Equal(d.IdentityKey, bob.Identity.Public.Bytes()) || len(d.Devices) != 1 || !d.Devices[0].Secret {
		t.Fatalf("directory entry %+v", d)
	}
	if d, err := bob.C.Directory(ctx, "alice"); err != nil || d.CanReceiveSecret || d.SecretDeviceID != nil || d.IdentityKey != nil {
		t.Fatalf("alice without secret device: %+v %v", d, err)
	}
	_, err = alice.C.Directory(ctx, "nobody")
	wantCode(t, err, 404, api.CodeNotFound)

	// Bundles consume one-time keys, then fall back to the last resort.
	seen := map[uint32]bool{}
	for i := range 4 {
		b, err := alice.C.Bundle(ctx, "bob", 0)
		check(t, err)
		verifyBundle(t, b)
		if b.DeviceID != 1 || b.RegistrationID != 4242 || b.SignedPreKeyID != 1 || b.KyberPreKeyID == nil {
			t.Fatalf("bundle %d: %+v", i, b)
		}
		if i < 3 {
			if b.PreKeyID == nil || seen[*b.PreKeyID] || *b.KyberPreKeyID != 1000+*b.PreKeyID && seen[*b.KyberPreKeyID] {
				t.Fatalf("bundle %d reuses a one-time key: %+v", i, b)
			}
			seen[*b.PreKeyID], seen[*b.KyberPreKeyID] = true, true
		} else if b.PreKeyID != nil || b.PreKey != nil || *b.KyberPreKeyID != 5001 {
			t.Fatalf("bundle after the one-time keys ran out: preKeyId %v kyberPreKeyId %d", b.PreKeyID, *b.KyberPreKeyID)
		}
	}
	c, err := bob.C.KeyCounts(ctx)
	check(t, err)
	if c.PreKeys != 0 || c.KyberPreKeys != 0 || *c.SignedPreKeyID != 1 || *c.KyberLastResort != 5001 {
		t.Fatalf("counts %+v", c)
	}
	check(t, bob.C.UploadKeys(ctx, servertest.Keys(t, bob.Identity, 100, 5)))
	if c, _ := bob.C.KeyCounts(ctx); c.PreKeys != 5 || c.KyberPreKeys != 5 || *c.SignedPreKeyID != 100 {
		t.Fatalf("counts after replenishing %+v", c)
	}

	// Offline delivery: queued messages arrive in order on connect. Alice
	// has no secret device, so she sends a type the server does not check
	// (TestSecretRuleWithoutRecipientIdentity covers types 2 and 3).
	var ids []int64
	for i := range 10 {
		r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: fmt.Appendf(nil, "m%d", i)})
		check(t, err)
		if slices.Contains(ids, r.ID) || r.ID <= 0 || r.Timestamp == 0 {
			t.Fatalf("send result %+v after %v", r, ids)
		}
		ids = append(ids, r.ID)
	}
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	for i := range 10 {
		f := servertest.Recv(t, conn, wait)
		m := f.Msg
		if f.Type != api.FrameMessage || m.ID != ids[i] || string(m.Content) != fmt.Sprint("m", i) || m.From != "alice" ||
			m.FromDevice != 1 || m.Type != 1 || m.Timestamp == 0 || m.ExpiresAt <= m.Timestamp {
			t.Fatalf("frame %d: %+v %+v", i, f, m)
		}
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("after the backlog: %+v", f)
	}
	check(t, conn.Ack(ctx, ids[:5]...))

	// Live delivery, over HTTP and over the WebSocket.
	r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("live")})
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != r.ID || string(f.Msg.Content) != "live" {
		t.Fatalf("live message: %+v", f)
	}
	aconn, err := alice.C.Connect(ctx)
	check(t, err)
	if f := servertest.Recv(t, aconn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("alice's empty mailbox: %+v", f)
	}
	check(t, aconn.Send(ctx, 7, "bob", 1, api.SendMessage{Type: 1, Content: []byte("over ws")}))
	sent, err := aconn.Next(ctx)
	check(t, err)
	if sent.Type != api.FrameSent || sent.ReqID != 7 || sent.Result == nil || sent.Result.ID <= 0 || sent.Result.ID == r.ID {
		t.Fatalf("sent frame %+v", sent)
	}
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != sent.Result.ID || string(f.Msg.Content) != "over ws" {
		t.Fatalf("message sent over the WebSocket: %+v", f)
	}
	check(t, aconn.Send(ctx, 8, "nobody", 1, api.SendMessage{Type: 1, Content: []byte("x")}))
	if f, err := aconn.Next(ctx); err != nil || f.Type != api.FrameError || f.ReqID != 8 || f.Error.Code != api.CodeNotFound {
		t.Fatalf("send to nobody over ws: %+v %v", f, err)
	}
	aconn.Close()

	// Reconnect: the unacknowledged messages come again, the acked do not.
	conn.Close()
	conn, err = bob.C.Connect(ctx)
	check(t, err)
	want := append(append([]int64{}, ids[5:]...), r.ID, sent.Result.ID)
	for i, id := range want {
		f := servertest.Recv(t, conn, wait)
		if f.Msg == nil || f.Msg.ID != id {
			t.Fatalf("backlog frame %d: %+v, want id %d", i, f, id)
		}
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("after the backlog: %+v", f)
	}
	check(t, conn.Ack(ctx, want...))
	conn.Close()
	// Acks are committed with the next write; wait for the queue to drain.
	deadline := time.Now().Add(wait)
	for {
		n, err := env.Store.QueueDepth(ctx)
		check(t, err)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued after every ack", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err = bob.C.Connect(ctx)
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("acked messages delivered again: %+v", f)
	}
	conn.Close()
}

// TestOrderPerSender has several senders stream to one connected device
// over their WebSockets; each sender's messages must arrive in order.
func TestOrderPerSender(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	bob := env.NewUser(t, "bob", 0)
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatal(f)
	}
	const senders, each = 5, 200
	var wg sync.WaitGroup
	for s := range senders {
		u := env.NewUser(t, fmt.Sprintf("sender%d", s), 0)
		wg.Go(func() {
			sc, err := u.C.Connect(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer sc.Close()
			go func() {
				for {
					if _, err := sc.Next(ctx); err != nil {
						return
					}
				}
			}()
			for i := range each {
				if err := sc.Send(ctx, uint64(i), "bob", 1, api.SendMessage{Type: 1, Content: fmt.Appendf(nil, "%d", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := map[string]int{}
	seen := map[int64]bool{}
	for range senders * each {
		f := servertest.Recv(t, conn, wait)
		m := f.Msg
		if m == nil {
			t.Fatalf("unexpected frame %+v", f)
		}
		if string(m.Content) != fmt.Sprint(next[m.From]) {
			t.Fatalf("from %s: got %s, want %d", m.From, m.Content, next[m.From])
		}
		if seen[m.ID] {
			t.Fatalf("id %d delivered twice", m.ID)
		}
		seen[m.ID] = true
		next[m.From]++
		check(t, conn.Ack(ctx, m.ID))
	}
	wg.Wait()
}

func TestConcurrentBundleFetches(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	const keys = 40
	bob := env.NewUser(t, "bob", keys)
	var fetchers []*servertest.User
	for i := range 6 {
		fetchers = append(fetchers, env.NewUser(t, fmt.Sprintf("fetcher%d", i), 0))
	}
	var mu sync.Mutex
	ec, kem := map[uint32]int{}, map[uint32]int{}
	var wg sync.WaitGroup
	for _, f := range fetchers {
		for range 10 {
			wg.Go(func() {
				b, err := f.C.Bundle(ctx, "bob", 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if b.PreKeyID != nil {
					ec[*b.PreKeyID]++
				}
				kem[*b.KyberPreKeyID]++
			})
		}
	}
	wg.Wait()
	for id, n := range ec {
		if n > 1 {
			t.Errorf("EC prekey %d handed out %d times", id, n)
		}
	}
	for id, n := range kem {
		if n > 1 && id != 5001 {
			t.Errorf("Kyber prekey %d handed out %d times", id, n)
		}
	}
	if len(ec) != keys || kem[5001] != 60-keys {
		t.Errorf("%d EC keys handed out, last resort %d times; want %d and %d", len(ec), kem[5001], keys, 60-keys)
	}
	_ = bob
}

func TestSecretDeviceChange(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	bob := env.NewUser(t, "bob", 2)
	alice := env.NewUser(t, "alice", 0)
	laptop := env.Client(t, "")
	cred, err := laptop.AddDevice(ctx, api.AddDevice{Username: "bob", Password: "password-bob", DeviceName: "laptop"})
	check(t, err)
	if cred.DeviceID != 2 {
		t.Fatalf("second device got id %d", cred.DeviceID)
	}
	// The laptop is not the secret device: it cannot upload keys.
	err = laptop.UploadKeys(ctx, servertest.Keys(t, bob.Identity, 10, 1))
	wantCode(t, err, 409, api.CodeNotSecretDevice)

	ik2 := servertest.NewIdentity(t)
	check(t, laptop.MakeSecret(ctx, api.MakeSecret{RegistrationID: 7, IdentityKey: ik2.Public.Bytes()}))
	d, err := alice.C.Directory(ctx, "bob")
	check(t, err)
	if *d.SecretDeviceID != 2 || !bytes.Equal(d.IdentityKey, ik2.Public.Bytes()) || d.CanReceiveSecret || len(d.Devices) != 2 || d.Devices[0].Secret || !d.Devices[1].Secret {
		t.Fatalf("directory after the change: %+v", d)
	}
	_, err = alice.C.Bundle(ctx, "bob", 0)
	wantCode(t, err, 404, api.CodeNotFound)
	_, err = alice.C.Bundle(ctx, "bob", 1) // the old secret device
	wantCode(t, err, 404, api.CodeNotFound)
	// Keys signed by the old identity are refused now.
	err = laptop.UploadKeys(ctx, servertest.Keys(t, bob.Identity, 10, 1))
	wantCode(t, err, 400, api.CodeBadSignature)
	err = bob.C.UploadKeys(ctx, servertest.Keys(t, bob.Identity, 10, 1))
	wantCode(t, err, 409, api.CodeNotSecretDevice)
	check(t, laptop.UploadKeys(ctx, servertest.Keys(t, ik2, 10, 1)))
	b, err := alice.C.Bundle(ctx, "bob", 0)
	check(t, err)
	verifyBundle(t, b)
	if b.DeviceID != 2 || b.RegistrationID != 7 || !bytes.Equal(b.IdentityKey, ik2.Public.Bytes()) {
		t.Fatalf("bundle after the change: %+v", b)
	}
	// Login re-issues the credential; the old one stops working.
	old := laptop.Credential()
	_, err = laptop.Login(ctx, api.Login{Username: "bob", Password: "password-bob", DeviceID: 2})
	check(t, err)
	_, err = env.Client(t, old).Account(ctx)
	wantCode(t, err, 401, api.CodeUnauthorized)
	acc, err := laptop.Account(ctx)
	check(t, err)
	if acc.DeviceID != 2 || *acc.SecretDeviceID != 2 {
		t.Fatalf("account %+v", acc)
	}
	// Removing the secret device removes the identity.
	check(t, bob.C.RemoveDevice(ctx, 2))
	_, err = laptop.Account(ctx)
	wantCode(t, err, 401, api.CodeUnauthorized)
	d, err = alice.C.Directory(ctx, "bob")
	check(t, err)
	if d.SecretDeviceID != nil || d.IdentityKey != nil || len(d.Devices) != 1 {
		t.Fatalf("directory after removing the secret device: %+v", d)
	}
	devs, err := bob.C.Devices(ctx)
	check(t, err)
	if len(devs.Devices) != 1 || devs.Devices[0].ID != 1 || devs.Devices[0].Name != "phone" {
		t.Fatalf("devices %+v", devs)
	}
}

func TestBlock(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	check(t, alice.C.Block(ctx, "bob"))
	bl, err := alice.C.Blocked(ctx)
	check(t, err)
	if len(bl.Usernames) != 1 || bl.Usernames[0] != "bob" {
		t.Fatalf("blocked %+v", bl)
	}
	// Bob cannot tell: the send succeeds. Alice gets nothing.
	if _, err := bob.C.Send(ctx, "alice", 1, api.SendMessage{Type: 1, Content: []byte("spam")}); err != nil {
		t.Fatal(err)
	}
	check(t, alice.C.Unblock(ctx, "bob"))
	r, err := bob.C.Send(ctx, "alice", 1, api.SendMessage{Type: 1, Content: []byte("hi again")})
	check(t, err)
	conn, err := alice.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != r.ID || string(f.Msg.Content) != "hi again" {
		t.Fatalf("first message after unblocking: %+v", f)
	}
	err = alice.C.Block(ctx, "nobody")
	wantCode(t, err, 404, api.CodeNotFound)
}

func TestLimits(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	lim := servertest.Generous
	lim.BundlePerPair.Rate, lim.BundlePerPair.Burst = 1.0/60, 2
	lim.RegisterPerIP.Rate, lim.RegisterPerIP.Burst = 1.0/60, 4
	env := servertest.Start(t, server.Config{Limits: lim, Now: clock, MaxQueue: 3, MaxQueuePerSender: 3, MaxContentBytes: 1000})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 5)
	carol := env.NewUser(t, "carol", 0)

	_, err := env.Client(t, "").Register(ctx, api.Register{Username: "dave", Password: "password"})
	check(t, err)
	_, err = env.Client(t, "").Register(ctx, api.Register{Username: "erin", Password: "password"})
	wantCode(t, err, 429, api.CodeRateLimited)

	for range 2 {
		_, err = alice.C.Bundle(ctx, "bob", 0)
		check(t, err)
	}
	_, err = alice.C.Bundle(ctx, "bob", 0)
	wantCode(t, err, 429, api.CodeRateLimited)
	_, err = carol.C.Bundle(ctx, "bob", 0) // another requester has its own bucket
	check(t, err)

	// Size and mailbox limits.
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: make([]byte, 1001)})
	wantCode(t, err, 413, api.CodeTooLarge)
	for range 3 {
		_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), ExpiresIn: 5})
		check(t, err)
	}
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x")})
	wantCode(t, err, 409, api.CodeMailboxFull)

	// The sender's disappearing timer shortens the expiry; expired
	// messages are not delivered, and are deleted.
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("expired message delivered: %+v", f)
	}
	conn.Close()
	if n, err := env.Store.DeleteExpired(ctx, clock().UnixMilli()); err != nil || n != 3 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x")})
	check(t, err)
}

// TestSecretSendCheck covers SendMessage.RecipientIdentity: secret messages
// go only from a secret device to the recipient's current secret device and
// identity key, over HTTP and the WebSocket.
func TestSecretSendCheck(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	bob := env.NewUser(t, "bob", 1)
	alice := env.NewUser(t, "alice", 1)
	carol := env.NewUser(t, "carol", 0) // no secret device
	secret := func(ik *key.IdentityKeyPair) api.SendMessage {
		return api.SendMessage{Type: 3, Content: []byte("x"), RecipientIdentity: ik.Public.Bytes()}
	}
	_, err := alice.C.Send(ctx, "bob", 1, secret(bob.Identity))
	check(t, err)
	_, err = alice.C.Send(ctx, "bob", 1, secret(alice.Identity)) // wrong key
	wantCode(t, err, 409, api.CodeStaleSecretDevice)
	_, err = carol.C.Send(ctx, "bob", 1, secret(bob.Identity)) // sender has no secret device
	wantCode(t, err, 409, api.CodeNotSecretDevice)
	_, err = carol.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x")}) // not secret: no check
	check(t, err)

	// Bob moves his secret device to a laptop with a new identity.
	laptop := env.Client(t, "")
	_, err = laptop.AddDevice(ctx, api.AddDevice{Username: "bob", Password: "password-bob", DeviceName: "laptop"})
	check(t, err)
	ik2 := servertest.NewIdentity(t)
	check(t, laptop.MakeSecret(ctx, api.MakeSecret{RegistrationID: 7, IdentityKey: ik2.Public.Bytes()}))
	_, err = alice.C.Send(ctx, "bob", 1, secret(bob.Identity))
	wantCode(t, err, 409, api.CodeStaleSecretDevice)
	_, err = alice.C.Send(ctx, "bob", 2, secret(bob.Identity))
	wantCode(t, err, 409, api.CodeStaleSecretDevice)
	_, err = alice.C.Send(ctx, "bob", 2, secret(ik2))
	check(t, err)
	// The old device cannot speak in secret conversations any more.
	_, err = bob.C.Send(ctx, "alice", 1, secret(alice.Identity))
	wantCode(t, err, 409, api.CodeNotSecretDevice)
	_, err = laptop.Send(ctx, "alice", 1, secret(alice.Identity))
	check(t, err)

	// The same check on the WebSocket.
	ws, err := alice.C.Connect(ctx)
	check(t, err)
	defer ws.CloseNow()
	check(t, ws.Send(ctx, 9, "bob", 2, secret(bob.Identity)))
	for {
		f, err := ws.Next(ctx)
		check(t, err)
		if f.Type == api.FrameError {
			if f.ReqID != 9 || f.Error.Code != api.CodeStaleSecretDevice {
				t.Fatalf("error frame %+v", f)
			}
			break
		}
		if f.Type == api.FrameSent {
			t.Fatal("stale secret message accepted over the WebSocket")
		}
	}
}

// TestSecretRuleWithoutRecipientIdentity reproduces finding 1 of issue 14:
// dave's old device, no longer his secret device, sent a PreKey message
// without recipientIdentity and the server relayed it. Every message of a
// Signal-protocol type must come from the sender's secret device and go
// to the recipient's, whatever the request carries, over HTTP and the
// WebSocket.
func TestSecretRuleWithoutRecipientIdentity(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	carol := env.NewUser(t, "carol", 1)
	dave := env.NewUser(t, "dave", 1)
	// Dave links device 2 and makes it the secret device.
	d2 := env.Client(t, "")
	cred, err := d2.AddDevice(ctx, api.AddDevice{Username: "dave", Password: "password-dave", DeviceName: "laptop"})
	check(t, err)
	ik2 := servertest.NewIdentity(t)
	check(t, d2.MakeSecret(ctx, api.MakeSecret{RegistrationID: 7, IdentityKey: ik2.Public.Bytes()}))

	for _, typ := range []int32{api.TypePreKey, api.TypeSignal} {
		// The old device, without recipientIdentity.
		_, err = dave.C.Send(ctx, "carol", 1, api.SendMessage{Type: typ, Content: []byte("I am dave")})
		wantCode(t, err, 409, api.CodeNotSecretDevice)
		// A secret message to a device that is not carol's secret device.
		_, err = d2.Send(ctx, "dave", 1, api.SendMessage{Type: typ, Content: []byte("x")})
		wantCode(t, err, 409, api.CodeStaleSecretDevice)
		// The secret device may.
		_, err = d2.Send(ctx, "carol", 1, api.SendMessage{Type: typ, Content: []byte("from the secret device")})
		check(t, err)
	}
	// Carol got only what the secret device sent.
	conn, err := carol.C.Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	for i := range 2 {
		f := servertest.Recv(t, conn, wait)
		if f.Msg == nil || f.Msg.FromDevice != cred.DeviceID || string(f.Msg.Content) != "from the secret device" {
			t.Fatalf("message %d: %+v", i, f)
		}
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("the old device's message was queued: %+v", f.Msg)
	}

	// The same on the WebSocket.
	ws, err := dave.C.Connect(ctx)
	check(t, err)
	defer ws.CloseNow()
	check(t, ws.Send(ctx, 5, "carol", 1, api.SendMessage{Type: api.TypePreKey, Content: []byte("I am dave")}))
	for {
		f, err := ws.Next(ctx)
		check(t, err)
		if f.Type == api.FrameSent {
			t.Fatal("the old device's PreKey message was accepted over the WebSocket")
		}
		if f.Type == api.FrameError {
			if f.ReqID != 5 || f.Error.Code != api.CodeNotSecretDevice {
				t.Fatalf("error frame %+v", f)
			}
			break
		}
	}
}

// TestMessageIDsRevealNothing reproduces finding 3 of issue 14: a blocked
// sender was answered with a random 62-bit id while real ids were small and
// sequential, so it could tell it was blocked, and consecutive ids counted
// the server's traffic. Ids must look alike whether or not the message is
// dropped, and consecutive ids must not reveal how many came between.
func TestMessageIDsRevealNothing(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	mallory := env.NewUser(t, "mallory", 0)
	check(t, alice.C.Block(ctx, "mallory"))
	const n = 200
	send := func(u *servertest.User, k int) []int64 {
		var ids []int64
		for i := range k {
			r, err := u.C.Send(ctx, "alice", 1, api.SendMessage{Type: 1, Content: fmt.Appendf(nil, "%s %d", u.Name, i)})
			check(t, err)
			ids = append(ids, r.ID)
		}
		return ids
	}
	// Interleaved, so that mallory's ids would bracket bob's if either
	// counted.
	var delivered, dropped []int64
	for range 4 {
		delivered = append(delivered, send(bob, n/4)...)
		dropped = append(dropped, send(mallory, n/4)...)
	}
	shape := func(name string, ids []int64) {
		t.Helper()
		high, seen := 0, map[int64]bool{}
		for i, id := range ids {
			if id <= 0 || seen[id] {
				t.Fatalf("%s: id %d is not positive or repeats", name, id)
			}
			seen[id] = true
			if id>>62 == 1 {
				high++ // the top bit of 63 random bits: set half the time
			}
			if i > 0 {
				if d := id - ids[i-1]; d > -1<<40 && d < 1<<40 {
					t.Fatalf("%s: consecutive ids %d and %d are %d apart: they count messages", name, ids[i-1], id, d)
				}
			}
		}
		if high < len(ids)*3/10 || high > len(ids)*7/10 {
			t.Fatalf("%s: %d of %d ids have the top bit set; random 63-bit ids have about half", name, high, len(ids))
		}
	}
	shape("delivered", delivered)
	shape("dropped", dropped)

	// The recipient sees and acknowledges the ids the sender was given.
	conn, err := alice.C.Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	for i, id := range delivered {
		f := servertest.Recv(t, conn, wait)
		if f.Msg == nil || f.Msg.ID != id || f.Msg.From != "bob" {
			t.Fatalf("delivery %d: %+v, want id %d from bob", i, f.Msg, id)
		}
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("a dropped message was delivered: %+v", f.Msg)
	}
	check(t, conn.Ack(ctx, delivered...))
	conn.CloseNow()
	deadline := time.Now().Add(wait)
	for {
		c, err := alice.C.Connect(ctx)
		check(t, err)
		f := servertest.Recv(t, c, wait)
		c.CloseNow()
		if f.Type == api.FrameEmpty {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged messages still delivered: %+v", f.Msg)
		}
	}
}

// TestMailboxFlood reproduces finding 5 of issue 14: one account queued
// 10,000 messages for another in 11 s, after which a legitimate sender got
// mailbox_full. Sends are limited per sender and recipient, one sender
// gets only part of a mailbox, and a block drops what the blocked sender
// queued.
func TestMailboxFlood(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	lim := servertest.Generous
	lim.MessagesPerPair.Rate, lim.MessagesPerPair.Burst = 1, 30
	env := servertest.Start(t, server.Config{Limits: lim, Now: clock, MaxQueue: 50, MaxQueuePerSender: 20})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	mallory := env.NewUser(t, "mallory", 0)
	spam := api.SendMessage{Type: 1, Content: []byte("spam")}

	// Mallory's burst to alice: 20 queued, then her share is used up...
	for range 20 {
		_, err := mallory.C.Send(ctx, "alice", 1, spam)
		check(t, err)
	}
	for range 10 {
		_, err := mallory.C.Send(ctx, "alice", 1, spam)
		wantCode(t, err, 409, api.CodeMailboxFull)
	}
	// ...and her 31st send within the second is over the per-pair limit.
	_, err := mallory.C.Send(ctx, "alice", 1, spam)
	wantCode(t, err, 429, api.CodeRateLimited)
	// Another pair is not limited by mallory's flood.
	_, err = mallory.C.Send(ctx, "bob", 1, spam)
	check(t, err)
	// Bob can still write to alice.
	r, err := bob.C.Send(ctx, "alice", 1, api.SendMessage{Type: 1, Content: []byte("hello alice")})
	check(t, err)

	// Alice blocks mallory: what mallory queued is gone, bob's stays.
	check(t, alice.C.Block(ctx, "mallory"))
	conn, err := alice.C.Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	if f := servertest.Recv(t, conn, wait); f.Msg == nil || f.Msg.ID != r.ID {
		t.Fatalf("first message after the block: %+v, want bob's", f.Msg)
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("a blocked sender's queued message was delivered: %+v", f.Msg)
	}
}

// TestLookupsChargedFirst reproduces finding 6 of issue 14: GET
// /v1/keys/{user} answered 404 for missing users before charging the rate
// limit, and once the budget was spent existing users answered 429 while
// missing ones still answered 404. Every lookup is charged first, on the
// bundle and the directory endpoints.
func TestLookupsChargedFirst(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BundlePerUser.Rate, lim.BundlePerUser.Burst = 1.0/3600, 5
	lim.LookupPerUser.Rate, lim.LookupPerUser.Burst = 1.0/3600, 5
	env := servertest.Start(t, server.Config{Limits: lim})
	env.NewUser(t, "bob", 5)
	eve := env.NewUser(t, "eve", 0)
	for i := range 5 {
		_, err := eve.C.Bundle(ctx, fmt.Sprintf("nobody%d", i), 0)
		wantCode(t, err, 404, api.CodeNotFound)
	}
	_, err := eve.C.Bundle(ctx, "nobody9", 0)
	wantCode(t, err, 429, api.CodeRateLimited)
	_, err = eve.C.Bundle(ctx, "bob", 0)
	wantCode(t, err, 429, api.CodeRateLimited)

	for i := range 5 {
		_, err := eve.C.Directory(ctx, fmt.Sprintf("nobody%d", i))
		wantCode(t, err, 404, api.CodeNotFound)
	}
	_, err = eve.C.Directory(ctx, "nobody9")
	wantCode(t, err, 429, api.CodeRateLimited)
	_, err = eve.C.Directory(ctx, "bob")
	wantCode(t, err, 429, api.CodeRateLimited)
}

// TestPrekeyDrain reproduces finding 7 of issue 14: ten throwaway accounts
// from ten addresses took all of a person's one-time prekeys. Bundle
// fetches are limited per target, whoever asks.
func TestPrekeyDrain(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BundlePerTarget.Rate, lim.BundlePerTarget.Burst = 1.0/3600, 20
	env := servertest.Start(t, server.Config{Limits: lim})
	bob := env.NewUser(t, "bob", 99)
	fetched := 0
	for i := range 10 {
		u := env.NewUser(t, fmt.Sprintf("throwaway%d", i), 0)
		for range 10 {
			if _, err := u.C.Bundle(ctx, "bob", 0); err == nil {
				fetched++
			} else {
				wantCode(t, err, 429, api.CodeRateLimited)
			}
		}
	}
	c, err := bob.C.KeyCounts(ctx)
	check(t, err)
	if fetched != 20 || c.PreKeys != 79 || c.KyberPreKeys != 79 {
		t.Fatalf("%d bundles handed out, %d EC and %d Kyber one-time keys left; want 20, 79, 79", fetched, c.PreKeys, c.KyberPreKeys)
	}
}

// TestKeysLowFrame: a bundle fetch that leaves the secret device fewer
// than api.KeysLowMark one-time keys sends it a keys_low frame, so that
// its client replenishes behind a drain.
func TestKeysLowFrame(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	bob := env.NewUser(t, "bob", api.KeysLowMark+1)
	alice := env.NewUser(t, "alice", 0)
	conn, err := bob.C.Connect(ctx)
	check(t, err)
	defer conn.CloseNow()
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("bob's empty mailbox: %+v", f)
	}
	_, err = alice.C.Bundle(ctx, "bob", 0) // 25 left: not low yet
	check(t, err)
	_, err = alice.C.Bundle(ctx, "bob", 0) // 24 left
	check(t, err)
	r, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("after")})
	check(t, err)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got []string
	for len(got) < 2 {
		f, err := conn.Next(rctx)
		check(t, err)
		got = append(got, f.Type)
		if f.Type == api.FrameMessage && f.Msg.ID != r.ID {
			t.Fatalf("unexpected message %+v", f.Msg)
		}
	}
	if got[0] != api.FrameKeysLow || got[1] != api.FrameMessage {
		t.Fatalf("frames %v, want one keys_low (after the second fetch only), then the message", got)
	}
}
