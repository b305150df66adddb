// Package grouplog is the membership log of a hush group (docs/groups.md,
// "Membership changes"): signed entries chained by hash, and the rule that
// makes every member apply them in the same order. It is pure: no store,
// no network, no clock.
//
// A group starts with a create entry; its id is the first 16 bytes of that
// entry's hash, so no second create can claim it. Every later entry names
// its parent (the last entry its author had seen) by hash and carries a
// higher epoch than the parent's, and is signed (XEdDSA) by the account
// identity key of the username who made it.
//
// The ordering rule. The state of a group is a pure function of the set of
// entries a member holds: take the entries whose parents lead back to the
// create entry (one whose parent has not arrived waits), sort them by
// (epoch, hash), and apply each in turn if the state so far allows it (its
// actor is an admin then, or a member leaving; the people it names are, or
// are not, members; the limits hold); skip it otherwise. Two admins who
// change the group at the same time make two entries of the same epoch:
// every member applies them in the same order, whatever the order in which
// they arrived; both take effect when both are still allowed (a rename and
// an add), and the second is skipped when the first made it impossible
// (both removed the same person: [Log.Orphaned]). So members who hold the
// same entries are in the same state ([Log.State]), and delivery order
// does not matter.
//
// The entry points are [NewCreate] and [NewChange] (make and sign an
// entry), [Parse] (read one), [New] and [Log.Add] (collect them) and
// [Log.State].
package grouplog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/internal/termsafe"
	"github.com/hushmsg/hush/key"
)

/* Implementation constants (docs/groups.md, "Limits") */

const (
	// MaxMembers is the most members a group has.
	MaxMembers = 1000
	// MaxNameLen is the longest group name, in characters (as a display name).
	MaxNameLen = api.MaxDisplayNameLen
	// MaxEntries is the most entries a log holds, and a group control carries.
	MaxEntries = content.MaxGroupEntries
	// HashSize is the length of an entry's hash.
	HashSize = sha256.Size
	// NonceSize is the length of a create entry's nonce.
	NonceSize = 16

	// signLabel separates the signature of an entry from every other use
	// of the account identity key (which also signs prekeys).
	signLabel = "hush group entry v1"
)

// Action is what an entry does.
type Action uint32

// Actions (contentpb/content.proto, GroupEntry.action).
const (
	Create    Action = 1 // a new group: Members (the creator among them), Name
	Add       Action = 2 // add Members
	Remove    Action = 3 // remove Members (not the actor: Leave)
	Leave     Action = 4 // the actor leaves
	Rename    Action = 5 // the group is called Name
	MakeAdmin Action = 6 // Members become admins
)

func (a Action) String() string {
	switch a {
	case Create:
		return "create"
	case Add:
		return "add"
	case Remove:
		return "remove"
	case Leave:
		return "leave"
	case Rename:
		return "rename"
	case MakeAdmin:
		return "make admin"
	}
	return fmt.Sprintf("action(%d)", uint32(a))
}

// Field numbers of GroupEntry.
const (
	fEpoch     = 1
	fPrev      = 2
	fActor     = 3
	fAction    = 4
	fMembers   = 5
	fName      = 6
	fNonce     = 7
	fAt        = 8
	fSignature = 15
)

// Hash is an entry's hash: SHA-256 of its encoding.
type Hash [HashSize]byte

func (h Hash) String() string { return fmt.Sprintf("%x", h[:8]) }

// Entry is one signed change of a group.
type Entry struct {
	Epoch   uint64
	Prev    Hash // zero for Create
	Actor   string
	Action  Action
	Members []string // sorted, no duplicates
	Name    string
	Nonce   []byte // Create only
	At      time.Time

	sig  [key.SignatureSize]byte
	raw  []byte
	hash Hash
}

// ErrMalformed is the error of an entry this version cannot read.
var ErrMalformed = errors.New("grouplog: malformed entry")

