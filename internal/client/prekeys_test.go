package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestPreKeys: registration uploads keys; used one-time keys are deleted;
// when the server runs low a new set goes up and the old one is kept for
// messages in flight; signed and last-resort keys rotate; retired keys go
// after their time.
func TestPreKeys(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	o := client.Options{PreKeys: 10, PreKeysLow: 5, RotateEvery: time.Hour, KeepRetired: time.Hour}
	home := filepath.Join(t.TempDir(), "bob")
	bob, err := client.Register(ctx, home, client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint, Username: "bob", Password: "password-bob"}, o)
	check(t, err)
	defer func() { bob.Close() }()
	counts := func() map[int][2]int {
		c, err := bob.Store().Read().PreKeyCounts(ctx)
		check(t, err)
		return c
	}
	server := func() (int, int, uint32) {
		bc := env.Client(t, bob.Account().Credential)
		kc, err := bc.KeyCounts(ctx)
		check(t, err)
		return kc.PreKeys, kc.KyberPreKeys, *kc.SignedPreKeyID
	}
	if ec, kem, _ := server(); ec != 10 || kem != 10 {
		t.Fatalf("server has %d EC and %d Kyber keys after registration", ec, kem)
	}
	c := counts()
	if c[store.OneTimeEC][0] != 10 || c[store.OneTimeKyber][0] != 10 || c[store.Signed][0] != 1 || c[store.LastResortKyber][0] != 1 {
		t.Fatalf("local keys after registration: %v", c)
	}

	// Alice's first message uses one key of each kind, which bob deletes.
	alice := register(t, env, "alice")
	alice.send(t, "bob", "one", 0)
	got, err := recvAll(ctx, bob)
	check(t, err)
	wantTexts(t, got, "one")
	if c := counts(); c[store.OneTimeEC][0] != 9 || c[store.OneTimeKyber][0] != 9 {
		t.Fatalf("local keys after a PreKey message: %v", c)
	}

	// Others fetch bundles until the server runs low.
	other := env.NewUser(t, "carol", 0)
	for range 5 {
		_, err := other.C.Bundle(ctx, "bob", 0)
		check(t, err)
	}
	rep, err := bob.MaintainKeys(ctx, true)
	check(t, err)
	if rep.UploadedEC != 10 || rep.UploadedKEM != 10 || rep.Rotated {
		t.Fatalf("maintenance: %+v", rep)
	}
	if ec, kem, _ := server(); ec != 10 || kem != 10 {
		t.Fatalf("server has %d EC and %d Kyber keys after the refill", ec, kem)
	}
	if c := counts(); c[store.OneTimeEC] != [2]int{10, 9} || c[store.OneTimeKyber] != [2]int{10, 9} {
		t.Fatalf("local keys after the refill (current, retired): %v", c)
	}
	// Nothing to do now.
	if rep, err := bob.MaintainKeys(ctx, true); err != nil || rep.UploadedEC+rep.UploadedKEM != 0 || rep.Rotated {
		t.Fatalf("second maintenance: %+v %v", rep, err)
	}

	// Rotation: a new signed and last-resort key; a message started from
	// the old bundle still decrypts.
	dave := register(t, env, "dave")
	check(t, bob.Close())
	_, _, spk := server()
	bob, err = client.Open(ctx, home, client.Options{PreKeys: 10, PreKeysLow: 5, RotateEvery: time.Nanosecond, KeepRetired: time.Hour})
	check(t, err)
	// Dave's first message, a PreKey message on the signed and Kyber keys
	// of now, reaches bob only after they are replaced.
	dave.send(t, "bob", "hello before rotation", 0)
	rep, err = bob.MaintainKeys(ctx, true)
	check(t, err)
	if !rep.Rotated {
		t.Fatalf("no rotation: %+v", rep)
	}
	if _, _, spk2 := server(); spk2 == spk {
		t.Fatal("the server's signed prekey did not change")
	}
	if c := counts(); c[store.Signed] != [2]int{1, 1} || c[store.LastResortKyber] != [2]int{1, 1} {
		t.Fatalf("local signed/last-resort keys after rotation: %v", c)
	}
	got, err = recvAll(ctx, bob)
	check(t, err)
	wantTexts(t, got, "hello before rotation")

	// Retired keys go once they are old enough.
	check(t, bob.Close())
	bob, err = client.Open(ctx, home, client.Options{PreKeys: 10, PreKeysLow: 5, RotateEvery: time.Hour, KeepRetired: time.Nanosecond})
	check(t, err)
	_, err = bob.MaintainKeys(ctx, true)
	check(t, err)
	c = counts()
	for kind, n := range c {
		if n[1] != 0 {
			t.Fatalf("retired keys of kind %d left: %v", kind, c)
		}
	}
}

func recvAll(ctx context.Context, c *client.Client) ([]*store.Message, error) {
	var got []*store.Message
	err := c.Receive(ctx, client.ReceiveOptions{Wait: 5 * time.Second, Handle: func(m *store.Message) {
		got = append(got, m)
		c.MarkShown(ctx, m.ID)
	}})
	return got, err
}

// TestKeysLowReplenishes: when bundle fetches leave bob's one-time keys
// low, the server tells his listening client, which uploads more at once
// (not at its next periodic check, an hour away here).
func TestKeysLowReplenishes(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	o := client.Options{PreKeys: 10, PreKeysLow: 5, RotateEvery: time.Hour, KeepRetired: time.Hour, CheckKeysEvery: time.Hour}
	bob, err := client.Register(ctx, filepath.Join(t.TempDir(), "bob"),
		client.RegisterParams{Server: env.URL, Fingerprint: env.Fingerprint, Username: "bob", Password: "password-bob"}, o)
	check(t, err)
	defer bob.Close()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connected := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- bob.Receive(lctx, client.ReceiveOptions{Follow: true, Handle: func(*store.Message) {},
			Connected: func() { connected <- struct{}{} }})
	}()
	select {
	case <-connected:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("bob's client did not connect")
	}
	bc := env.Client(t, bob.Account().Credential)
	carol := env.NewUser(t, "carol", 0)
	for range 6 { // 10 keys, low below 5
		_, err := carol.C.Bundle(ctx, "bob", 0)
		check(t, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		kc, err := bc.KeyCounts(ctx)
		check(t, err)
		if kc.PreKeys >= 5 && kc.KyberPreKeys >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's client did not replenish: %d EC, %d Kyber on the server", kc.PreKeys, kc.KyberPreKeys)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
