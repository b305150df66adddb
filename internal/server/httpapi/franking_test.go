package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
)

// Tests of message franking and abuse reports (docs/franking.md).

// opening is what a sender makes of one franked message and a recipient
// keeps to report it.
type opening struct {
	pt, key, commitment []byte
	// ct stands for the ciphertext a client would send: opaque bytes
	// that do not hold pt or key, as the server sees them.
	ct []byte
}

func frank(t *testing.T, body string) opening {
	t.Helper()
	k := franking.NewKey()
	m := &content.Message{ID: content.NewID(), SentAt: time.UnixMilli(1764100000000), Body: body, FrankingKey: k[:]}
	pt, err := m.Marshal()
	check(t, err)
	c := franking.Commit(k[:], pt)
	ct := franking.NewKey()
	return opening{pt, k[:], c[:], ct[:]}
}

// receive reads the next n messages of c's mailbox on one connection
// and acknowledges them. (A new connection may see again what an
// acknowledgement deletes lazily.)
func receive(t *testing.T, c *apiclient.Client, n int) []*api.Message {
	t.Helper()
	conn, err := c.Connect(t.Context())
	check(t, err)
	defer conn.Close()
	var out []*api.Message
	for len(out) < n {
		f := servertest.Recv(t, conn, wait)
		if f.Msg == nil {
			continue // "empty": more may come
		}
		check(t, conn.Ack(t.Context(), f.Msg.ID))
		out = append(out, f.Msg)
	}
	return out
}

// reported is the ReportedMessage for m, delivered to device toDevice,
// opened with o.
func reported(m *api.Message, toDevice uint32, o opening) api.ReportedMessage {
	return api.ReportedMessage{From: m.From, FromDevice: m.FromDevice, ToDevice: toDevice, Timestamp: m.Timestamp,
		Franking: *m.Franking, FrankingKey: o.key, Content: o.pt}
}

func clone(r api.ReportedMessage) api.ReportedMessage {
	r.Franking.Commitment = bytes.Clone(r.Franking.Commitment)
	r.Franking.Tag = bytes.Clone(r.Franking.Tag)
	r.FrankingKey = bytes.Clone(r.FrankingKey)
	r.Content = bytes.Clone(r.Content)
	return r
}

