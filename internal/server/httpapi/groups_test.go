package httpapi_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
)

// Tests of group sends, POST /v1/groups/messages (issue 10, docs/api.md).

// members lists every device of each person, less the sending device
// (from's device except).
func members(except uint32, from *person, ps ...*person) []api.GroupDevice {
	var out []api.GroupDevice
	for _, p := range ps {
		for i := range p.devs {
			if d := uint32(i + 1); p != from || d != except {
				out = append(out, api.GroupDevice{Username: p.name, Device: d})
			}
		}
	}
	return out
}

// pending returns what is queued for device d of p.
func pending(t *testing.T, env *servertest.Env, p *person, d uint32) []*store.Message {
	t.Helper()
	check(t, env.Store.Unblock(t.Context(), 0, 0)) // after lazy acks
	ms, err := env.Store.Pending(t.Context(), store.DeviceRef{Account: p.id, Device: d}, 0, 0, 100)
	check(t, err)
	return ms
}

func queueDepth(t *testing.T, env *servertest.Env) int64 {
	t.Helper()
	check(t, env.Store.Unblock(t.Context(), 0, 0))
	n, err := env.Store.QueueDepth(t.Context())
	check(t, err)
	return n
}

func TestGroupSend(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	dave := newPerson(t, env, "dave", 1, 1)
	check(t, dave.devs[0].Block(ctx, "alice"))
	// A device without ordinary keys is no member device.
	b3 := env.Client(t, "")
	_, err := b3.AddDevice(ctx, api.AddDevice{Username: "bob", Password: "password-bob"})
	check(t, err)

	content := []byte("one SenderKeyMessage")
	hist := []api.HistoryRecord{{ID: bytes.Repeat([]byte{7}, 16), Blob: []byte("alice's record")}}
	send := api.GroupSend{Devices: members(1, alice, bob, carol, dave, alice), Type: api.TypeSenderKey, Content: content, ExpiresIn: 3600, History: hist}
	res, err := alice.devs[0].SendGroup(ctx, send)
	check(t, err)
	if res.Timestamp == 0 {
		t.Fatalf("result %+v", res)
	}
	// Every member device but the blocking one's gets the one content,
	// over the WebSocket like any message.
	for _, c := range []struct {
		p *person
		d uint32
	}{{bob, 1}, {bob, 2}, {carol, 1}, {alice, 2}} {
		conn, err := c.p.devs[c.d-1].Connect(ctx)
		check(t, err)
		f := servertest.Recv(t, conn, wait)
		if m := f.Msg; m == nil || !bytes.Equal(m.Content, content) || m.From != "alice" || m.FromDevice != 1 || m.Type != api.TypeSenderKey ||
			m.Timestamp != res.Timestamp || m.ExpiresAt-m.Timestamp != 3600*1000 || m.ID == 0 {
			t.Fatalf("%s %d: %+v %+v", c.p.name, c.d, f, f.Msg)
		}
		check(t, conn.Ack(ctx, f.Msg.ID))
		conn.Close()
	}
	if ms := pending(t, env, dave, 1); len(ms) != 0 {
		t.Fatalf("dave blocks alice, has %d messages", len(ms))
	}
	if n := queueDepth(t, env); n != 0 {
		t.Fatalf("%d messages left after acks", n)
	}
	page, err := alice.devs[1].History(ctx, 0, 0)
	check(t, err)
	if len(page.Records) != 1 || string(page.Records[0].Blob) != "alice's record" {
		t.Fatalf("history %+v", page)
	}

	// Lists that are not current: 409 with every difference, as an
	// ordinary send, and nothing stored (nor the history record).
	hist2 := []api.HistoryRecord{{ID: bytes.Repeat([]byte{8}, 16), Blob: []byte("not kept")}}
	for _, tc := range []struct {
		devices []api.GroupDevice
		want    []api.Mismatch
	}{
		{members(1, alice, bob, carol), []api.Mismatch{{Username: "alice", Missing: []uint32{2}}}},
		{append(members(1, alice, carol, alice), api.GroupDevice{Username: "bob", Device: 2}), []api.Mismatch{{Username: "bob", Missing: []uint32{1}}}},
		{append(members(1, alice, carol, alice, bob), api.GroupDevice{Username: "bob", Device: 3}, api.GroupDevice{Username: "carol", Device: 9}),
			[]api.Mismatch{{Username: "carol", Extra: []uint32{9}}, {Username: "bob", Extra: []uint32{3}}}},
		// A blocking account's list is checked all the same.
		{append(members(1, alice, alice), api.GroupDevice{Username: "dave", Device: 2}), []api.Mismatch{{Username: "dave", Missing: []uint32{1}, Extra: []uint32{2}}}},
	} {
		_, err := alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: tc.devices, Type: api.TypeSenderKey, Content: content, History: hist2})
		wantMismatch(t, err, tc.want...)
	}
	if n := queueDepth(t, env); n != 0 {
		t.Fatalf("refused sends stored %d messages", n)
	}
	if page, err := alice.devs[1].History(ctx, 0, 0); err != nil || len(page.Records) != 1 {
		t.Fatalf("history after refused sends %+v %v", page, err)
	}
	// A device removed: extra; the sender alone on its account may
	// leave it out.
	check(t, alice.devs[0].RemoveDevice(ctx, 2))
	_, err = alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(1, alice, carol, alice), Type: api.TypeSenderKey, Content: content})
	wantMismatch(t, err, api.Mismatch{Username: "alice", Extra: []uint32{2}})
	_, err = alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(1, alice, carol), Type: api.TypeSenderKey, Content: content})
	check(t, err)
	if ms := pending(t, env, carol, 1); len(ms) != 1 {
		t.Fatalf("carol has %d messages", len(ms))
	}
}

