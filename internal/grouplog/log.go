package grouplog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hushmsg/hush/internal/content"
)

// State is a group as its entries leave it.
type State struct {
	ID      content.GroupID
	Name    string
	Members []string // sorted
	Admins  []string // sorted, members all
	// Epoch is the highest epoch of the entries taken into account, and
	// Head the hash of the last of them (in the order of the rule): a new
	// entry extends them.
	Epoch uint64
	Head  Hash
}

// IsMember reports whether name is a member.
func (s *State) IsMember(name string) bool {
	_, ok := slices.BinarySearch(s.Members, name)
	return ok
}

// IsAdmin reports whether name is an admin.
func (s *State) IsAdmin(name string) bool {
	_, ok := slices.BinarySearch(s.Admins, name)
	return ok
}

// Check says why s does not allow e, a change that comes after it (nil if
// it does).
func (s *State) Check(e *Entry) error {
	_, err := s.apply(e)
	return err
}

// ErrRefused is the error of a change the state it extends does not allow.
var ErrRefused = errors.New("grouplog: change refused")

func refused(why string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(why, a...))
}

// Reason is the reason of an ErrRefused, in words for people.
func Reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrRefused.Error()+": ")
}

// apply returns the state e leads to from s, or why s does not allow it.
// s is not changed. For a create entry s is the zero State.
func (s *State) apply(e *Entry) (*State, error) {
	n, err := s.change(e)
	if err == nil {
		n.Epoch, n.Head = max(s.Epoch, e.Epoch), e.hash
	}
	return n, err
}

func (s *State) change(e *Entry) (*State, error) {
	if e.Action == Create {
		if s.Epoch != 0 {
			return nil, refused("a group is created once")
		}
		if !slices.Contains(e.Members, e.Actor) {
			return nil, refused("the creator is not a member")
		}
		return &State{ID: e.Group(), Name: e.Name, Members: slices.Clone(e.Members), Admins: []string{e.Actor}, Epoch: 1, Head: e.hash}, nil
	}
	n := &State{ID: s.ID, Name: s.Name, Members: slices.Clone(s.Members), Admins: slices.Clone(s.Admins)}
	if e.Action == Leave {
		if !s.IsMember(e.Actor) {
			return nil, refused("%s is not a member", e.Actor)
		}
		n.Members = remove(n.Members, e.Actor)
		n.Admins = remove(n.Admins, e.Actor)
		if len(n.Admins) == 0 && len(n.Members) > 0 {
			// The last admin left: the first remaining member by name
			// becomes admin, so that the group can still change.
			n.Admins = []string{n.Members[0]}
		}
		return n, nil
	}
	if !s.IsAdmin(e.Actor) {
		return nil, refused("%s is not an admin", e.Actor)
	}
	switch e.Action {
	case Add:
		for _, m := range e.Members {
			if s.IsMember(m) {
				return nil, refused("%s is a member already", m)
			}
		}
		if len(s.Members)+len(e.Members) > MaxMembers {
			return nil, refused("a group has at most %d members", MaxMembers)
		}
		n.Members = append(n.Members, e.Members...)
		slices.Sort(n.Members)
	case Remove:
		for _, m := range e.Members {
			if !s.IsMember(m) {
				return nil, refused("%s is not a member", m)
			}
			if m == e.Actor {
				return nil, refused("an admin leaves rather than removing themselves")
			}
			n.Members = remove(n.Members, m)
			n.Admins = remove(n.Admins, m)
		}
	case Rename:
		n.Name = e.Name
	case MakeAdmin:
		for _, m := range e.Members {
			if !s.IsMember(m) || s.IsAdmin(m) {
				return nil, refused("%s is not a member, or an admin already", m)
			}
		}
		n.Admins = append(n.Admins, e.Members...)
		slices.Sort(n.Admins)
	default:
		return nil, refused("unknown action")
	}
	return n, nil
}

