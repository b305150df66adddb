package grouplog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/hushmsg/hush/internal/content"
)

// State is a group as a chain of entries leaves it.
type State struct {
	ID      content.GroupID
	Name    string
	Members []string // sorted
	Admins  []string // sorted, members all
	Epoch   uint64
	Head    Hash
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

// ErrRefused is the error of a change the state it extends does not allow.
var ErrRefused = errors.New("grouplog: change refused")

func refused(why string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(why, a...))
}

// apply returns the state e leads to from s, or why s does not allow it.
// s is not changed. For a create entry s is the zero State.
func (s *State) apply(e *Entry) (*State, error) {
	if e.Action == Create {
		if s.Epoch != 0 {
			return nil, refused("a group is created once")
		}
		if !slices.Contains(e.Members, e.Actor) {
			return nil, refused("the creator is not a member")
		}
		return &State{ID: e.Group(), Name: e.Name, Members: slices.Clone(e.Members), Admins: []string{e.Actor}, Epoch: 1, Head: e.hash}, nil
	}
	if e.Epoch != s.Epoch+1 || e.Prev != s.Head {
		return nil, refused("the change does not extend this state")
	}
	n := &State{ID: s.ID, Name: s.Name, Members: slices.Clone(s.Members), Admins: slices.Clone(s.Admins), Epoch: e.Epoch, Head: e.hash}
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

// State follows the ordering rule from the create entry and returns the
// state it ends in and the chain of entries it took, oldest first.
func (l *Log) State() (*State, []*Entry) {
	s, _ := (&State{}).apply(l.genesis)
	chain := []*Entry{l.genesis}
	for {
		var next *State
		for _, c := range l.children[s.Head] { // lowest hash first
			if n, err := s.apply(c); err == nil {
				next = n
				chain = append(chain, c)
				break
			}
		}
		if next == nil {
			return s, chain
		}
		s = next
	}
}

// Orphaned lists the entries of actor that are not on the chain State
// takes, though their parent is: changes that lost to a concurrent one and
// that their author may make again.
func (l *Log) Orphaned(actor string) []*Entry {
	_, chain := l.State()
	on := make(map[Hash]bool, len(chain))
	for _, e := range chain {
		on[e.hash] = true
	}
	var out []*Entry
	for _, e := range l.entries {
		if e.Actor == actor && !on[e.hash] && on[e.Prev] {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Entry) int { return bytes.Compare(a.hash[:], b.hash[:]) })
	return out
}

// Entries returns every entry's encoding, the create entry first, then by
// epoch and hash: what a member keeps, and what a new member is sent.
func (l *Log) Entries() [][]byte {
	es := make([]*Entry, 0, len(l.entries))
	for _, e := range l.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *Entry) int {
		if a.Epoch != b.Epoch {
			if a.Epoch < b.Epoch {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.raw
	}
	return out
}
