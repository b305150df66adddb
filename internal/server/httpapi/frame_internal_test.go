package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hushmsg/hush/internal/api"
)

// clientFrames are frames as clients encode them (encoding/json): the fast
// path must take every one.
func clientFrames() []api.Frame {
	commit := bytes.Repeat([]byte{7}, api.FrankingCommitmentSize)
	return []api.Frame{
		{Type: api.FrameSend, ReqID: 1, To: "bob", Device: 1, Send: &api.SendMessage{Type: 3, Content: []byte("hello")}},
		{Type: api.FrameSend, ReqID: 1 << 63, To: "a.b_c-d", Device: 1<<32 - 1, Send: &api.SendMessage{Type: -2147483648,
			Content: bytes.Repeat([]byte{0xff}, 1000), ExpiresIn: 60, Commitment: commit,
			Blobs: []string{"b1", "b2"}, RecipientIdentity: bytes.Repeat([]byte{5}, 33)}},
		{Type: api.FrameSend, Send: &api.SendMessage{Content: []byte{}, Blobs: []string{}}},
		{Type: api.FrameAck, IDs: []int64{1, -1, 9223372036854775807, -9223372036854775808}},
		{Type: api.FrameAck, IDs: []int64{}},
		{Type: "whatever"},
		{},
	}
}

func TestFastDecodeTakesClientFrames(t *testing.T) {
	for _, f := range clientFrames() {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastDecodeFrame(b)
		if !ok {
			t.Errorf("fast path refused %s", b)
			continue
		}
		want, err := Decode[api.Frame](b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast path gave %+v, encoding/json %+v", b, got, want)
		}
	}
}

// The fast path leaves to encoding/json what it does not take; decodeFrame
// gives the same as Decode for these too.
func TestFastDecodeRefuses(t *testing.T) {
	for _, s := range []string{
		``, ` `, `null`, `[]`, `{`, `{"type":"ack"`, `{"type":"ack",}`, `{"type":"ack"}x`, `{"type":"ack"}{}`,
		`{"Type":"ack"}`, `{"type":"a\"ck"}`, `{"type":"ack","type":"send"}`, `{"type":null}`,
		`{"ids":[1.0]}`, `{"ids":[1e3]}`, `{"ids":[01]}`, `{"ids":[1,]}`, `{"ids":[,1]}`, `{"ids":[-]}`,
		`{"ids":[9223372036854775808]}`, `{"reqId":-1}`, `{"device":4294967296}`, `{"reqId":18446744073709551616}`,
		`{"send":{"content":"a"}}`, `{"send":{"content":"YQ=="}}`, `{"send":{"type":2147483648}}`,
		`{"send":{"content":1}}`, `{"send":{"blobs":["a",1]}}`, `{"send":null}`, `{"msg":{}}`, `{"unknown":1}`,
		`{"to":"é"}`, "{\"to\":\"a\x01\"}", `{"send":{"content":"YQ==","content":"Yg=="}}`,
		` { "type" : "ack" , "ids" : [ 1 , 2 ] } `, "{\"type\":\"ack\",\n\"ids\":[3]}\r\n",
	} {
		fast, ok := fastDecodeFrame([]byte(s))
		want, werr := Decode[api.Frame]([]byte(s))
		if ok && (werr != nil || !reflect.DeepEqual(fast, want)) {
			t.Errorf("%q: fast path gave %+v, encoding/json %+v, %v", s, fast, want, werr)
		}
		got, err := decodeFrame([]byte(s))
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: decodeFrame gave %+v, %v; Decode %+v, %v", s, got, err, want, werr)
		}
	}
}

// FuzzFastDecodeFrame: whatever the fast path decodes, encoding/json
// decodes to the same value.
func FuzzFastDecodeFrame(f *testing.F) {
	for _, fr := range clientFrames() {
		b, _ := json.Marshal(fr)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"ack","ids":[1,2,3]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := fastDecodeFrame(b)
		if !ok {
			return
		}
		want, err := Decode[api.Frame](b)
		if err != nil {
			t.Fatalf("fast path took %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path gave %+v, encoding/json %+v", b, got, want)
		}
	})
}

