package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/hushmsg/hush/internal/api"
)

// strict decodes b as hushd's server does (httpapi.Decode): unknown
// fields and data after the value are errors.
func strict(b []byte) (api.Frame, error) {
	var f api.Frame
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return f, err
	}
	if _, err := d.Token(); err != io.EOF {
		return f, errors.New("data after the value")
	}
	return f, nil
}

// same checks that what ParseFrame took, encoding/json decodes to the
// same value, strictly (as the server) and not (as clients).
func same(t *testing.T, b []byte, got api.Frame) {
	t.Helper()
	want, err := strict(b)
	if err != nil {
		t.Fatalf("ParseFrame took %q, encoding/json (strict): %v", b, err)
	}
	var loose api.Frame
	if err := json.Unmarshal(b, &loose); err != nil {
		t.Fatalf("ParseFrame took %q, json.Unmarshal: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, loose) {
		t.Fatalf("%q: ParseFrame gave %+v, encoding/json %+v", b, got, want)
	}
}

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

func TestParseFrameTakesEncodedFrames(t *testing.T) {
	for _, f := range append(clientFrames(), serverFrames()[:7]...) {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := api.ParseFrame(b)
		if !ok {
			if !bytes.Contains(b, []byte("null")) { // nulls are left to encoding/json
				t.Errorf("ParseFrame refused %s", b)
			}
			continue
		}
		same(t, b, got)
	}
}

// ParseFrame leaves to encoding/json what it does not take.
func TestParseFrameRefuses(t *testing.T) {
	for _, s := range []string{
		``, ` `, `null`, `[]`, `{`, `{"type":"ack"`, `{"type":"ack",}`, `{"type":"ack"}x`, `{"type":"ack"}{}`,
		`{"Type":"ack"}`, `{"type":"a\"ck"}`, `{"type":"ack","type":"send"}`, `{"type":null}`,
		`{"ids":[1.0]}`, `{"ids":[1e3]}`, `{"ids":[01]}`, `{"ids":[1,]}`, `{"ids":[,1]}`, `{"ids":[-]}`,
		`{"ids":[9223372036854775808]}`, `{"reqId":-1}`, `{"device":4294967296}`, `{"reqId":18446744073709551616}`,
		`{"send":{"content":"a"}}`, `{"send":{"type":2147483648}}`, `{"send":{"content":1}}`,
		`{"send":{"blobs":["a",1]}}`, `{"send":null}`, `{"unknown":1}`, `{"to":"é"}`, "{\"to\":\"a\x01\"}",
		`{"send":{"content":"YQ==","content":"Yg=="}}`, `{"msg":{"content":null}}`, `{"msg":{"franking":{"tag":"x"}}}`,
		`{"result":{"id":1,"id":2}}`, `{"msg":{"fromDevice":-1}}`, `{"error":{"code":"x"}}`,
	} {
		if f, ok := api.ParseFrame([]byte(s)); ok || !reflect.DeepEqual(f, api.Frame{}) {
			t.Errorf("ParseFrame took %q: %+v, %v", s, f, ok)
		}
	}
	// White space where JSON allows it is taken.
	for _, s := range []string{` { "type" : "ack" , "ids" : [ 1 , 2 ] } `, "{\"type\":\"ack\",\n\"ids\":[3]}\r\n",
		`{"send":{"content":"YQ=="}}`, `{"msg":{}}`, `{"result":{}}`, `{}`} {
		f, ok := api.ParseFrame([]byte(s))
		if !ok {
			t.Errorf("ParseFrame refused %q", s)
			continue
		}
		same(t, []byte(s), f)
	}
}

// FuzzParseFrame: whatever ParseFrame decodes, encoding/json decodes to
// the same value.
func FuzzParseFrame(f *testing.F) {
	for _, fr := range append(clientFrames(), serverFrames()...) {
		b, _ := json.Marshal(fr)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, ok := api.ParseFrame(b); ok {
			same(t, b, got)
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
	weird := api.Frame{Type: api.FrameSend, To: "<x>", Send: &api.SendMessage{Blobs: []string{"a\"b"}}}
	for _, f := range append(append(serverFrames(), clientFrames()...), weird) {
		want, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := api.AppendFrame([]byte("prefix"), &f)
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
		send := &api.SendMessage{Type: int32(id), Content: content, ExpiresIn: id >> 3, Commitment: commit, RecipientIdentity: tag}
		if franked {
			send.Blobs = []string{from, "b"}
		}
		for _, fr := range []api.Frame{{Type: api.FrameMessage, Msg: m}, {Type: api.FrameSent, ReqID: uint64(id), Result: &api.SendResult{ID: id, Timestamp: -id}},
			{Type: api.FrameSend, ReqID: uint64(id), To: from, Device: uint32(id), Send: send}, {Type: api.FrameAck, IDs: []int64{id, -id, 0}}} {
			want, err := json.Marshal(&fr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := api.AppendFrame(nil, &fr)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("appendFrame gave %s, %v; encoding/json %s", got, err, want)
			}
		}
	})
}

func BenchmarkParseFrame(b *testing.B) {
	for _, f := range []api.Frame{
		{Type: api.FrameSend, ReqID: 12345, To: "l1x2y3r999", Device: 1, Send: &api.SendMessage{Type: 1, Content: make([]byte, 256)}},
		{Type: api.FrameMessage, Msg: &api.Message{ID: 1 << 60, Timestamp: 1764700000000, From: "l1x2y3s999",
			FromDevice: 1, Type: 1, Content: make([]byte, 256), ExpiresAt: 1764700000000}},
	} {
		in, _ := json.Marshal(f)
		b.Run(f.Type+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := api.ParseFrame(in); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run(f.Type+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := strict(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	f := api.Frame{Type: api.FrameMessage, Msg: &api.Message{ID: 1 << 60, Timestamp: 1764700000000, From: "l1x2y3s999",
		FromDevice: 1, Type: 1, Content: make([]byte, 256), ExpiresAt: 1764700000000}}
	var buf []byte
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = api.AppendFrame(buf[:0], &f)
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
