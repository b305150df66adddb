package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type doc struct {
	Version int      `json:"version"`
	Name    string   `json:"name"`
	Key     []byte   `json:"key"`
	List    []uint64 `json:"list"`
}

func TestUnmarshal(t *testing.T) {
	good, _ := json.Marshal(doc{Version: 1, Name: "bob<", Key: []byte{1, 2, 3}, List: []uint64{1 << 63}})
	var d doc
	if err := Unmarshal(good, &d); err != nil || d.Name != "bob<" || d.List[0] != 1<<63 {
		t.Fatalf("%+v, %v", d, err)
	}
	s := string(good)
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(s, `{`, `{"extra":1,`, 1),
		"other case":    strings.Replace(s, `"name"`, `"Name"`, 1),
		"duplicate":     strings.Replace(s, `{`, `{"version":1,`, 1),
		"order":         `{"name":"bob\u003c","version":1,"key":"AQID","list":[9223372036854775808]}`,
		"whitespace":    s + " ",
		"space inside":  strings.Replace(s, `:`, `: `, 1),
		"trailing":      s + "{}",
		"number form":   strings.Replace(s, `"version":1`, `"version":1e0`, 1),
		"minus zero":    strings.Replace(s, `"version":1`, `"version":-0`, 1),
		"base64 bits":   strings.Replace(s, `"AQID"`, `"AQJ="`, 1), // 2 bytes, as "AQI="
		"base64 lines":  strings.Replace(s, `"AQID"`, `"AQ\nID"`, 1),
		"unescaped":     strings.Replace(s, `\u003c`, `<`, 1),
		"bad utf8":      strings.Replace(s, `bob`, "b\xffb", 1),
		"truncated":     s[:len(s)-2],
		"empty":         "",
		"null":          "null",
		"wrong type":    strings.Replace(s, `"version":1`, `"version":"1"`, 1),
	} {
		var d doc
		if err := Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
	var d2 doc
	if err := Unmarshal([]byte(strings.Replace(s, `"name":"bob\u003c"`, `"name":"secret"`, 1)+" "), &d2); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
	if err := Unmarshal([]byte(`{"version":"topsecret"}`), &d2); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error quotes the value: %v", err)
	}
	two, _ := json.Marshal(doc{Key: []byte{1, 2}})
	if err := Unmarshal([]byte(strings.Replace(string(two), `"AQI="`, `"AQJ="`, 1)), &d2); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("non-canonical base64: %v", err)
	}
}
