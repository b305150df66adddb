package httpapi_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
)

// Tests of history records and the recovery blob (docs/multidevice.md
// section 3).

func hrec(id, blob string) api.HistoryRecord {
	return api.HistoryRecord{ID: []byte(fmt.Sprintf("%-16s", id)), Blob: []byte(blob)}
}

func pageBlobs(recs []api.HistoryRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, string(r.Blob))
	}
	return strings.Join(s, " ")
}

func TestHistory(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	check(t, alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("1", "one"), hrec("2", "two"), hrec("3", "three")}}))
	// Another device deposits the same messages: the first copy stays.
	check(t, alice.devs[1].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("2", "TWO"), hrec("3", "THREE"), hrec("4", "four")}}))
	check(t, bob.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("1", "bob's")}}))

	var all []api.HistoryRecord
	after, pages := int64(0), 0
	for {
		p, err := alice.devs[1].History(ctx, after, 3)
		check(t, err)
		pages++
		all = append(all, p.Records...)
		if p.Next == nil {
			break
		}
		if len(p.Records) != 3 || *p.Next != p.Records[2].Seq {
			t.Fatalf("page %+v", p)
		}
		after = *p.Next
	}
	if pageBlobs(all) != "one two three four" || pages != 2 {
		t.Fatalf("history %q in %d pages", pageBlobs(all), pages)
	}
	if !bytes.Equal(all[3].ID, hrec("4", "").ID) {
		t.Fatalf("record id %q", all[3].ID)
	}
	p, err := bob.devs[0].History(ctx, 0, 0)
	check(t, err)
	if pageBlobs(p.Records) != "bob's" || p.Next != nil {
		t.Fatalf("bob's history %+v", p)
	}
	// Removing a device leaves the account's history.
	check(t, alice.devs[0].RemoveDevice(ctx, 2))
	if p, err := alice.devs[0].History(ctx, 0, 0); err != nil || len(p.Records) != 4 {
		t.Fatalf("after removing a device: %+v %v", p, err)
	}
}

// TestHistoryRefusals: malformed deposits and queries get 400 (or 413) and
// store nothing.
func TestHistoryRefusals(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	c := alice.devs[0]
	many := make([]api.HistoryRecord, api.MaxHistoryPerRequest+1)
	for i := range many {
		many[i] = hrec(fmt.Sprint(i), "x")
	}
	for _, tc := range []struct {
		what   string
		recs   []api.HistoryRecord
		status int
		code   string
	}{
		{"none", nil, 400, api.CodeBadRequest},
		{"id of 15 bytes", []api.HistoryRecord{{ID: make([]byte, 15), Blob: []byte("x")}}, 400, api.CodeBadRequest},
		{"id of 17 bytes", []api.HistoryRecord{{ID: make([]byte, 17), Blob: []byte("x")}}, 400, api.CodeBadRequest},
		{"no id", []api.HistoryRecord{{Blob: []byte("x")}}, 400, api.CodeBadRequest},
		{"empty blob", []api.HistoryRecord{hrec("1", "")}, 400, api.CodeBadRequest},
		{"a seq", []api.HistoryRecord{{Seq: 5, ID: make([]byte, 16), Blob: []byte("x")}}, 400, api.CodeBadRequest},
		{"too many", many, 400, api.CodeBadRequest},
		{"blob too large", []api.HistoryRecord{hrec("1", "ok"), {ID: make([]byte, 16), Blob: make([]byte, api.MaxHistoryRecordBytes+1)}}, 413, api.CodeTooLarge},
	} {
		err := c.DepositHistory(ctx, api.HistoryDeposit{Records: tc.recs})
		if e, ok := err.(interface{ Error() string }); !ok || !strings.Contains(e.Error(), fmt.Sprint(tc.status)) {
			t.Errorf("%s: %v", tc.what, err)
		}
		wantCode(t, err, tc.status, tc.code)
	}
	// The largest blob is fine.
	check(t, c.DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{{ID: make([]byte, 16), Blob: make([]byte, api.MaxHistoryRecordBytes)}}}))
	for _, q := range []string{"after=-1", "after=x", "limit=0", "limit=501", "limit=-3", "after=1&after=2", "limit=1;", "after=9223372036854775808"} {
		err := c.Do(ctx, "GET", "/v1/history?"+q, nil, nil)
		wantCode(t, err, 400, api.CodeBadRequest)
	}
	p, err := c.History(ctx, 0, 0)
	check(t, err)
	if len(p.Records) != 1 || len(p.Records[0].Blob) != api.MaxHistoryRecordBytes {
		t.Fatalf("after refused deposits: %d records", len(p.Records))
	}
}