// TestFrankingReports: a franked message is delivered with its tag; its
// recipient can report it, once; nobody can get a report accepted for
// text the sender did not send, or for a message that was not theirs.
func TestFrankingReports(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	ring := franking.NewKeyring()
	env := servertest.StartIn(t, server.Config{Limits: servertest.Generous, Franking: ring}, dir)
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	carol := env.NewUser(t, "carol", 0)

	const canary = "canary-4f1e9a a message only bob may see"
	o1, o2 := frank(t, canary), frank(t, "second")
	_, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: o1.ct, Commitment: o1.commitment})
	check(t, err)
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: o2.ct, Commitment: o2.commitment})
	check(t, err)
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("not franked")})
	check(t, err)
	oc := frank(t, "to carol")
	_, err = alice.C.Send(ctx, "carol", 1, api.SendMessage{Type: 1, Content: oc.ct, Commitment: oc.commitment})
	check(t, err)

	// What the server folder holds of unreported messages: neither
	// their text nor their franking keys (cmd/hush's end-to-end test
	// checks it with real ciphertexts).
	check(t, env.Store.Unblock(ctx, 0, 0)) // a write: what came before is committed
	for _, secret := range [][]byte{o1.key, o2.key, oc.key, []byte("canary-4f1e9a")} {
		if f := grepDir(t, dir, secret); f != "" {
			t.Fatalf("a franking key is in the server's %s", f)
		}
	}

	ms := receive(t, bob.C, 3)
	m1, m2 := ms[0], ms[1]
	if plain := ms[2]; plain.Franking != nil {
		t.Fatalf("an unfranked message was delivered with %+v", plain.Franking)
	}
	mc := receive(t, carol.C, 1)[0]
	if m1.Franking == nil || !bytes.Equal(m1.Franking.Commitment, o1.commitment) || len(m1.Franking.Tag) != api.FrankingTagSize || m1.Franking.KeyID != 1 {
		t.Fatalf("delivered franking %+v", m1.Franking)
	}
	r1, r2 := reported(m1, 1, o1), reported(m2, 1, o2)

	refusedWith := func(t *testing.T, c *apiclient.Client, r api.Report, want string) {
		t.Helper()
		_, err := c.Report(ctx, r)
		wantCode(t, err, 422, api.CodeReportRefused)
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refused with %v, want %q", err, want)
		}
	}
	report := func(ms ...api.ReportedMessage) api.Report { return api.Report{Reason: "spam", Messages: ms} }

	// What a recipient cannot get accepted.
	for _, c := range []struct {
		name string
		by   *apiclient.Client
		m    func() api.ReportedMessage
		want string
	}{
		{"altered text", bob.C, func() api.ReportedMessage {
			r := clone(r1)
			cm, err := content.Parse(r.Content)
			check(t, err)
			cm.Body = strings.Replace(cm.Body, "only bob", "ONLY bob", 1)
			r.Content, err = cm.Marshal()
			check(t, err)
			return r
		}, "do not open the commitment"},
		{"altered byte", bob.C, func() api.ReportedMessage { r := clone(r1); r.Content[20] ^= 1; return r }, "do not open the commitment"},
		{"another franking key", bob.C, func() api.ReportedMessage { r := clone(r1); r.FrankingKey = o2.key; return r }, "do not open the commitment"},
		{"altered commitment (text and key of its own)", bob.C, func() api.ReportedMessage {
			o := frank(t, "words alice never sent")
			r := clone(r1)
			r.Content, r.FrankingKey, r.Franking.Commitment = o.pt, o.key, o.commitment
			return r
		}, "tag does not verify"},
		{"another message's tag", bob.C, func() api.ReportedMessage { r := clone(r1); r.Franking.Tag = m2.Franking.Tag; return r }, "tag does not verify"},
		{"altered tag", bob.C, func() api.ReportedMessage { r := clone(r1); r.Franking.Tag[0] ^= 1; return r }, "tag does not verify"},
		{"another sender", bob.C, func() api.ReportedMessage { r := clone(r1); r.From = "carol"; return r }, "tag does not verify"},
		{"another sending device", bob.C, func() api.ReportedMessage { r := clone(r1); r.FromDevice = 2; return r }, "tag does not verify"},
		{"another receiving device", bob.C, func() api.ReportedMessage { r := clone(r1); r.ToDevice = 2; return r }, "tag does not verify"},
		{"another time", bob.C, func() api.ReportedMessage { r := clone(r1); r.Timestamp--; return r }, "tag does not verify"},
		{"an unknown key id", bob.C, func() api.ReportedMessage { r := clone(r1); r.Franking.KeyID = 7; return r }, "no franking key 7"},
		{"another recipient's message", carol.C, func() api.ReportedMessage { return clone(r1) }, "tag does not verify"},
		{"bob reporting carol's message", bob.C, func() api.ReportedMessage { return reported(mc, 1, oc) }, "tag does not verify"},
	} {
		t.Run(c.name, func(t *testing.T) { refusedWith(t, c.by, report(c.m()), c.want) })
	}
	// A commitment that opens, but with a key that is not the content's:
	// the sender's client never makes it, and the recipient's drops it.
	k := franking.NewKey()
	other := &content.Message{ID: content.NewID(), SentAt: time.UnixMilli(1), Body: "key elsewhere", FrankingKey: k[:]}
	pt, err := other.Marshal()
	check(t, err)
	k2 := franking.NewKey()
	c2 := franking.Commit(k2[:], pt)
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("opaque"), Commitment: c2[:]})
	check(t, err)
	mk := receive(t, bob.C, 1)[0]
	refusedWith(t, bob.C, report(reported(mk, 1, opening{pt: pt, key: k2[:], commitment: c2[:]})), "does not carry its franking key")

	// The real thing, with a message before it as context: accepted, kept.
	res, err := bob.C.Report(ctx, report(r2, r1))
	check(t, err)
	st, err := env.Store.Report(ctx, res.ID)
	check(t, err)
	sr, err := server.ParseStoredReport(st.Body)
	check(t, err)
	if sr.Reporter != "bob" || sr.ReporterDevice != 1 || sr.Reason != "spam" || len(sr.Messages) != 2 ||
		!bytes.Equal(sr.Messages[1].Content, o1.pt) || !bytes.Equal(st.Tag, m2.Franking.Tag) {
		t.Fatalf("stored report %+v", sr)
	}
	// Once only; the context message may be reported on its own.
	refusedWith(t, bob.C, report(r2), "reported already")
	_, err = bob.C.Report(ctx, report(r1))
	check(t, err)
	refusedWith(t, bob.C, report(r1, r2), "reported already")

	// After a rotation, new messages carry the new key's id, and old ones
	// still verify.
	ring = ring.Rotated(time.Now())
	env.Server.SetFrankingKeys(ring)
	o3 := frank(t, "after rotation")
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: o3.ct, Commitment: o3.commitment})
	check(t, err)
	m3 := receive(t, bob.C, 1)[0]
	if m3.Franking.KeyID != 2 {
		t.Fatalf("after a rotation the key id is %d", m3.Franking.KeyID)
	}
	_, err = carol.C.Report(ctx, report(reported(mc, 1, oc)))
	check(t, err)
	// A keyring that lost key 1 (another server's): refused.
	env.Server.SetFrankingKeys(franking.NewKeyring())
	r3 := reported(m3, 1, o3)
	refusedWith(t, bob.C, report(r3), "no franking key 2")
	env.Server.SetFrankingKeys(ring)
	_, err = bob.C.Report(ctx, report(reported(m3, 1, o3)))
	check(t, err)
}

