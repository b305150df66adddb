package httpapi_test

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/httpapi"
)

// FuzzDecodeOrdinary feeds arbitrary bytes to the decoders of the
// ordinary-conversation request types.
func FuzzDecodeOrdinary(f *testing.F) {
	for _, s := range []string{
		`{"identityKey":"BQ=="}`,
		`{"registrationId":7,"signedPreKey":{"keyId":1,"publicKey":"BQ==","signature":"AA=="},"preKeys":[{"keyId":2,"publicKey":"BQ=="}]}`,
		`{"recipients":[{"username":"bob","devices":[{"device":1,"registrationId":2,"type":13,"content":"aGk="}]}],"expiresIn":5,"history":[{"id":"AAAAAAAAAAAAAAAAAAAAAA==","blob":"aGk="}]}`,
		`{"recipients":[{"username":"bob","devices":null}]}`,
		`[]`, `null`, `{"recipients":[{"devices":[{"device":-1}]}]}`,
		`{"records":[{"id":"AAAAAAAAAAAAAAAAAAAAAA==","blob":"aGk="}]}`,
		`{"version":3,"blob":"aGk="}`,
		`{"username":"alice","password":"password1"}`,
		`{"id":"AAAAAAAAAAAAAAAAAAAAAA==","claimHash":"aGk=","expiresIn":300}`,
		`{"claim":"aGk=","ephemeral":"aGk=","mac":"aGk="}`,
		`{"ephemeral":"aGk=","box":"aGk="}`,
		`{"claim":"aGk=","deviceName":"tablet","keys":{"registrationId":5,"preKeys":[{"keyId":1,"publicKey":"BQ=="}]}}`,
	} {
		for k := range uint8(10) {
			f.Add(k, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch kind % 10 {
		case 6:
			roundTrip[api.NewLink](t, b)
		case 7:
			roundTrip[api.LinkHello](t, b)
		case 8:
			roundTrip[api.LinkBox](t, b)
		case 9:
			roundTrip[api.LinkDevice](t, b)
		case 3:
			roundTrip[api.HistoryDeposit](t, b)
		case 4:
			roundTrip[api.Recovery](t, b)
		case 5:
			roundTrip[api.RecoveryFetch](t, b)
		case 0:
			roundTrip[api.SetAccountIdentity](t, b)
		case 1:
			roundTrip[api.OrdinaryKeyUpload](t, b)
		case 2:
			roundTrip[api.OrdinarySend](t, b)
		}
	})
}

// FuzzParseDeviceList: whatever it accepts is 1 to MaxDevices positive
// device ids that print back as the input.
func FuzzParseDeviceList(f *testing.F) {
	for _, s := range []string{"1", "1,3", "", ",", "0", "1,,2", "4294967295", "4294967296", "+1", "01", " 1", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := httpapi.ParseDeviceList(s)
		if err != nil {
			return
		}
		if len(ds) == 0 || len(ds) > api.MaxDevices {
			t.Fatalf("%q: %d devices", s, len(ds))
		}
		parts := make([]string, len(ds))
		for i, d := range ds {
			if d == 0 {
				t.Fatalf("%q: device 0", s)
			}
			parts[i] = strconv.FormatUint(uint64(d), 10)
		}
		if back := strings.Join(parts, ","); back != strings.TrimLeft(s, "0") && !equalNumbers(s, back) {
			t.Fatalf("%q parsed as %v", s, ds)
		}
	})
}

// equalNumbers reports whether the comma-separated lists a and b name the
// same numbers (leading zeros aside).
func equalNumbers(a, b string) bool {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		x, err1 := strconv.ParseUint(as[i], 10, 32)
		y, err2 := strconv.ParseUint(bs[i], 10, 32)
		if err1 != nil || err2 != nil || x != y {
			return false
		}
	}
	return true
}

// FuzzParseHistoryQuery: what it accepts is a non-negative after and a
// limit that is 0 only when absent.
func FuzzParseHistoryQuery(f *testing.F) {
	for _, s := range []string{"", "after=5", "after=5&limit=10", "limit=0", "after=-1", "after=1&after=2", "limit=99999999999", "after=%31", "a=b;c", "limit=+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		after, limit, err := httpapi.ParseHistoryQuery(q)
		if err != nil {
			return
		}
		if after < 0 || limit < 0 {
			t.Fatalf("%q: after %d, limit %d", q, after, limit)
		}
		if limit == 0 && strings.Contains(q, "limit=") && !strings.Contains(q, "limit=&") && !strings.HasSuffix(q, "limit=") {
			// limit=0 (or an encoded form of it) must be refused; an
			// empty value or another key ending in "limit" is not it.
			if v, _ := url.ParseQuery(q); v.Has("limit") {
				t.Fatalf("%q: limit 0 accepted", q)
			}
		}
	})
}

// FuzzParseLinkID: what it accepts is 16 bytes whose one spelling is the
// input.
func FuzzParseLinkID(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAA==", "", "abc", "_-_-_-_-_-_-_-_-_-_-_w", "AAAAAAAAAAAAAAAAAAAA\nAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := httpapi.ParseLinkID(s)
		if err != nil {
			return
		}
		if len(id) != 16 || base64.RawURLEncoding.EncodeToString(id) != s {
			t.Fatalf("%q parsed as %x", s, id)
		}
	})
}