// TestHistoryFull: the per-account cap refuses new records, in a deposit
// or in a send (then nothing of the send is stored); known ones cost
// nothing.
func TestHistoryFull(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, MaxHistoryRecords: 3})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	check(t, alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("1", "a"), hrec("2", "b")}}))
	err := alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("3", "c"), hrec("4", "d")}})
	wantCode(t, err, 409, api.CodeHistoryFull)
	res, err := alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "m1")},
		History: []api.HistoryRecord{hrec("1", "known"), hrec("3", "sent")}})
	check(t, err)
	if res.IDs[0][0] == 0 {
		t.Fatalf("result %+v", res)
	}
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "m2")},
		History: []api.HistoryRecord{hrec("4", "one too many")}})
	wantCode(t, err, 409, api.CodeHistoryFull)
	if ms, err := env.Store.Pending(ctx, store.DeviceRef{Account: bob.id, Device: 1}, 0, 0, 10); err != nil || len(ms) != 1 {
		t.Fatalf("bob has %d messages (%v), want only the first", len(ms), err)
	}
	check(t, alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("2", "known")}}))
	p, err := alice.devs[0].History(ctx, 0, 0)
	check(t, err)
	if pageBlobs(p.Records) != "a b sent" {
		t.Fatalf("history %q", pageBlobs(p.Records))
	}
}

// TestHistoryLimits: deposits are limited per device in records and in
// bytes, and the records of a send count too.
func TestHistoryLimits(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.HistoryPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 5}
	lim.HistoryBytesPerDev = ratelimit.Limit{Rate: 1e-9, Burst: 3*api.MaxHistoryRecordBytes + 100}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	check(t, alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("1", "a"), hrec("2", "b"), hrec("3", "c")}}))
	err := alice.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("4", "d"), hrec("5", "e"), hrec("6", "f")}})
	wantCode(t, err, 429, api.CodeRateLimited)
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "m"), alice.to(1, 13, "m")},
		History: []api.HistoryRecord{hrec("7", "g"), hrec("8", "h"), hrec("9", "i")}})
	wantCode(t, err, 429, api.CodeRateLimited)
	// Device 2 has its own budget; large records run out of bytes first.
	big := make([]byte, api.MaxHistoryRecordBytes)
	n := 0
	for i := range 5 {
		err := alice.devs[1].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{{ID: []byte(fmt.Sprintf("big-%12d", i)), Blob: big}}})
		if err != nil {
			wantCode(t, err, 429, api.CodeRateLimited)
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("device 2 deposited %d records of %d bytes, want 3", n, len(big))
	}
	p, err := alice.devs[0].History(ctx, 0, 0)
	check(t, err)
	if len(p.Records) != 6 {
		t.Fatalf("%d records stored, want 6", len(p.Records))
	}
}