// TestReportRefusals: malformed reports are 400s that store nothing;
// reports are rate-limited per account, forged ones included.
func TestReportRefusals(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.ReportsPerUser = ratelimit.Limit{Rate: 1e-9, Burst: 40}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	o := frank(t, "x")
	_, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: o.ct, Commitment: o.commitment})
	check(t, err)
	good := reported(receive(t, bob.C, 1)[0], 1, o)
	many := make([]api.ReportedMessage, api.MaxReportMessages+1)
	for i := range many {
		many[i] = clone(good)
		many[i].Franking.Tag[0] = byte(i)
	}
	for name, r := range map[string]api.Report{
		"no messages":        {},
		"too many messages":  {Messages: many},
		"long reason":        {Reason: strings.Repeat("x", api.MaxReportReasonLen+1), Messages: []api.ReportedMessage{good}},
		"control characters": {Reason: "see \x1b[2Jhere", Messages: []api.ReportedMessage{good}},
		"bidi override":      {Reason: "see \u202ehere", Messages: []api.ReportedMessage{good}},
		"newline":            {Reason: "a\nb", Messages: []api.ReportedMessage{good}},
		"not a username":     {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.From = "Alice\x00"; return r }()}},
		"two senders": {Messages: []api.ReportedMessage{good, func() api.ReportedMessage {
			r := clone(good)
			r.From, r.Franking.Tag[0] = "carol", r.Franking.Tag[0]+1
			return r
		}()}},
		"a message twice":  {Messages: []api.ReportedMessage{good, good}},
		"short key":        {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.FrankingKey = r.FrankingKey[:31]; return r }()}},
		"short tag":        {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.Franking.Tag = r.Franking.Tag[:31]; return r }()}},
		"short commitment": {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.Franking.Commitment = nil; return r }()}},
		"no content":       {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.Content = nil; return r }()}},
		"no device":        {Messages: []api.ReportedMessage{func() api.ReportedMessage { r := clone(good); r.ToDevice = 0; return r }()}},
	} {
		_, err := bob.C.Report(ctx, r)
		if e, ok := err.(*apiclient.Error); !ok || e.Status != http.StatusBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if rs, err := env.Store.Reports(ctx, 0, 10); err != nil || len(rs) != 0 {
		t.Fatalf("refused reports stored %v %v", rs, err)
	}
	// Flooding with forgeries: refused, then rate-limited.
	forged := clone(good)
	forged.Franking.Tag[0] ^= 1
	limited := false
	for range 60 {
		_, err := bob.C.Report(ctx, api.Report{Messages: []api.ReportedMessage{forged}})
		if e, ok := err.(*apiclient.Error); ok && e.Code == api.CodeRateLimited {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("60 reports at once were not rate-limited")
	}
	_, err = bob.C.Report(ctx, api.Report{Messages: []api.ReportedMessage{good}})
	wantCode(t, err, 429, api.CodeRateLimited)
	// A commitment of the wrong size is refused on sending.
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: o.ct, Commitment: o.commitment[:31]})
	wantCode(t, err, 400, api.CodeBadRequest)
}

// TestOrdinaryFranking: each device copy of an ordinary send gets a tag of
// its own device, and only that device's report verifies it.
func TestOrdinaryFranking(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	o := frank(t, "to both of bob's devices")
	rc := bob.to(0, 13, "")
	for i := range rc.Devices {
		rc.Devices[i].Content, rc.Devices[i].Commitment = []byte(fmt.Sprint("copy ", i)), o.commitment
	}
	_, err := alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{rc, alice.to(1, 13, "sync")}})
	check(t, err)
	m1, m2 := receive(t, bob.devs[0], 1)[0], receive(t, bob.devs[1], 1)[0]
	if m1.Franking == nil || m2.Franking == nil || bytes.Equal(m1.Franking.Tag, m2.Franking.Tag) {
		t.Fatalf("frankings %+v %+v", m1.Franking, m2.Franking)
	}
	// Device 1's copy reported as device 2's: refused. Either device may
	// report either copy as received by the device that did.
	_, err = bob.devs[0].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(m1, 2, o)}})
	wantCode(t, err, 422, api.CodeReportRefused)
	_, err = bob.devs[1].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(m1, 1, o)}})
	check(t, err)
	_, err = bob.devs[1].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(m2, 2, o)}})
	check(t, err)
	bad := bob.to(0, 13, "x")
	bad.Devices[1].Commitment = []byte("short")
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bad}})
	wantCode(t, err, 400, api.CodeBadRequest)
}