// TestGroupSendBadInput: every malformed request is refused with a clear
// error and stores nothing.
func TestGroupSendBadInput(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BytesPerDev = ratelimit.Limit{Rate: 1e12, Burst: 1e12} // the largest request is charged 1 GiB
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	ok := func() api.GroupSend {
		return api.GroupSend{Devices: members(1, alice, alice, bob), Type: api.TypeSenderKey, Content: []byte("c")}
	}
	many := make([]api.GroupDevice, api.MaxGroupDevices+1)
	for i := range many {
		many[i] = api.GroupDevice{Username: fmt.Sprintf("u%d", i), Device: 1}
	}
	for _, tc := range []struct {
		what   string
		edit   func(s *api.GroupSend)
		status int
		code   string
	}{
		{"no devices", func(s *api.GroupSend) { s.Devices = nil }, 400, api.CodeBadRequest},
		{"too many devices", func(s *api.GroupSend) { s.Devices = many }, 400, api.CodeBadRequest},
		{"a whisper type", func(s *api.GroupSend) { s.Type = 1 }, 400, api.CodeBadRequest},
		{"an ordinary type", func(s *api.GroupSend) { s.Type = api.TypeOrdinarySignal }, 400, api.CodeBadRequest},
		{"no content", func(s *api.GroupSend) { s.Content = nil }, 400, api.CodeBadRequest},
		{"content too large", func(s *api.GroupSend) { s.Content = make([]byte, api.MaxContentBytes+1) }, 413, api.CodeTooLarge},
		{"negative expiry", func(s *api.GroupSend) { s.ExpiresIn = -1 }, 400, api.CodeBadRequest},
		{"a franking commitment of 31 bytes", func(s *api.GroupSend) { s.Commitment = make([]byte, 31) }, 400, api.CodeBadRequest},
		{"an unknown blob", func(s *api.GroupSend) { s.Blobs = []string{"AAAAAAAAAAAAAAAAAAAAAA"} }, 404, api.CodeNotFound},
		{"a blob twice", func(s *api.GroupSend) { s.Blobs = []string{"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA"} }, 400, api.CodeBadRequest},
		{"a duplicate", func(s *api.GroupSend) { s.Devices = append(s.Devices, s.Devices[1]) }, 400, api.CodeBadRequest},
		{"the sending device", func(s *api.GroupSend) { s.Devices = append(s.Devices, api.GroupDevice{Username: "alice", Device: 1}) }, 400, api.CodeBadRequest},
		{"device 0", func(s *api.GroupSend) { s.Devices = append(s.Devices, api.GroupDevice{Username: "bob", Device: 0}) }, 400, api.CodeBadRequest},
		{"17 devices of one account", func(s *api.GroupSend) {
			for d := range uint32(17) {
				s.Devices = append(s.Devices, api.GroupDevice{Username: "carol", Device: d + 1})
			}
		}, 400, api.CodeBadRequest},
		{"an unknown user", func(s *api.GroupSend) { s.Devices = append(s.Devices, api.GroupDevice{Username: "nobody", Device: 1}) }, 404, api.CodeNotFound},
		{"a user name with control characters", func(s *api.GroupSend) {
			s.Devices = append(s.Devices, api.GroupDevice{Username: "bob\x1b[2J", Device: 1})
		}, 404, api.CodeNotFound},
		{"a bad history record", func(s *api.GroupSend) { s.History = []api.HistoryRecord{{ID: make([]byte, 15), Blob: []byte("b")}} }, 400, api.CodeBadRequest},
	} {
		s := ok()
		tc.edit(&s)
		_, err := alice.devs[0].SendGroup(ctx, s)
		wantCode(t, err, tc.status, tc.code)
		if e := err.(*apiclient.Error); strings.ContainsAny(e.Message, "\x1b\x00") {
			t.Errorf("%s: error message %q carries control characters", tc.what, e.Message)
		}
	}
	if n := queueDepth(t, env); n != 0 {
		t.Fatalf("refused sends stored %d messages", n)
	}
	// The largest request fits in a body: MaxGroupDevices devices with
	// long names and a content of the most bytes.
	big := make([]api.GroupDevice, api.MaxGroupDevices)
	for i := range big {
		big[i] = api.GroupDevice{Username: fmt.Sprintf("%031d", i), Device: 16}
	}
	_, err := alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: big, Type: api.TypeSenderKey, Content: make([]byte, api.MaxContentBytes)})
	wantCode(t, err, 404, api.CodeNotFound) // read and checked, not too large
	_, err = alice.devs[0].SendGroup(ctx, ok())
	check(t, err)
}

