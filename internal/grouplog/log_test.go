package grouplog

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/key"
)

var t0 = time.UnixMilli(1764600000000)

type people map[string]*key.IdentityKeyPair

func newPeople(t testing.TB, names ...string) people {
	p := make(people)
	for _, n := range names {
		ik, err := key.GenerateIdentityKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p[n] = ik
	}
	return p
}

// add verifies e with its actor's key, as a client does, and adds it.
func (p people) add(t testing.TB, l *Log, e *Entry) bool {
	t.Helper()
	if !e.Verify(p[e.Actor].Public) {
		t.Fatalf("entry of %s does not verify", e.Actor)
	}
	ok, err := l.Add(e)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestCreateAndChange(t *testing.T) {
	p := newPeople(t, "alice", "bob", "carol", "dave")
	c := must[*Entry](t)(NewCreate(rand.Reader, p["alice"], "alice", "Friends", []string{"carol", "bob"}, t0))
	l := must[*Log](t)(New(c))
	s, _ := l.State()
	if s.Name != "Friends" || !slices.Equal(s.Members, []string{"alice", "bob", "carol"}) || !slices.Equal(s.Admins, []string{"alice"}) || s.Epoch != 1 {
		t.Fatalf("created %+v", s)
	}
	if s.ID != c.Group() || c.Group() != [16]byte(c.hash[:16]) {
		t.Fatal("the group id is not the create entry's hash")
	}
	steps := []struct {
		actor   string
		action  Action
		members []string
		name    string
	}{
		{"alice", Add, []string{"dave"}, ""},
		{"alice", MakeAdmin, []string{"bob"}, ""},
		{"bob", Rename, nil, "Old friends"},
		{"bob", Remove, []string{"carol"}, ""},
		{"alice", Leave, nil, ""},
	}
	for _, st := range steps {
		e := must[*Entry](t)(NewChange(rand.Reader, p[st.actor], s, st.actor, st.action, st.members, st.name, t0))
		if !p.add(t, l, e) {
			t.Fatal("not new")
		}
		s, _ = l.State()
	}
	want := &State{ID: c.Group(), Name: "Old friends", Members: []string{"bob", "dave"}, Admins: []string{"bob"}, Epoch: 6, Head: s.Head}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	// The last admin leaves: the first member by name becomes one.
	e := must[*Entry](t)(NewChange(rand.Reader, p["bob"], s, "bob", Leave, nil, "", t0))
	p.add(t, l, e)
	if s, _ = l.State(); !slices.Equal(s.Admins, []string{"dave"}) || !slices.Equal(s.Members, []string{"dave"}) {
		t.Fatalf("after the last admin left: %+v", s)
	}
	// Parse reads back every entry, hash and signature alike.
	for _, b := range l.Entries() {
		e, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Verify(p[e.Actor].Public) || string(e.Bytes()) != string(b) {
			t.Fatal("parsed entry differs")
		}
	}
}

// TestRefused: changes the state does not allow are refused when made,
// and ignored in a log (the abuse cases of issue 10).
func TestRefused(t *testing.T) {
	p := newPeople(t, "alice", "bob", "carol", "mallory")
	c := must[*Entry](t)(NewCreate(rand.Reader, p["alice"], "alice", "g", []string{"bob"}, t0))
	l := must[*Log](t)(New(c))
	s, _ := l.State()
	many := make([]string, MaxMembers)
	for i := range many {
		many[i] = fmt.Sprintf("user%04d", i)
	}
	for name, f := range map[string]func() (*Entry, error){
		"non-admin adds": func() (*Entry, error) {
			return NewChange(rand.Reader, p["bob"], s, "bob", Add, []string{"carol"}, "", t0)
		},
		"non-member adds": func() (*Entry, error) {
			return NewChange(rand.Reader, p["mallory"], s, "mallory", Add, []string{"mallory"}, "", t0)
		},
		"non-member leaves": func() (*Entry, error) { return NewChange(rand.Reader, p["mallory"], s, "mallory", Leave, nil, "", t0) },
		"remove a stranger": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Remove, []string{"carol"}, "", t0)
		},
		"remove oneself": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Remove, []string{"alice"}, "", t0)
		},
		"add a member": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Add, []string{"bob"}, "", t0)
		},
		"over the limit": func() (*Entry, error) { return NewChange(rand.Reader, p["alice"], s, "alice", Add, many, "", t0) },
		"control characters": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Rename, nil, "x\x1b]0;pwned\a", t0)
		},
		"bidi override": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Rename, nil, "abc\u202edef", t0)
		},
		"long name": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Rename, nil, strings.Repeat("é", MaxNameLen+1), t0)
		},
		"second create": func() (*Entry, error) {
			return NewChange(rand.Reader, p["alice"], s, "alice", Create, []string{"bob"}, "g", t0)
		},
	} {
		if e, err := f(); err == nil {
			t.Errorf("%s: made %v", name, e)
		}
	}
	// Made by hand past NewChange's checks, they are ignored by State.
	forge := func(actor string, a Action, members []string) *Entry {
		e := &Entry{Epoch: 2, Prev: s.Head, Actor: actor, Action: a, Members: members, At: t0}
		return must[*Entry](t)(sign(rand.Reader, p[actor], e))
	}
	for _, e := range []*Entry{forge("bob", Add, []string{"carol"}), forge("mallory", Add, []string{"mallory"}), forge("mallory", Leave, nil)} {
		p.add(t, l, e)
	}
	if got, taken := l.State(); got.Name != s.Name || !slices.Equal(got.Members, s.Members) || !slices.Equal(got.Admins, s.Admins) || len(taken) != 1 {
		t.Fatalf("a refused change took effect: %+v", got)
	}
	// A create for more than MaxMembers, or with a bad name, is not made.
	if _, err := NewCreate(rand.Reader, p["alice"], "alice", "big", append(many, "zed"), t0); err == nil {
		t.Error("a group of 1,001 made")
	}
	if _, err := NewCreate(rand.Reader, p["alice"], "alice", "a\nb", nil, t0); err == nil {
		t.Error("a name with a newline made")
	}
	// Exactly MaxMembers is fine.
	big := must[*Entry](t)(NewCreate(rand.Reader, p["alice"], "alice", "big", append(many[:MaxMembers-1], "alice"), t0))
	if len(big.Members) != MaxMembers {
		t.Fatal(len(big.Members))
	}
	if _, err := Parse(big.Bytes()); err != nil {
		t.Fatal(err)
	}
	// A second create for a log is refused; a replayed entry is not new.
	if _, err := l.Add(c); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(big); !errors.Is(err, ErrRefused) {
		t.Errorf("second create: %v", err)
	}
}