// Bytes is the entry's encoding.
func (e *Entry) Bytes() []byte { return e.raw }

// Hash is the entry's hash.
func (e *Entry) Hash() Hash { return e.hash }

// Group is the id of the group a create entry makes.
func (e *Entry) Group() content.GroupID {
	var g content.GroupID
	copy(g[:], e.hash[:])
	return g
}

// signed is the encoding of the fields the signature covers: all but it.
func (e *Entry) signed() []byte {
	b := make([]byte, 0, 64+len(e.Name)+len(e.Members)*(2+api.MaxUsernameLen))
	b = pbwire.AppendVarint(b, fEpoch, e.Epoch)
	if e.Prev != (Hash{}) {
		b = pbwire.AppendBytes(b, fPrev, e.Prev[:])
	}
	b = pbwire.AppendBytes(b, fActor, []byte(e.Actor))
	b = pbwire.AppendVarint(b, fAction, uint64(e.Action))
	for _, m := range e.Members {
		b = pbwire.AppendBytes(b, fMembers, []byte(m))
	}
	b = pbwire.AppendBytes(b, fName, []byte(e.Name))
	b = pbwire.AppendBytes(b, fNonce, e.Nonce)
	b = pbwire.AppendVarint(b, fAt, uint64(e.At.UnixMilli()))
	return b
}

func (e *Entry) seal(signed []byte) {
	e.raw = pbwire.AppendBytes(signed, fSignature, e.sig[:])
	e.hash = sha256.Sum256(e.raw)
}

// Verify reports whether the entry is signed by k, the account identity
// key of its actor.
func (e *Entry) Verify(k key.IdentityKey) bool {
	return k.Verify(e.sig[:], []byte(signLabel), e.raw[:len(e.raw)-2-key.SignatureSize])
}

// NewCreate makes and signs the create entry of a new group of members
// (the creator among them: added if missing) called name.
func NewCreate(rand io.Reader, ik *key.IdentityKeyPair, actor, name string, members []string, at time.Time) (*Entry, error) {
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	ms := slices.Clone(members)
	if !slices.Contains(ms, actor) {
		ms = append(ms, actor)
	}
	slices.Sort(ms)
	e := &Entry{Epoch: 1, Actor: actor, Action: Create, Members: slices.Compact(ms), Name: name, Nonce: nonce, At: at}
	return sign(rand, ik, e)
}

// NewChange makes and signs a change of the group whose state is s, made
// by actor: it extends s's head. It checks the change against s.
func NewChange(rand io.Reader, ik *key.IdentityKeyPair, s *State, actor string, action Action, members []string, name string, at time.Time) (*Entry, error) {
	ms := slices.Clone(members)
	slices.Sort(ms)
	e := &Entry{Epoch: s.Epoch + 1, Prev: s.Head, Actor: actor, Action: action, Members: slices.Compact(ms), Name: name, At: at}
	if action == Create {
		return nil, errors.New("grouplog: a change cannot create a group")
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if _, err := s.apply(e); err != nil {
		return nil, err
	}
	return sign(rand, ik, e)
}

func sign(rand io.Reader, ik *key.IdentityKeyPair, e *Entry) (*Entry, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	signed := e.signed()
	sig, err := ik.Private.Sign(rand, []byte(signLabel), signed)
	if err != nil {
		return nil, err
	}
	e.sig = sig
	e.seal(signed)
	return e, nil
}

// CheckName reports whether name may be a group's name: 1 to MaxNameLen
// characters, none of them a control or invisible formatting character
// (as a display name, internal/termsafe).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("a group's name may not be empty")
	case !termsafe.IsLine(name):
		return fmt.Errorf("a group's name may not contain control characters or invisible formatting characters (such as U+202E or U+200B): %q", name)
	case utf8.RuneCountInString(name) > MaxNameLen:
		return fmt.Errorf("a group's name is too long: at most %d characters", MaxNameLen)
	}
	return nil
}

