package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store"
)

// world is a server with two people, each with a secret device, keys, a
// second device and a queued message; snapshot reads all of it.
type world struct {
	env          *servertest.Env
	alice, bob   *servertest.User
	aliceID, bID int64
}

func newWorld(t testing.TB) *world {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	w := &world{env: env, alice: env.NewUser(t, "alice", 3), bob: env.NewUser(t, "bob", 3)}
	w.aliceID, w.bID = w.alice.Cred.AccountID, w.bob.Cred.AccountID
	if _, err := env.Client(t, "").AddDevice(ctx, api.AddDevice{Username: "alice", Password: "password-alice", DeviceName: "laptop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.bob.C.Send(ctx, "alice", 1, api.SendMessage{Type: 3, Content: []byte("for alice")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 3, Content: []byte("for bob")}); err != nil {
		t.Fatal(err)
	}
	return w
}

type snapshot struct {
	Accounts []store.Account
	Devices  [][]store.Device
	Keys     []store.KeyCounts
	Pending  [][]*store.Message
	Blocked  [][]int64
	Depth    int64
}

func (w *world) snapshot(t testing.TB) snapshot {
	t.Helper()
	ctx := t.Context()
	st := w.env.Store
	var s snapshot
	for _, id := range []int64{w.aliceID, w.bID} {
		a, err := st.AccountByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := st.Devices(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ds {
			ds[i].LastSeen = 0 // touched by connecting; not state a caller controls
		}
		s.Accounts = append(s.Accounts, a)
		s.Devices = append(s.Devices, ds)
		for dev := uint32(1); dev <= 3; dev++ {
			ref := store.DeviceRef{Account: id, Device: dev}
			c, err := st.KeyCounts(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			p, err := st.Pending(ctx, ref, 0, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			s.Keys = append(s.Keys, c)
			s.Pending = append(s.Pending, p)
		}
		b, err := st.Blocked(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s.Blocked = append(s.Blocked, b)
	}
	d, err := st.QueueDepth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Depth = d
	return s
}

func (w *world) unchanged(t testing.TB, before snapshot, what string) {
	t.Helper()
	ctx := t.Context()
	// Acks and touches are committed lazily: a synchronous write orders
	// after them, so that the snapshot sees them.
	if err := w.env.Store.Unblock(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	if after := w.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Fatalf("%s changed the state:\nbefore %+v\nafter  %+v", what, before, after)
	}
}

type call struct {
	method, path, body string
}

// authedCalls is every endpoint that needs a device credential.
func authedCalls(t testing.TB, w *world) []call {
	ku, err := json.Marshal(servertest.Keys(t, w.alice.Identity, 50, 1))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := json.Marshal(api.MakeSecret{RegistrationID: 9, IdentityKey: servertest.NewIdentity(t).Public.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	oku, err := json.Marshal(servertest.OrdinaryKeys(t, w.alice.Identity, 7, 60, 1))
	if err != nil {
		t.Fatal(err)
	}
	osend, err := json.Marshal(api.OrdinarySend{Recipients: []api.OrdinaryRecipient{{Username: "bob", Devices: []api.OrdinaryDeviceMessage{
		{Device: 1, RegistrationID: 7, Type: 13, Content: []byte("ordinary")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return []call{
		{"GET", "/v1/account", ""},
		{"GET", "/v1/devices", ""},
		{"DELETE", "/v1/devices/2", ""},
		{"PUT", "/v1/devices/self/secret", string(ms)},
		{"GET", "/v1/directory/alice", ""},
		{"PUT", "/v1/keys", string(ku)},
		{"GET", "/v1/keys", ""},
		{"GET", "/v1/keys/alice", ""},
		{"GET", "/v1/keys/alice/1", ""},
		{"POST", "/v1/messages/alice/1", `{"type":1,"content":"aGk="}`},
		{"GET", "/v1/ws", ""},
		{"GET", "/v1/blocks", ""},
		{"PUT", "/v1/blocks/bob", ""},
		{"DELETE", "/v1/blocks/bob", ""},
		{"PUT", "/v1/ordinary/identity", fmt.Sprintf(`{"identityKey":%q}`, base64.StdEncoding.EncodeToString(w.alice.Identity.Public.Bytes()))},
		{"PUT", "/v1/ordinary/keys", string(oku)},
		{"GET", "/v1/ordinary/keys", ""},
		{"GET", "/v1/ordinary/keys/alice", ""},
		{"GET", "/v1/ordinary/keys/alice?devices=1", ""},
		{"POST", "/v1/ordinary/messages", string(osend)},
		{"POST", "/v1/history", `{"records":[{"id":"AAAAAAAAAAAAAAAAAAAAAA==","blob":"aGk="}]}`},
		{"GET", "/v1/history", ""},
		{"GET", "/v1/history?after=0&limit=5", ""},
		{"PUT", "/v1/recovery", `{"version":1,"blob":"aGk="}`},
		{"POST", "/v1/links", `{"id":"AAAAAAAAAAAAAAAAAAAAAA==","claimHash":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`},
		{"GET", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{"DELETE", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{"PUT", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/box", `{"ephemeral":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","box":"aGk="}`},
		{"POST", "/v1/blobs", `{"size":10}`},
		{"GET", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA/state", ""},
		{"PATCH", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", "0123456789"},
		{"GET", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{"DELETE", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", ""},
	}
}

func do(t testing.TB, w *world, c call, auth string) (int, string) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, w.env.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if c.path == "/v1/ws" {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")))
	}
	resp, err := w.env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// TestAuthorizationMatrix calls every endpoint with no credential, wrong
// ones, and another person's, and checks that each is refused and that
// nothing was read or changed.
func TestAuthorizationMatrix(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	aliceSecret := w.alice.Cred.Credential[strings.LastIndexByte(w.alice.Cred.Credential, '.')+1:]
	bobSecret := w.bob.Cred.Credential[strings.LastIndexByte(w.bob.Cred.Credential, '.')+1:]
	wrong := []struct{ name, header string }{
		{"none", ""},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte(w.alice.Cred.Credential))},
		{"garbage", "Bearer garbage"},
		{"empty bearer", "Bearer "},
		{"wrong secret", fmt.Sprintf("Bearer %d.1.%s", w.aliceID, base64.RawURLEncoding.EncodeToString(make([]byte, 32)))},
		{"bob's secret on alice's device", fmt.Sprintf("Bearer %d.1.%s", w.aliceID, bobSecret)},
		{"alice's secret on her other device", fmt.Sprintf("Bearer %d.2.%s", w.aliceID, aliceSecret)},
		{"alice's secret on bob's device", fmt.Sprintf("Bearer %d.1.%s", w.bID, aliceSecret)},
		{"missing device", fmt.Sprintf("Bearer %d.9.%s", w.aliceID, aliceSecret)},
		{"truncated secret", "Bearer " + w.alice.Cred.Credential[:len(w.alice.Cred.Credential)-1]},
		{"extra byte", "Bearer " + w.alice.Cred.Credential + "A"},
	}
	before := w.snapshot(t)
	for _, c := range authedCalls(t, w) {
		for _, cred := range wrong {
			status, body := do(t, w, c, cred.header)
			if status != 401 || !strings.Contains(body, `"unauthorized"`) || strings.Contains(body, "for alice") {
				t.Errorf("%s %s with %s: %d %s", c.method, c.path, cred.name, status, body)
			}
		}
	}
	w.unchanged(t, before, "refused requests")

	// Password endpoints with a wrong password.
	for _, c := range []call{
		{"POST", "/v1/devices", `{"username":"alice","password":"password-bob"}`},
		{"POST", "/v1/login", `{"username":"alice","password":"password-bob","deviceId":1}`},
		{"POST", "/v1/login", `{"username":"alice","password":"","deviceId":1}`},
		{"POST", "/v1/login", `{"username":"nobody","password":"password-alice","deviceId":1}`},
		{"POST", "/v1/recovery/fetch", `{"username":"alice","password":"password-bob"}`},
		{"POST", "/v1/recovery/fetch", `{"username":"nobody","password":"password-alice"}`},
	} {
		if status, body := do(t, w, c, ""); status != 401 {
			t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, status, body)
		}
	}
	w.unchanged(t, before, "wrong passwords")

	// Bob's valid credential cannot reach Alice's things.
	bob := "Bearer " + w.bob.Cred.Credential
	if status, _ := do(t, w, call{"DELETE", "/v1/devices/2", ""}, bob); status != 404 {
		t.Errorf("bob deleting device 2: %d, want 404 (he has none)", status)
	}
	if status, body := do(t, w, call{"GET", "/v1/account", ""}, bob); status != 200 || !strings.Contains(body, `"username":"bob"`) {
		t.Errorf("bob's account: %d %s", status, body)
	}
	if status, body := do(t, w, call{"GET", "/v1/devices", ""}, bob); status != 200 || strings.Contains(body, "laptop") {
		t.Errorf("bob's devices: %d %s", status, body)
	}
	for _, c := range authedCalls(t, w) {
		if c.path == "/v1/keys" && c.method == "PUT" { // alice's keys, bob's identity
			if status, _ := do(t, w, c, bob); status != 400 {
				t.Errorf("bob uploading keys signed by alice: %d", status)
			}
		}
	}
	w.unchanged(t, before, "bob's requests")

	// Bob's WebSocket gets Bob's mail only, and his acks cannot delete
	// Alice's messages.
	aliceMsgs := before.Pending[0]
	conn, err := w.bob.C.Connect(ctx)
	check(t, err)
	f := servertest.Recv(t, conn, wait)
	if f.Msg == nil || string(f.Msg.Content) != "for bob" {
		t.Fatalf("bob received %+v", f)
	}
	if f := servertest.Recv(t, conn, wait); f.Type != api.FrameEmpty {
		t.Fatalf("bob received more: %+v", f)
	}
	check(t, conn.Ack(ctx, aliceMsgs[0].ID))
	conn.Close()
	w.unchanged(t, before, "bob acking alice's message")
}

// TestBadRequests sends malformed and invalid requests with a valid
// credential: each gets a 4xx with a clear code, and changes nothing.
func TestBadRequests(t *testing.T) {
	w := newWorld(t)
	ik := w.alice.Identity
	keys := func(mut func(*api.KeyUpload)) string {
		k := servertest.Keys(t, ik, 70, 2)
		mut(&k)
		b, _ := json.Marshal(k)
		return string(b)
	}
	ec := servertest.Keys(t, ik, 1, 1).PreKeys[0].PublicKey
	cases := []struct {
		c      call
		status int
		code   string
	}{
		{call{"PUT", "/v1/keys", `{`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"preKeys":[]} {}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"bogus":1}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"preKeys":"x"}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"preKeys":[{"keyId":-1,"publicKey":""}]}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"preKeys":[{"keyId":1,"publicKey":"!!"}]}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.SignedPreKey.Signature[0] ^= 1 })}, 400, api.CodeBadSignature},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.KyberPreKeys[1].Signature[5] ^= 1 })}, 400, api.CodeBadSignature},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.KyberLastResort.Signature = nil })}, 400, api.CodeBadSignature},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.SignedPreKey.PublicKey = k.SignedPreKey.PublicKey[1:] })}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.KyberPreKeys[0].PublicKey = ec })}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.PreKeys[0].PublicKey = k.KyberPreKeys[0].PublicKey })}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) { k.PreKeys[1].KeyID = k.PreKeys[0].KeyID })}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", keys(func(k *api.KeyUpload) {
			for i := range 101 {
				k.PreKeys = append(k.PreKeys, api.PreKey{KeyID: uint32(1000 + i), PublicKey: ec})
			}
		})}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/keys", `{"preKeys":[{"keyId":1,"publicKey":"` + strings.Repeat("A", 2<<20) + `"}]}`}, 413, api.CodeTooLarge},
		{call{"PUT", "/v1/devices/self/secret", `{"registrationId":1,"identityKey":"AAAA"}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/devices/self/secret", fmt.Sprintf(`{"registrationId":0,"identityKey":%q}`, base64.StdEncoding.EncodeToString(ec))}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/devices/self/secret", fmt.Sprintf(`{"registrationId":99999,"identityKey":%q}`, base64.StdEncoding.EncodeToString(ec))}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/devices/self/secret", fmt.Sprintf(`{"registrationId":5,"identityKey":%q,"keys":%s}`,
			base64.StdEncoding.EncodeToString(ec), keys(func(*api.KeyUpload) {}))}, 400, api.CodeBadSignature},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":""}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/1", `{"type":1}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"aGk=","expiresIn":-1}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"aGk=","frankingCommitment":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/reports", `{"messages":[]}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/reports", `{"messages":[{"from":"alice"}],"extra":1}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"aGk=","blobs":["x"]}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"aGk=","blobs":["x","x"]}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/blobs", `{"size":0}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/blobs", `{"size":-1}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/blobs", `{"size":107335793}`}, 413, api.CodeTooLarge},
		{call{"POST", "/v1/blobs", `{"size":"1"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/blobs", `{"size":1,"name":"x"}`}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA/state", ""}, 404, api.CodeNotFound},
		{call{"DELETE", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/blobs/..%2F..%2Fhushd.db", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA==", ""}, 404, api.CodeNotFound},
		{call{"POST", "/v1/messages/bob/1", `{"type":"1","content":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"aGk=","extra":true}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/0", `{"type":1,"content":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/x", `{"type":1,"content":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/messages/bob/9", `{"type":1,"content":"aGk="}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/messages/nobody/1", `{"type":1,"content":"aGk="}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/messages/BOB/1", `{"type":1,"content":"aGk="}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/messages/bob/1", `{"type":1,"content":"` + base64.StdEncoding.EncodeToString(make([]byte, 256<<10+1)) + `"}`}, 413, api.CodeTooLarge},
		{call{"DELETE", "/v1/devices/0", ""}, 400, api.CodeBadRequest},
		{call{"DELETE", "/v1/devices/-1", ""}, 400, api.CodeBadRequest},
		{call{"DELETE", "/v1/devices/9", ""}, 404, api.CodeNotFound},
		{call{"PUT", "/v1/blocks/nobody", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/keys/nobody", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/keys/bob/2", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/keys/bob/0", ""}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/directory/x", ""}, 404, api.CodeNotFound},
		{call{"GET", "/v1/nothing", ""}, 404, api.CodeNotFound},
		{call{"POST", "/v1/accounts", `{"username":"al","password":"password1"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/accounts", `{"username":"Alice2","password":"password1"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/accounts", `{"username":"alice2","password":"short"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/accounts", `{"username":"alice2","password":"password1","displayName":"a\u0007b"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/accounts", `{"username":"alice2","password":"password1","displayName":"` + strings.Repeat("x", 65) + `"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/accounts", `{"username":"alice","password":"password1"}`}, 409, api.CodeUsernameTaken},
		{call{"POST", "/v1/devices", `{"username":"alice","password":"password-alice","deviceName":"` + strings.Repeat("x", 65) + `"}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/login", `{"username":"alice","password":"password-alice","deviceId":7}`}, 404, api.CodeNotFound},
		{call{"PUT", "/v1/ordinary/identity", `{"identityKey":1}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/ordinary/identity", `{"identityKey":"AAAA"}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/ordinary/keys", `{"registrationId":5}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/ordinary/keys", `{"registrationId":5,"keys":{}}`}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/ordinary/keys", keys(func(*api.KeyUpload) {})}, 400, api.CodeBadRequest}, // no registrationId
		{call{"GET", "/v1/ordinary/keys/bob?devices=x", ""}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/ordinary/keys/bob?devices=1%3B2", ""}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/ordinary/messages", `{}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/ordinary/messages", `{"recipients":[{"username":"bob","devices":[{"device":1,"registrationId":1,"type":3,"content":"aGk="}]}]}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/ordinary/messages", `{"recipients":[{"username":"bob","devices":[{"device":1,"registrationId":1,"type":13,"content":"aGk="}]}]}`}, 409, api.CodeDeviceMismatch},
		{call{"POST", "/v1/messages/bob/1", `{"type":13,"content":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/history", `{"records":[]}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/history", `{"records":[{"id":"AAAA","blob":"aGk="}]}`}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/history?after=-1", ""}, 400, api.CodeBadRequest},
		{call{"PUT", "/v1/recovery", `{"version":2,"blob":"aGk="}`}, 409, api.CodeConflict},
		{call{"PUT", "/v1/recovery", `{"version":1}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/recovery/fetch", `{"username":"alice","password":"password-alice"}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/links", `{"id":"AAAA","claimHash":"AAAA"}`}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/links/AAAA", ""}, 400, api.CodeBadRequest},
		{call{"GET", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA", ""}, 404, api.CodeNotFound},
		{call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/hello", `{"claim":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) +
			`","ephemeral":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","mac":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`}, 404, api.CodeNotFound},
		{call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/box", `{"claim":"aGk="}`}, 400, api.CodeBadRequest},
		{call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/box", `{"claim":"aGk=","extra":1}`}, 400, api.CodeBadRequest},
	}
	before := w.snapshot(t)
	auth := "Bearer " + w.alice.Cred.Credential
	for _, tc := range cases {
		status, body := do(t, w, tc.c, auth)
		var e api.Error
		if status != tc.status || json.Unmarshal([]byte(body), &e) != nil || e.Err.Code != tc.code || e.Err.Message == "" {
			b := tc.c.body
			if len(b) > 80 {
				b = b[:80] + "..."
			}
			t.Errorf("%s %s %s: got %d %s, want %d %s", tc.c.method, tc.c.path, b, status, body, tc.status, tc.code)
		}
	}
	w.unchanged(t, before, "bad requests")
}

// FuzzAPI sends arbitrary bodies to every endpoint that reads one, with a
// valid credential: the answer is never a 5xx, and a 4xx changes nothing.
func FuzzAPI(f *testing.F) {
	w := newWorld(f)
	calls := append(authedCalls(f, w),
		call{"POST", "/v1/accounts", `{"username":"zed","password":"password1"}`},
		call{"POST", "/v1/devices", `{"username":"alice","password":"password-alice"}`},
		call{"POST", "/v1/login", `{"username":"alice","password":"password-alice","deviceId":2}`},
		call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/hello", `{"claim":"aGk=","ephemeral":"aGk=","mac":"aGk="}`},
		call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/box", `{"claim":"aGk="}`},
		call{"POST", "/v1/links/AAAAAAAAAAAAAAAAAAAAAA/device", `{"claim":"aGk=","keys":{"registrationId":1}}`},
		call{"POST", "/v1/recovery/fetch", `{"username":"alice","password":"password-alice"}`})
	for i, c := range calls {
		if c.body != "" {
			f.Add(uint8(i), []byte(c.body))
		}
	}
	f.Add(uint8(3), []byte(`{"registrationId":1,"identityKey":"BQ=="}`))
	f.Add(uint8(9), []byte(`{"type":1,"content":"aGk=","expiresIn":1e99}`))
	auth := "Bearer " + w.alice.Cred.Credential
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		c := calls[int(which)%len(calls)]
		if c.body == "" {
			return
		}
		before := w.snapshot(t)
		req := httptest.NewRequest(c.method, c.path, bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		w.env.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", c.method, c.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e api.Error
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Err.Code == "" {
				t.Fatalf("error answer without a code: %s", rec.Body)
			}
			w.unchanged(t, before, fmt.Sprintf("%s %s %q", c.method, c.path, body))
		}
	})
}