// TestForgedSignature: an entry whose signature is not its actor's does
// not verify; a changed byte breaks the signature or the encoding.
func TestForgedSignature(t *testing.T) {
	p := newPeople(t, "alice", "mallory")
	c := must[*Entry](t)(NewCreate(rand.Reader, p["alice"], "alice", "g", []string{"mallory"}, t0))
	s := must[*Log](t)(New(c))
	st, _ := s.State()
	e := &Entry{Epoch: 2, Prev: st.Head, Actor: "alice", Action: Remove, Members: []string{"mallory"}, At: t0}
	forged := must[*Entry](t)(sign(rand.Reader, p["mallory"], e))
	if forged.Verify(p["alice"].Public) {
		t.Fatal("mallory's signature verifies as alice's")
	}
	good := must[*Entry](t)(NewChange(rand.Reader, p["alice"], st, "alice", Rename, nil, "h", t0))
	b := good.Bytes()
	for i := range b {
		x := slices.Clone(b)
		x[i] ^= 0x01
		e, err := Parse(x)
		if err == nil && e.Verify(p["alice"].Public) {
			t.Fatalf("byte %d changed: still verifies", i)
		}
	}
}

// TestAnyDeliveryOrder is the property of issue 10: whatever the order in
// which changes are made (concurrently by several admins, each on what it
// has seen) and delivered, every member who got them all ends in the same
// state. Seeded random runs; each run prints its seed on failure.
func TestAnyDeliveryOrder(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 20
	}
	names := []string{"ann", "ben", "cat", "dan", "eve", "fay", "gus"}
	p := newPeople(t, names...)
	for run := range runs {
		seed := uint64(run)
		r := mrand.New(mrand.NewPCG(seed, 42))
		c := must[*Entry](t)(NewCreate(rand.Reader, p["ann"], "ann", "g", names[:4], t0))
		logs := make(map[string]*Log)
		inbox := make(map[string][]*Entry)
		for _, n := range names {
			logs[n] = must[*Log](t)(New(c))
		}
		var all []*Entry
		for step := 0; step < 40; step++ {
			// Someone delivers a few waiting entries, in random order.
			for _, n := range names {
				for k := r.IntN(3); k > 0 && len(inbox[n]) > 0; k-- {
					i := r.IntN(len(inbox[n]))
					p.add(t, logs[n], inbox[n][i])
					inbox[n] = slices.Delete(inbox[n], i, i+1)
				}
			}
			// Someone changes the group on the state they see.
			actor := names[r.IntN(len(names))]
			s, _ := logs[actor].State()
			var e *Entry
			var err error
			switch r.IntN(5) {
			case 0:
				e, err = NewChange(rand.Reader, p[actor], s, actor, Add, []string{names[r.IntN(len(names))]}, "", t0)
			case 1:
				e, err = NewChange(rand.Reader, p[actor], s, actor, Remove, []string{names[r.IntN(len(names))]}, "", t0)
			case 2:
				e, err = NewChange(rand.Reader, p[actor], s, actor, Leave, nil, "", t0)
			case 3:
				e, err = NewChange(rand.Reader, p[actor], s, actor, Rename, nil, fmt.Sprintf("name %d", step), t0)
			case 4:
				e, err = NewChange(rand.Reader, p[actor], s, actor, MakeAdmin, []string{names[r.IntN(len(names))]}, "", t0)
			}
			if err != nil {
				continue // not allowed on what they see
			}
			all = append(all, e)
			p.add(t, logs[actor], e)
			for _, n := range names {
				if n != actor {
					inbox[n] = append(inbox[n], e)
				}
			}
		}
		for _, n := range names {
			r.Shuffle(len(inbox[n]), func(i, j int) { inbox[n][i], inbox[n][j] = inbox[n][j], inbox[n][i] })
			for _, e := range inbox[n] {
				p.add(t, logs[n], e)
			}
		}
		want, _ := logs[names[0]].State()
		for _, n := range names[1:] {
			if got, _ := logs[n].State(); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: %s ends in %+v, %s in %+v (%d changes)", seed, n, got, names[0], want, len(all))
			}
		}
	}
}