// TestGroupFranking: a group send's one commitment gets a tag per
// recipient device, each reportable only by its own account.
func TestGroupFranking(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	o := frank(t, "to the group")
	_, err := alice.devs[0].SendGroup(ctx, api.GroupSend{Devices: members(1, alice, bob, carol), Type: api.TypeSenderKey,
		Content: o.ct, Commitment: o.commitment})
	check(t, err)
	b1, b2, c1 := receive(t, bob.devs[0], 1)[0], receive(t, bob.devs[1], 1)[0], receive(t, carol.devs[0], 1)[0]
	tags := map[string]bool{}
	for _, m := range []*api.Message{b1, b2, c1} {
		if m.Franking == nil || !bytes.Equal(m.Franking.Commitment, o.commitment) {
			t.Fatalf("group copy delivered with %+v", m.Franking)
		}
		tags[string(m.Franking.Tag)] = true
	}
	if len(tags) != 3 {
		t.Fatal("two devices share a tag")
	}
	_, err = carol.devs[0].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(b1, 1, o)}})
	wantCode(t, err, 422, api.CodeReportRefused)
	_, err = bob.devs[0].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(b2, 1, o)}})
	wantCode(t, err, 422, api.CodeReportRefused)
	for _, c := range []struct {
		by *person
		m  *api.Message
		d  uint32
	}{{bob, b1, 1}, {bob, b2, 2}, {carol, c1, 1}} {
		_, err = c.by.devs[0].Report(ctx, api.Report{Messages: []api.ReportedMessage{reported(c.m, c.d, o)}})
		check(t, err)
	}
}

// grepDir returns the first file under dir that holds b, or "".
func grepDir(t *testing.T, dir string, b []byte) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = p
		}
		return nil
	})
	check(t, err)
	return found
}

// FuzzReport feeds arbitrary bodies to POST /v1/reports' decoder and then
// to the server's verification, seeded with a real report of a delivered
// message: every answer is a success (the seed, once) or a 400, 422 or
// 429, and only a report that opens a delivered message is stored.
func FuzzReport(f *testing.F) {
	env := servertest.Start(f, server.Config{Limits: servertest.NoLimits})
	ctx := f.Context()
	alice := env.NewUser(f, "alice", 0)
	bob := env.NewUser(f, "bob", 0)
	k := franking.NewKey()
	m := &content.Message{ID: content.NewID(), SentAt: time.UnixMilli(1), Body: "seed", FrankingKey: k[:]}
	pt, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	c := franking.Commit(k[:], pt)
	if _, err := alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("opaque"), Commitment: c[:]}); err != nil {
		f.Fatal(err)
	}
	conn, err := bob.C.Connect(ctx)
	if err != nil {
		f.Fatal(err)
	}
	got := servertest.Recv(f, conn, wait).Msg
	conn.Close()
	good := reported(got, 1, opening{pt: pt, key: k[:], commitment: c[:]})
	seed, _ := json.Marshal(api.Report{Reason: "spam", Messages: []api.ReportedMessage{good}})
	f.Add(seed)
	f.Add([]byte(`{"messages":[{"from":"alice","fromDevice":1,"toDevice":1,"timestamp":1,"franking":{"commitment":"","tag":"","keyId":1},"frankingKey":"","content":"aGk="}]}`))
	f.Add([]byte(`{"reason":"\u001b[2J","messages":null}`))
	bobP := server.Principal{DeviceRef: store.DeviceRef{Account: bob.Cred.AccountID, Device: 1}, Username: "bob"}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip[api.Report](t, b)
		r, err := httpapi.Decode[api.Report](b)
		if err != nil {
			return
		}
		res, err := env.Server.Report(ctx, bobP, r)
		if err == nil {
			if len(r.Messages) == 0 || !bytes.Equal(r.Messages[0].Franking.Tag, good.Franking.Tag) {
				t.Fatalf("report %d of a message never delivered was accepted: %s", res.ID, b)
			}
			return
		}
		if s := httpapi.StatusOf(err); s != 400 && s != 422 && s != 429 {
			t.Fatalf("report answered %d: %v", s, err)
		}
	})
}
