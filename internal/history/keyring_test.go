package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/content"
)

var t0 = time.UnixMilli(1764100000123)

func TestKeyring(t *testing.T) {
	r := NewKeyring(t0)
	first := r.Current()
	if first.ID == 0 || !first.Created.Equal(t0) || len(r.Epochs()) != 1 {
		t.Fatalf("new keyring: %v", r.Epochs())
	}
	// Rotate with a clock that went back: the new epoch is still current.
	e2, err := r.Rotate(t0.Add(-time.Hour))
	if err != nil || r.Current().ID != e2.ID || !e2.Created.After(first.Created) {
		t.Fatalf("rotate: %v %v, current %v", e2, err, r.Current())
	}
	// An older epoch from another device goes in order, not as current.
	old := NewEpoch(t0.Add(-time.Minute))
	if added, err := r.Add(old); !added || err != nil || r.Current().ID != e2.ID || r.Epochs()[0].ID != old.ID {
		t.Fatalf("add old: %v %v %v", added, err, r.Epochs())
	}
	if added, err := r.Add(old); added || err != nil {
		t.Fatalf("add again: %v %v", added, err)
	}
	bad := old
	bad.Key = NewEpoch(t0).Key
	if _, err := r.Add(bad); !errors.Is(err, ErrEpochConflict) || len(r.Epochs()) != 3 {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := r.Add(Epoch{}); err == nil {
		t.Fatal("added epoch 0")
	}
	if got, ok := r.Epoch(e2.ID); !ok || !got.Key.Equal(&e2.Key) {
		t.Fatal("Epoch(id)")
	}
	if _, ok := r.Epoch(12345); ok {
		t.Fatal("found an unknown epoch")
	}

	// Content messages carry epochs between devices.
	c := e2.Content()
	back, err := EpochFromContent(c, e2.Created)
	if err != nil || back.ID != e2.ID || !back.Key.Equal(&e2.Key) {
		t.Fatalf("content round trip: %v %v", back, err)
	}
	if _, err := EpochFromContent(&content.HistoryEpoch{}, t0); err == nil {
		t.Fatal("epoch 0 from content")
	}

	// Full.
	full := NewKeyring(t0)
	for len(full.epochs) < MaxEpochs {
		if _, err := full.Rotate(t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := full.Rotate(t0); err == nil || len(full.epochs) != MaxEpochs {
		t.Fatalf("rotated a full keyring: %v", err)
	}
}

func TestMerge(t *testing.T) {
	a := NewKeyring(t0)
	b, err := ParseKeyring(a.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ea, _ := a.Rotate(t0.Add(time.Second))
	eb, _ := b.Rotate(t0.Add(2 * time.Second))
	if n, err := a.Merge(b); n != 1 || err != nil || a.Current().ID != eb.ID {
		t.Fatalf("merge: %d %v", n, err)
	}
	if n, err := b.Merge(a); n != 1 || err != nil || !bytes.Equal(a.Marshal(), b.Marshal()) {
		t.Fatalf("merge back: %d %v", n, err)
	}
	if _, ok := b.Epoch(ea.ID); !ok {
		t.Fatal("epoch lost")
	}
	// Another account: refused, nothing changes.
	before := a.Marshal()
	if _, err := a.Merge(NewKeyring(t0)); err == nil || !bytes.Equal(a.Marshal(), before) {
		t.Fatalf("merged another account: %v", err)
	}
	// A conflicting epoch: refused, nothing changes (not even the other,
	// new epoch of the same keyring).
	c, _ := ParseKeyring(a.Marshal())
	c.Rotate(t0.Add(time.Hour))
	c.epochs[0].Key = NewEpoch(t0).Key
	if _, err := a.Merge(c); !errors.Is(err, ErrEpochConflict) || !bytes.Equal(a.Marshal(), before) {
		t.Fatalf("merged a conflict: %v", err)
	}
}

func TestKeyringEncoding(t *testing.T) {
	r := NewKeyring(t0)
	r.Rotate(t0.Add(time.Second))
	b := r.Marshal()
	got, err := ParseKeyring(b)
	if err != nil || !bytes.Equal(got.Marshal(), b) || !got.SameAccount(r) || got.Current().ID != r.Current().ID {
		t.Fatalf("round trip: %v", err)
	}
	var j keyringJSON
	json.Unmarshal(b, &j)
	enc := func(f func(j *keyringJSON)) []byte {
		var c keyringJSON
		json.Unmarshal(b, &c)
		c.Epochs = append([]epochJSON(nil), c.Epochs...)
		f(&c)
		out, _ := json.Marshal(c)
		return out
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"short id key":   enc(func(j *keyringJSON) { j.IDKey = j.IDKey[:31] }),
		"no epochs":      enc(func(j *keyringJSON) { j.Epochs = nil }),
		"epoch id 0":     enc(func(j *keyringJSON) { j.Epochs[0].ID = 0 }),
		"short key":      enc(func(j *keyringJSON) { j.Epochs[1].Key = j.Epochs[1].Key[1:] }),
		"out of order":   enc(func(j *keyringJSON) { j.Epochs[0], j.Epochs[1] = j.Epochs[1], j.Epochs[0] }),
		"duplicate id":   enc(func(j *keyringJSON) { j.Epochs[1].ID = j.Epochs[0].ID }),
		"negative time":  enc(func(j *keyringJSON) { j.Epochs[0].Created = -1 }),
		"too many":       enc(func(j *keyringJSON) { j.Epochs = make([]epochJSON, MaxEpochs+1) }),
		"unknown field":  bytes.Replace(b, []byte(`{`), []byte(`{"x":1,`), 1),
		"spaces":         append(b, ' '),
		"trailing":       append(b, '{', '}'),
		"null":           []byte("null"),
		"upper case key": bytes.Replace(b, []byte(`"idKey"`), []byte(`"IDKey"`), 1),
	} {
		if r, err := ParseKeyring(bad); err == nil || r != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeyringSecrets(t *testing.T) {
	r := NewKeyring(t0)
	e := r.Current()
	key := fmt.Sprintf("%x", e.Key.k[:4])
	for _, s := range []string{fmt.Sprint(e), fmt.Sprintf("%+v %#v %v", e, e, e.Key), fmt.Sprintf("%+v %v", r, *r)} {
		if strings.Contains(s, key) || strings.Contains(s, fmt.Sprint(e.Key.k[0])+" ") {
			t.Errorf("key printed: %s", s)
		}
	}
	_, err := ParseKeyring(bytes.Replace(r.Marshal(), []byte(`"idKey"`), []byte(`"idkey"`), 1))
	if err == nil {
		t.Fatal("accepted")
	}
}

// FuzzParseKeyring: never panics; what it accepts re-encodes to the same
// bytes.
func FuzzParseKeyring(f *testing.F) {
	r := NewKeyring(t0)
	f.Add(r.Marshal())
	r.Rotate(t0)
	f.Add(r.Marshal())
	f.Add([]byte(`{"idKey":"","epochs":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseKeyring(b)
		if err != nil {
			if r != nil {
				t.Fatal("keyring with an error")
			}
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("not canonical")
		}
	})
}