// TestConcurrent: two changes made at the same time on the same state are
// applied in the order of their hashes, both when both are still allowed,
// the second skipped (and its author can tell) when the first made it
// impossible.
func TestConcurrent(t *testing.T) {
	p := newPeople(t, "alice", "bob", "carol")
	c := must[*Entry](t)(NewCreate(rand.Reader, p["alice"], "alice", "g", []string{"bob", "carol"}, t0))
	l := must[*Log](t)(New(c))
	s, _ := l.State()
	p.add(t, l, must[*Entry](t)(NewChange(rand.Reader, p["alice"], s, "alice", MakeAdmin, []string{"bob"}, "", t0)))
	s, _ = l.State()
	a := must[*Entry](t)(NewChange(rand.Reader, p["alice"], s, "alice", Rename, nil, "from alice", t0))
	b := must[*Entry](t)(NewChange(rand.Reader, p["bob"], s, "bob", Rename, nil, "from bob", t0))
	p.add(t, l, b)
	p.add(t, l, a)
	first, second := a, b
	if string(b.hash[:]) < string(a.hash[:]) {
		first, second = b, a
	}
	if s, taken := l.State(); s.Name != second.Name || len(taken) != 4 {
		t.Fatalf("name %q after %d entries, want %q after 4", s.Name, len(taken), second.Name)
	}
	s, _ = l.State()
	ra := must[*Entry](t)(NewChange(rand.Reader, p["alice"], s, "alice", Remove, []string{"carol"}, "", t0))
	rb := must[*Entry](t)(NewChange(rand.Reader, p["bob"], s, "bob", Remove, []string{"carol"}, "", t0))
	p.add(t, l, ra)
	p.add(t, l, rb)
	first, second = ra, rb
	if string(rb.hash[:]) < string(ra.hash[:]) {
		first, second = rb, ra
	}
	if s, _ := l.State(); s.IsMember("carol") {
		t.Fatal("carol still a member")
	}
	if o := l.Orphaned(second.Actor); len(o) != 1 || o[0] != second {
		t.Fatalf("orphaned: %v", o)
	}
	if o := l.Orphaned(first.Actor); len(o) != 0 {
		t.Fatalf("the first orphaned: %v", o)
	}
	// A change made on a state that missed others still comes after them.
	s, _ = l.State()
	if e := must[*Entry](t)(NewChange(rand.Reader, p["bob"], s, "bob", Leave, nil, "", t0)); e.Epoch <= second.Epoch {
		t.Fatalf("epoch %d after %d", e.Epoch, second.Epoch)
	}
}

func FuzzParse(f *testing.F) {
	p := newPeople(f, "alice", "bob")
	c := must[*Entry](f)(NewCreate(rand.Reader, p["alice"], "alice", "Friends ✓", []string{"bob"}, t0))
	f.Add(c.Bytes())
	l := must[*Log](f)(New(c))
	s, _ := l.State()
	for _, a := range []Action{Add, Remove, Rename, MakeAdmin, Leave} {
		var ms []string
		var name string
		switch a {
		case Add:
			ms = []string{"carol", "dave"}
		case Remove, MakeAdmin:
			ms = []string{"bob"}
		case Rename:
			name = "new"
		}
		if e, err := NewChange(rand.Reader, p["alice"], s, "alice", a, ms, name, t0); err == nil {
			f.Add(e.Bytes())
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			if e != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with %v", err, e)
			}
			return
		}
		if string(e.Bytes()) != string(b) {
			t.Fatal("parsed entry re-encodes differently")
		}
		if err := e.check(); err != nil {
			t.Fatal(err)
		}
		if e.Action == Create {
			if _, err := New(e); err != nil && !errors.Is(err, ErrRefused) {
				t.Fatal(err)
			}
		}
	})
}