func TestRecovery(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.LoginPerUser = ratelimit.Limit{Rate: 1e-9, Burst: 6}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := newPerson(t, env, "alice", 2, 1)
	stranger := env.Client(t, "")
	fetch := func(user, pw string) (api.Recovery, error) {
		return stranger.FetchRecovery(ctx, api.RecoveryFetch{Username: user, Password: pw})
	}
	// newPerson's AddDevice was the first password check of alice.
	_, err := fetch("alice", "password-alice")
	wantCode(t, err, 404, api.CodeNotFound) // 2
	for _, tc := range []struct {
		r      api.Recovery
		status int
		code   string
	}{
		{api.Recovery{Version: 2, Blob: []byte("v2")}, 409, api.CodeConflict},
		{api.Recovery{Version: 0, Blob: []byte("v0")}, 400, api.CodeBadRequest},
		{api.Recovery{Version: -1, Blob: []byte("v0")}, 400, api.CodeBadRequest},
		{api.Recovery{Version: 1}, 400, api.CodeBadRequest},
		{api.Recovery{Version: 1, Blob: make([]byte, api.MaxRecoveryBlobBytes+1)}, 413, api.CodeTooLarge},
	} {
		wantCode(t, alice.devs[0].PutRecovery(ctx, tc.r), tc.status, tc.code)
	}
	check(t, alice.devs[0].PutRecovery(ctx, api.Recovery{Version: 1, Blob: []byte("v1")}))
	// Two devices racing for version 2: the loser gets 409 and retries.
	check(t, alice.devs[1].PutRecovery(ctx, api.Recovery{Version: 2, Blob: []byte("v2 from 2")}))
	wantCode(t, alice.devs[0].PutRecovery(ctx, api.Recovery{Version: 2, Blob: []byte("v2 from 1")}), 409, api.CodeConflict)
	check(t, alice.devs[0].PutRecovery(ctx, api.Recovery{Version: 3, Blob: make([]byte, api.MaxRecoveryBlobBytes)}))

	r, err := fetch("alice", "password-alice") // 3
	check(t, err)
	if r.Version != 3 || len(r.Blob) != api.MaxRecoveryBlobBytes {
		t.Fatalf("fetched version %d, %d bytes", r.Version, len(r.Blob))
	}
	// A wrong password and a missing user get the same answer, and count.
	_, err = fetch("alice", "password-bob") // 4
	wantCode(t, err, 401, api.CodeUnauthorized)
	_, err = fetch("nobody", "password-alice")
	wantCode(t, err, 401, api.CodeUnauthorized)
	_, err = fetch("ALICE\u202e", "password-alice")
	wantCode(t, err, 401, api.CodeUnauthorized)
	// Guessing alice's password shares the per-username budget with login.
	_, err = stranger.Login(ctx, api.Login{Username: "alice", Password: "guessed-password-1", DeviceID: 1}) // 5
	wantCode(t, err, 401, api.CodeUnauthorized)
	_, err = fetch("alice", "guessed-password-2") // 6
	wantCode(t, err, 401, api.CodeUnauthorized)
	_, err = fetch("alice", "password-alice") // 7: over
	wantCode(t, err, 429, api.CodeRateLimited)
	// A credential is not needed, and not enough: the body is what counts.
	err = alice.devs[0].Do(ctx, "POST", "/v1/recovery/fetch", map[string]string{"username": "alice"}, nil)
	wantCode(t, err, 401, api.CodeUnauthorized)
	err = stranger.Do(ctx, "POST", "/v1/recovery/fetch", map[string]any{"username": "alice", "password": "x", "version": 1}, nil)
	wantCode(t, err, 400, api.CodeBadRequest)
}

// TestSendWithHistory: the sender's records of a message are stored with
// it, in the same request.
func TestSendWithHistory(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 1, 1)
	bob := newPerson(t, env, "bob", 1, 1)
	_, err := alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "hi")},
		History: []api.HistoryRecord{hrec("m1", "sent hi")}})
	check(t, err)
	// The receiver deposits for its own account; a resend changes nothing.
	check(t, bob.devs[0].DepositHistory(ctx, api.HistoryDeposit{Records: []api.HistoryRecord{hrec("m1", "got hi")}}))
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "hi")},
		History: []api.HistoryRecord{hrec("m1", "sent hi again")}})
	check(t, err)
	for _, c := range []struct {
		p    *person
		want string
	}{{alice, "sent hi"}, {bob, "got hi"}} {
		p, err := c.p.devs[0].History(ctx, 0, 0)
		check(t, err)
		if pageBlobs(p.Records) != c.want {
			t.Fatalf("%s's history %q, want %q", c.p.name, pageBlobs(p.Records), c.want)
		}
	}
	// A malformed record refuses the send.
	_, err = alice.devs[0].SendOrdinary(ctx, api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, 13, "x")},
		History: []api.HistoryRecord{{ID: []byte("short"), Blob: []byte("x")}}})
	wantCode(t, err, 400, api.CodeBadRequest)
}