func serverFrames() []api.Frame {
	msg := func(from string, content []byte, fr *api.Franking) api.Frame {
		return api.Frame{Type: api.FrameMessage, Msg: &api.Message{ID: 1 << 62, Timestamp: 1764700000000, From: from,
			FromDevice: 3, Type: 2, Content: content, ExpiresAt: -1, Franking: fr}}
	}
	return []api.Frame{
		{Type: api.FrameSent, ReqID: 7, Result: &api.SendResult{ID: 123, Timestamp: 1764700000000}},
		{Type: api.FrameSent, Result: &api.SendResult{ID: -1}},
		{Type: api.FrameSent, ReqID: 1<<64 - 1, Result: &api.SendResult{}},
		msg("alice", []byte("ciphertext"), nil),
		msg("", nil, nil),
		msg("a.b-c_d", []byte{}, &api.Franking{Commitment: bytes.Repeat([]byte{1}, 32), Tag: []byte{2}, KeyID: 1<<32 - 1}),
		msg("x", []byte{0}, &api.Franking{}),
		// Not the fast path: escaped names, other frames.
		msg("<b>&\"\\é\u2028\x01", []byte("z"), nil),
		{Type: api.FrameSent, ReqID: 1, Result: &api.SendResult{ID: 1}, To: "x"},
		{Type: api.FrameMessage, ReqID: 1, Msg: &api.Message{}},
		{Type: api.FrameError, ReqID: 2, Error: &api.ErrorBody{Code: "bad_request", Message: "no <such> thing"}},
		{Type: api.FrameSent},
		{Type: api.FrameMessage},
		{Type: api.FrameEmpty},
	}
}

func TestAppendFrameIsJSON(t *testing.T) {
	for _, f := range serverFrames() {
		want, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendFrame([]byte("prefix"), &f)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("appendFrame gave\n%s\nencoding/json\n%s", got[6:], want)
		}
	}
}

// FuzzAppendFrame: a message frame with any sender name, content and
// franking encodes as encoding/json encodes it.
func FuzzAppendFrame(f *testing.F) {
	f.Add("alice", []byte("hi"), int64(1), []byte{1}, []byte{2}, false)
	f.Add("<&>", []byte(nil), int64(-5), []byte(nil), []byte(nil), true)
	f.Fuzz(func(t *testing.T, from string, content []byte, id int64, commit, tag []byte, franked bool) {
		m := &api.Message{ID: id, Timestamp: id / 3, From: from, FromDevice: uint32(id), Type: int32(id), Content: content, ExpiresAt: -id}
		if franked {
			m.Franking = &api.Franking{Commitment: commit, Tag: tag, KeyID: uint32(id >> 7)}
		}
		for _, fr := range []api.Frame{{Type: api.FrameMessage, Msg: m}, {Type: api.FrameSent, ReqID: uint64(id), Result: &api.SendResult{ID: id, Timestamp: -id}}} {
			want, err := json.Marshal(&fr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendFrame(nil, &fr)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("appendFrame gave %s, %v; encoding/json %s", got, err, want)
			}
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	f := api.Frame{Type: api.FrameSend, ReqID: 12345, To: "l1x2y3r999", Device: 1, Send: &api.SendMessage{Type: 1, Content: make([]byte, 256)}}
	in, _ := json.Marshal(f)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeFrame(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode[api.Frame](in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendFrame(b *testing.B) {
	f := api.Frame{Type: api.FrameMessage, Msg: &api.Message{ID: 1 << 60, Timestamp: 1764700000000, From: "l1x2y3s999",
		FromDevice: 1, Type: 1, Content: make([]byte, 256), ExpiresAt: 1764700000000}}
	var buf []byte
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendFrame(buf[:0], &f)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			j, _ := json.Marshal(&f)
			buf = append(buf[:0], j...)
		}
	})
}