// check refuses what Parse refuses: the shape of each action.
func (e *Entry) check() error {
	bad := func(why string, a ...any) error { return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(why, a...)) }
	if !api.ValidUsername(e.Actor) {
		return bad("actor is not a username")
	}
	if len(e.Members) > MaxMembers {
		return bad("%d members named (at most %d)", len(e.Members), MaxMembers)
	}
	for i, m := range e.Members {
		if !api.ValidUsername(m) {
			return bad("a member is not a username")
		}
		if i > 0 && e.Members[i-1] >= m {
			return bad("members not sorted or repeated")
		}
	}
	if e.Name != "" {
		if err := CheckName(e.Name); err != nil {
			return bad("%v", err)
		}
	}
	if e.At.UnixMilli() < 0 || e.At.UnixMilli() > 1<<53 {
		return bad("time out of range")
	}
	first := e.Action == Create
	switch {
	case first != (e.Epoch == 1):
		return bad("epoch %d for %v", e.Epoch, e.Action)
	case first != (e.Prev == Hash{}):
		return bad("parent hash for %v", e.Action)
	case first != (len(e.Nonce) == NonceSize) || (!first && len(e.Nonce) != 0):
		return bad("nonce for %v", e.Action)
	case e.Epoch > 1<<53:
		return bad("epoch out of range")
	}
	switch e.Action {
	case Create:
		if e.Name == "" || len(e.Members) == 0 {
			return bad("create without a name or members")
		}
	case Add, Remove, MakeAdmin:
		if len(e.Members) == 0 || e.Name != "" {
			return bad("%v names no member, or a name", e.Action)
		}
	case Leave:
		if len(e.Members) != 0 || e.Name != "" {
			return bad("leave names members or a name")
		}
	case Rename:
		if e.Name == "" || len(e.Members) != 0 {
			return bad("rename without a name, or with members")
		}
	default:
		return bad("unknown action %d", uint32(e.Action))
	}
	return nil
}

// Parse reads an entry. It accepts only the one encoding that NewCreate
// and NewChange write (fields in order, none repeated but members, no
// unknown field), so that an entry has one hash; it does not check the
// signature (Verify) nor whether the change is allowed (that depends on
// the state it extends: [Log.State]).
func Parse(b []byte) (*Entry, error) {
	e := new(Entry)
	var sig, prev []byte
	var at uint64
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fEpoch:
			e.Epoch = v
		case fPrev:
			prev = bs
			return typ == protowire.BytesType && len(bs) == HashSize
		case fActor:
			e.Actor = string(bs)
			return typ == protowire.BytesType
		case fAction:
			e.Action = Action(min(v, 1<<32-1))
		case fMembers:
			if len(e.Members) == MaxMembers {
				return false
			}
			e.Members = append(e.Members, string(bs))
			return typ == protowire.BytesType
		case fName:
			e.Name = string(bs)
			return typ == protowire.BytesType
		case fNonce:
			e.Nonce = append([]byte(nil), bs...)
			return typ == protowire.BytesType
		case fAt:
			at = v
		case fSignature:
			sig = bs
			return typ == protowire.BytesType && len(bs) == key.SignatureSize
		default:
			return false
		}
		return typ == protowire.VarintType
	})
	if !ok || sig == nil {
		return nil, fmt.Errorf("%w: bad encoding", ErrMalformed)
	}
	if at > 1<<53 {
		return nil, fmt.Errorf("%w: time out of range", ErrMalformed)
	}
	copy(e.Prev[:], prev)
	copy(e.sig[:], sig)
	e.At = time.UnixMilli(int64(at))
	if err := e.check(); err != nil {
		return nil, err
	}
	e.seal(e.signed())
	if string(e.raw) != string(b) {
		return nil, fmt.Errorf("%w: not in its one encoding", ErrMalformed)
	}
	return e, nil
}