func remove(s []string, x string) []string {
	if i, ok := slices.BinarySearch(s, x); ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// Log is the entries of one group that a member holds. Entries are added
// in any order; [Log.State] follows the ordering rule (package doc).
type Log struct {
	genesis  *Entry
	entries  map[Hash]*Entry
	children map[Hash][]*Entry // by parent, sorted by hash
}

// New starts the log of the group that create (a create entry) makes.
func New(create *Entry) (*Log, error) {
	if create.Action != Create {
		return nil, refused("a log starts with a create entry")
	}
	if _, err := (&State{}).apply(create); err != nil {
		return nil, err
	}
	return &Log{genesis: create, entries: map[Hash]*Entry{create.hash: create}, children: make(map[Hash][]*Entry)}, nil
}

// ID is the group's id.
func (l *Log) ID() content.GroupID { return l.genesis.Group() }

// Len is how many entries the log holds.
func (l *Log) Len() int { return len(l.entries) }

// Has reports whether the log holds the entry with hash h.
func (l *Log) Has(h Hash) bool { return l.entries[h] != nil }

// ErrFull: the log holds MaxEntries entries.
var ErrFull = errors.New("grouplog: the group's log is full")

// Add adds e, whose signature the caller checked, and reports whether it
// was new. A second create entry is refused; an entry whose parent is not
// here yet is kept until it comes.
func (l *Log) Add(e *Entry) (bool, error) {
	if l.entries[e.hash] != nil {
		return false, nil
	}
	if e.Action == Create {
		return false, refused("a group is created once")
	}
	if len(l.entries) >= MaxEntries {
		return false, ErrFull
	}
	l.entries[e.hash] = e
	cs := l.children[e.Prev]
	i, _ := slices.BinarySearchFunc(cs, e.hash, func(c *Entry, h Hash) int { return bytes.Compare(c.hash[:], h[:]) })
	l.children[e.Prev] = slices.Insert(cs, i, e)
	return true, nil
}

// State follows the ordering rule (package doc): the entries that reach
// the create entry through their parents, in the order of (epoch, hash),
// each taken if the state so far allows it. It returns the state they
// end in and the entries it took, in order.
func (l *Log) State() (*State, []*Entry) {
	s, _ := (&State{}).apply(l.genesis)
	taken := []*Entry{l.genesis}
	for _, e := range l.reachable()[1:] {
		if n, err := s.apply(e); err == nil {
			s = n
			taken = append(taken, e)
		} else {
			s.Epoch = max(s.Epoch, e.Epoch)
		}
	}
	if last := taken[len(taken)-1]; s.Epoch > last.Epoch {
		// A new entry comes after every entry here, taken or not.
		s.Head = l.highest().hash
	}
	return s, taken
}

// reachable lists the entries whose parents lead to the create entry, in
// the order of (epoch, hash).
func (l *Log) reachable() []*Entry {
	out := []*Entry{l.genesis}
	for i := 0; i < len(out); i++ {
		for _, c := range l.children[out[i].hash] {
			if c.Epoch > out[i].Epoch {
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, byEpochHash)
	return out
}

func (l *Log) highest() *Entry {
	r := l.reachable()
	return r[len(r)-1]
}

func byEpochHash(a, b *Entry) int {
	if a.Epoch != b.Epoch {
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.hash[:], b.hash[:])
}

// Orphaned lists the entries of actor that State does not take though
// they reach the create entry: changes that a concurrent one, coming
// first in the order, made impossible (two admins removed the same
// person), in order.
func (l *Log) Orphaned(actor string) []*Entry {
	_, taken := l.State()
	on := make(map[Hash]bool, len(taken))
	for _, e := range taken {
		on[e.hash] = true
	}
	var out []*Entry
	for _, e := range l.reachable() {
		if e.Actor == actor && !on[e.hash] {
			out = append(out, e)
		}
	}
	return out
}

// Entries returns every entry's encoding, the create entry first, then by
// epoch and hash: what a member keeps, and what a new member is sent.
func (l *Log) Entries() [][]byte {
	es := make([]*Entry, 0, len(l.entries))
	for _, e := range l.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, byEpochHash)
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.raw
	}
	return out
}
