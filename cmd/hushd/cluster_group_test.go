package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestClusterGroupSend: a group send committed by one node reaches members
// connected to the other nodes (woken over NATS: the nodes poll once an
// hour), each copy once.
func TestClusterGroupSend(t *testing.T) {
	nats := startNATS(t, 0)
	env := newClusterEnv(t, nats)
	nodes := []*proc{env.node(t, "127.0.0.1:0"), env.node(t, "127.0.0.1:0"), env.node(t, "127.0.0.1:0")}
	ctx := t.Context()
	client := func(i int, cred string) *apiclient.Client {
		c, err := apiclient.New(nodes[i%3].url, apiclient.Options{Fingerprint: nodes[0].fingerprint, Credential: cred, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	register := func(i int, name string) *apiclient.Client {
		c := client(i, "")
		cred, err := c.Register(ctx, api.Register{Username: name, Password: "password1"})
		if err != nil {
			t.Fatal(err)
		}
		return client(i, cred.Credential)
	}
	sender := register(0, "sender")
	var devices []api.GroupDevice
	var conns []*apiclient.Conn
	for i := range 3 {
		name := fmt.Sprint("member", i)
		c := register(i, name)
		ik := servertest.NewIdentity(t)
		if err := c.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: ik.Public.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if err := c.UploadOrdinaryKeys(ctx, servertest.OrdinaryKeys(t, ik, uint32(i+1), 1, 0)); err != nil {
			t.Fatal(err)
		}
		conn, err := c.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		if f := servertest.Recv(t, conn, 20*time.Second); f.Type != api.FrameEmpty {
			t.Fatalf("first frame %+v", f)
		}
		conns = append(conns, conn)
		devices = append(devices, api.GroupDevice{Username: name, Device: 1})
	}
	content := []byte("to the group, across nodes")
	if _, err := sender.SendGroup(ctx, api.GroupSend{Devices: devices, Type: api.TypeSenderKey, Content: content}); err != nil {
		t.Fatal(err)
	}
	for i, conn := range conns {
		f := servertest.Recv(t, conn, 30*time.Second)
		if m := f.Msg; m == nil || !bytes.Equal(m.Content, content) || m.From != "sender" || m.Type != api.TypeSenderKey {
			t.Fatalf("member %d (node %d): %+v", i, i, f)
		}
		if err := conn.Ack(ctx, f.Msg.ID); err != nil {
			t.Fatal(err)
		}
		// Nothing else comes: one copy.
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		for {
			f, err := conn.Next(c)
			if err != nil {
				break
			}
			if f.Type == api.FrameMessage {
				t.Errorf("member %d got a second message %+v", i, f.Msg)
			}
		}
		cancel()
	}
}
