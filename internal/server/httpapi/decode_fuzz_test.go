package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
)

// roundTrip decodes b as a T; on success, encoding and decoding again must
// give the same value, and on failure the error is a 400.
func roundTrip[T any](t *testing.T, b []byte) {
	v, err := httpapi.Decode[T](b)
	if err != nil {
		var e *server.Error
		if !errors.As(err, &e) || httpapi.StatusOf(err) != 400 || e.Code != api.CodeBadRequest {
			t.Fatalf("decode error %v is not a 400 bad_request", err)
		}
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := httpapi.Decode[T](again)
	if err != nil {
		t.Fatalf("re-decoding %s: %v", again, err)
	}
	// Compare encodings: an empty list and a missing one are the same
	// request.
	again2, err := json.Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, again2) {
		t.Fatalf("round trip changed %s into %s", again, again2)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder of every request type and
// of WebSocket frames.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","reqId":1,"to":"bob","device":1,"send":{"type":3,"content":"aGk=","expiresIn":60}}`,
		`{"type":"ack","ids":[1,2,3]}`,
		`{"username":"alice","password":"password1","displayName":"A","deviceName":"phone"}`,
		`{"signedPreKey":{"keyId":1,"publicKey":"BQ==","signature":"AA=="},"preKeys":[{"keyId":2,"publicKey":"BQ=="}]}`,
		`{"registrationId":1,"identityKey":"BQ==","keys":{}}`,
		`{"username":"a","password":"b","deviceId":1}`,
		`[]`, `null`, `{"type":null}`, `{"ids":[1e400]}`,
	} {
		for k := range uint8(6) {
			f.Add(k, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch kind % 6 {
		case 0:
			roundTrip[api.Frame](t, b)
		case 1:
			roundTrip[api.Register](t, b)
		case 2:
			roundTrip[api.KeyUpload](t, b)
		case 3:
			roundTrip[api.MakeSecret](t, b)
		case 4:
			roundTrip[api.Login](t, b)
		case 5:
			roundTrip[api.SendMessage](t, b)
		}
	})
}