// TestGroupSendLimits: a group send is charged once per recipient device
// (copies, and their bytes), once per recipient account as any send, and
// device_mismatch answers as directory lookups.
func TestGroupSendLimits(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.GroupCopiesPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 7}
	lim.LookupPerUser = ratelimit.Limit{Rate: 1e-9, Burst: 2}
	env := servertest.Start(t, server.Config{Limits: lim})
	mallory := newPerson(t, env, "mallory", 1, 1)
	var victims []*person
	for i := range 4 {
		victims = append(victims, newPerson(t, env, fmt.Sprintf("victim%d", i), 2, 1))
	}
	// Flooding: 4 copies, then 4 more do not fit in the 3 left.
	_, err := mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(0, nil, victims[0], victims[1]), Type: api.TypeSenderKey, Content: []byte("x")})
	check(t, err)
	_, err = mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(0, nil, victims[2], victims[3]), Type: api.TypeSenderKey, Content: []byte("x")})
	wantCode(t, err, 429, api.CodeRateLimited)
	if n := queueDepth(t, env); n != 4 {
		t.Fatalf("%d messages queued, want 4", n)
	}
	// Enumeration: naming device 1 of each victim would list the others in
	// the mismatch answer; two lookups, then 429.
	for i := range 3 {
		_, err := mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: []api.GroupDevice{{Username: victims[i].name, Device: 1}}, Type: api.TypeSenderKey, Content: []byte("x")})
		if i < 2 {
			wantMismatch(t, err, api.Mismatch{Username: victims[i].name, Missing: []uint32{2}})
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}

	// Bytes are charged per copy too.
	lim = servertest.Generous
	lim.BytesPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 1000}
	env = servertest.Start(t, server.Config{Limits: lim})
	mallory = newPerson(t, env, "mallory", 1, 1)
	victim := newPerson(t, env, "victim", 4, 1)
	_, err = mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(0, nil, victim), Type: api.TypeSenderKey, Content: make([]byte, 251)})
	wantCode(t, err, 429, api.CodeRateLimited)
	_, err = mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(0, nil, victim), Type: api.TypeSenderKey, Content: make([]byte, 250)})
	check(t, err)

	// The default burst holds the largest request, twice; not three times.
	lim = servertest.Generous
	lim.GroupCopiesPerDev = server.DefaultLimits.GroupCopiesPerDev
	lim.GroupCopiesPerDev.Rate = 1e-9
	env = servertest.Start(t, server.Config{Limits: lim})
	mallory = newPerson(t, env, "mallory", 1, 1)
	big := make([]api.GroupDevice, api.MaxGroupDevices)
	for i := range big {
		big[i] = api.GroupDevice{Username: fmt.Sprintf("nobody%d", i), Device: 1}
	}
	for i := range 3 {
		_, err := mallory.devs[0].SendGroup(ctx, api.GroupSend{Devices: big, Type: api.TypeSenderKey, Content: []byte("x")})
		if i < 2 {
			wantCode(t, err, 404, api.CodeNotFound) // charged before the names are looked up
		} else {
			wantCode(t, err, 429, api.CodeRateLimited)
		}
	}
}

// TestGroupSendFull: a full mailbox is skipped, never a failure of the
// send: one member who never reads does not stop the group.
func TestGroupSendFull(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxQueue: 4, MaxQueuePerSender: 2})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	for i := range 3 {
		_, err := alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(1, alice, bob, carol), Type: api.TypeSenderKey, Content: []byte{byte(i)}})
		check(t, err)
		if i == 1 {
			ms := pending(t, env, carol, 1)
			ids := make([]int64, len(ms))
			for j, m := range ms {
				ids[j] = m.PublicID
			}
			check(t, env.Store.Ack(ctx, store.DeviceRef{Account: carol.id, Device: 1}, ids))
		}
	}
	if b, c := pending(t, env, bob, 1), pending(t, env, carol, 1); len(b) != 2 || len(c) != 1 || c[0].Content[0] != 2 {
		t.Fatalf("bob has %d, carol %d messages", len(b), len(c))
	}
}

// FuzzDecodeGroupSend feeds arbitrary bytes to the decoder of
// POST /v1/groups/messages.
func FuzzDecodeGroupSend(f *testing.F) {
	for _, s := range []string{
		`{"devices":[{"username":"bob","device":1},{"username":"alice","device":2}],"type":7,"content":"aGk=","expiresIn":60}`,
		`{"devices":[{"username":"bob","device":1}],"type":7,"content":"aGk=","history":[{"id":"AAAAAAAAAAAAAAAAAAAAAA==","blob":"aGk="}]}`,
		`{"devices":[],"type":7,"content":"aGk=","frankingCommitment":"aGk=","blobs":["AAAAAAAAAAAAAAAAAAAAAA"]}`,
		`{"devices":[{"username":"bob","device":-1}]}`, `{"devices":null}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip[api.GroupSend](t, b)
	})
}
