package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/grouplog"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// This file: groups (docs/groups.md). A group is kept by its members'
// clients only: its log of signed changes (package grouplog) and, per
// device, a sender key (package senderkey) given to every member device
// over the one-to-one ordinary sessions. A group message is one
// SenderKeyMessage, posted once with the list of member devices.

// Group is what this device knows of a group.
type Group struct {
	ID      string // 32 hex digits
	Name    string // a peer's text: checked as a display name, still print it through termsafe
	Members []string
	Admins  []string
	Epoch   uint64
	// Member says whether this account is a member (false once it left or
	// was removed: the group's lines stay).
	Member bool
	// Devices lists, per member, the devices this device knows of (this
	// one included), as far as its last sends and receipts tell.
	Devices map[string][]uint32
}

// Peer is the Peer of the group conversation's lines.
func (g *Group) Peer() string {
	id, _ := ParseGroupID(g.ID)
	return store.GroupPeer(id)
}

// IsGroupPeer reports whether a line's Peer is a group conversation's,
// and which.
func IsGroupPeer(peer string) (id [16]byte, ok bool) { return store.ParseGroupPeer(peer) }

// ParseGroupID reads a group id as Group.ID writes it.
func ParseGroupID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 32 {
		return id, errors.New("a group id is 32 hex digits")
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, errors.New("a group id is 32 hex digits")
	}
	return id, nil
}

// groupRecord is what this device keeps of a group (sealed, one row).
type groupRecord struct {
	Entries [][]byte `json:"entries"`
	// Dist is the distribution id of this device's current sender key for
	// the group (none yet: empty).
	Dist []byte `json:"dist,omitempty"`
	// Sent lists, per account, the devices that were given the current
	// sender key.
	Sent map[string][]uint32 `json:"sent,omitempty"`
	// Rotate: a member or a member's device went since the current sender
	// key was made: a new one before the next message.
	Rotate bool `json:"rotate,omitempty"`
	// Resend: a change made here may not have reached every member: the
	// whole log goes to every member with the next message or change.
	Resend bool `json:"resend,omitempty"`
	// LogTo lists accounts with a device new to this one, which may not
	// have the group yet: the whole log goes to them before the next
	// message.
	LogTo []string `json:"logTo,omitempty"`
	// Gen counts the times this device's sender key was made or given:
	// a queued message encrypted at an older Gen is encrypted again.
	Gen int64 `json:"gen,omitempty"`

	id  [16]byte
	log *grouplog.Log
}

type groupReader interface {
	Group(ctx context.Context, id [16]byte) ([]byte, error)
}

// loadGroup reads the record of the group id (store.ErrNotFound if none).
func loadGroup(ctx context.Context, r groupReader, id [16]byte) (*groupRecord, error) {
	b, err := r.Group(ctx, id)
	if err != nil {
		return nil, err
	}
	rec := &groupRecord{id: id}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("the record of group %x is damaged: %w", id, err)
	}
	if len(rec.Entries) == 0 {
		return nil, fmt.Errorf("the record of group %x is damaged: no log", id)
	}
	for i, b := range rec.Entries {
		e, err := grouplog.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("the record of group %x is damaged: %w", id, err)
		}
		if i == 0 {
			if rec.log, err = grouplog.New(e); err != nil {
				return nil, err
			}
		} else if _, err := rec.log.Add(e); err != nil {
			return nil, err
		}
	}
	if rec.log.ID() != id {
		return nil, fmt.Errorf("the record of group %x is damaged: another group's log", id)
	}
	return rec, nil
}

func (r *groupRecord) save(ctx context.Context, tx *store.Tx) error {
	r.Entries = r.log.Entries()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.SetGroup(ctx, r.id, b)
}

func (r *groupRecord) dist() (senderkey.DistributionID, bool) {
	var d senderkey.DistributionID
	if len(r.Dist) != len(d) {
		return d, false
	}
	copy(d[:], r.Dist)
	return d, true
}

func (c *Client) groupInfo(ctx context.Context, rec *groupRecord) (*Group, error) {
	s, _ := rec.log.State()
	g := &Group{ID: hex.EncodeToString(rec.id[:]), Name: s.Name, Members: s.Members, Admins: s.Admins, Epoch: s.Epoch,
		Member: s.IsMember(c.acct.Username), Devices: make(map[string][]uint32)}
	for _, m := range s.Members {
		ds, _, err := c.st.Read().OrdinaryDevices(ctx, m)
		if err != nil {
			return nil, err
		}
		ss, err := c.st.Read().Keys(store.OrdinarySpace).SessionDevices(ctx, m)
		if err != nil {
			return nil, err
		}
		for _, d := range ss {
			ds = append(ds, uint32(d))
		}
		slices.Sort(ds)
		ds = slices.Compact(ds)
		if m == c.acct.Username && !slices.Contains(ds, c.acct.DeviceID) {
			ds = append(ds, c.acct.DeviceID)
			slices.Sort(ds)
		}
		g.Devices[m] = ds
	}
	return g, nil
}

// Groups lists the groups this device keeps (those it left too), most
// recently changed first.
func (c *Client) Groups(ctx context.Context) ([]*Group, error) {
	ids, err := c.st.Read().GroupIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Group, 0, len(ids))
	for _, id := range ids {
		rec, err := loadGroup(ctx, c.st.Read(), id)
		if err != nil {
			return nil, err
		}
		g, err := c.groupInfo(ctx, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// FindGroup finds a group by its id (32 hex digits, or a unique prefix of
// at least 6) or by its name (unique among the groups kept here; compared
// without regard to case).
func (c *Client) FindGroup(ctx context.Context, ref string) (*Group, error) {
	rec, err := c.findGroup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.groupInfo(ctx, rec)
}

func (c *Client) findGroup(ctx context.Context, ref string) (*groupRecord, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, errors.New("no group named")
	}
	gs, err := c.Groups(ctx)
	if err != nil {
		return nil, err
	}
	var byID, byName []*Group
	for _, g := range gs {
		if len(ref) >= 6 && strings.HasPrefix(g.ID, strings.ToLower(ref)) {
			byID = append(byID, g)
		}
		if strings.EqualFold(g.Name, ref) {
			byName = append(byName, g)
		}
	}
	pick := byID
	if len(pick) == 0 {
		pick = byName
	}
	switch {
	case len(pick) == 0:
		return nil, fmt.Errorf("no group %q here (hush group list shows them)", ref)
	case len(pick) > 1:
		return nil, fmt.Errorf("%d groups match %q: name one by its id (hush group list)", len(pick), ref)
	}
	id, _ := ParseGroupID(pick[0].ID)
	return loadGroup(ctx, c.st.Read(), id)
}

// CreateGroup makes a group called name with members (usernames; this
// account is added), this account its admin, and sends it to every
// member. It returns the group once it is stored here; an error after that
// says the members may not have it yet (it goes again with the group's
// next message or change).
func (c *Client) CreateGroup(ctx context.Context, name string, members []string) (*Group, error) {
	if err := grouplog.CheckName(name); err != nil {
		return nil, err
	}
	self := c.acct.Username
	var ms []string
	for _, m := range members {
		m = NormalizeUsername(m)
		if !api.ValidUsername(m) {
			return nil, fmt.Errorf("%q is not a username", m)
		}
		if m != self {
			ms = append(ms, m)
		}
	}
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) == 0 {
		return nil, errors.New("a group needs at least one member besides you")
	}
	if len(ms)+1 > grouplog.MaxMembers {
		return nil, fmt.Errorf("a group has at most %d members", grouplog.MaxMembers)
	}
	if err := c.EnsureOrdinary(ctx); err != nil {
		return nil, err
	}
	ik := c.st.AccountIdentity()
	e, err := grouplog.NewCreate(rand.Reader, ik, self, name, ms, time.Now())
	if err != nil {
		return nil, err
	}
	l, err := grouplog.New(e)
	if err != nil {
		return nil, err
	}
	rec := &groupRecord{id: e.Group(), log: l, Resend: true}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.AddNoticeIn(ctx, store.GroupPeer(rec.id), false, describe(e, self)); err != nil {
			return err
		}
		return rec.save(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	g, err := c.groupInfo(ctx, rec)
	if err != nil {
		return nil, err
	}
	return g, c.resendLog(ctx, rec)
}

// GroupAdd adds people to the group (admins only).
func (c *Client) GroupAdd(ctx context.Context, ref string, users ...string) (*Group, error) {
	return c.changeGroup(ctx, ref, grouplog.Add, users, "")
}

// GroupRemove removes people from the group (admins only). Every
// remaining member device makes a new sender key before it sends again.
func (c *Client) GroupRemove(ctx context.Context, ref string, users ...string) (*Group, error) {
	return c.changeGroup(ctx, ref, grouplog.Remove, users, "")
}

// GroupMakeAdmin makes members admins (admins only).
func (c *Client) GroupMakeAdmin(ctx context.Context, ref string, users ...string) (*Group, error) {
	return c.changeGroup(ctx, ref, grouplog.MakeAdmin, users, "")
}

// GroupRename renames the group (admins only).
func (c *Client) GroupRename(ctx context.Context, ref, name string) (*Group, error) {
	if err := grouplog.CheckName(name); err != nil {
		return nil, err
	}
	return c.changeGroup(ctx, ref, grouplog.Rename, nil, name)
}

// GroupLeave leaves the group.
func (c *Client) GroupLeave(ctx context.Context, ref string) (*Group, error) {
	return c.changeGroup(ctx, ref, grouplog.Leave, nil, "")
}

func (c *Client) changeGroup(ctx context.Context, ref string, action grouplog.Action, users []string, name string) (*Group, error) {
	self := c.acct.Username
	var targets []string
	for _, u := range users {
		u = NormalizeUsername(u)
		if !api.ValidUsername(u) {
			return nil, fmt.Errorf("%q is not a username", u)
		}
		targets = append(targets, u)
	}
	if err := c.EnsureOrdinary(ctx); err != nil {
		return nil, err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	rec, err := c.findGroup(ctx, ref)
	if err != nil {
		return nil, err
	}
	before, beforeChain := rec.log.State()
	if !before.IsMember(self) {
		return nil, fmt.Errorf("you are not a member of %q", before.Name)
	}
	if action != grouplog.Leave && !before.IsAdmin(self) {
		return nil, fmt.Errorf("only an admin of %q can change it (its admins: %s)", before.Name, strings.Join(before.Admins, ", "))
	}
	e, err := grouplog.NewChange(rand.Reader, c.st.AccountIdentity(), before, self, action, targets, name, time.Now())
	if err != nil {
		if errors.Is(err, grouplog.ErrRefused) {
			return nil, fmt.Errorf("%s: %s", describeRefusal(action), grouplog.Reason(err))
		}
		return nil, err
	}
	if _, err := rec.log.Add(e); err != nil {
		return nil, err
	}
	rec.Resend = true
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if err := c.groupChanged(ctx, tx, rec, before, beforeChain); err != nil {
			return err
		}
		return rec.save(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	g, err := c.groupInfo(ctx, rec)
	if err != nil {
		return nil, err
	}
	// The new entry to everyone who was or is a member (a removed member
	// learns it), the whole log to those just added.
	if err := c.sendControl(ctx, rec, e, before); err != nil {
		return g, fmt.Errorf("the change is made here, but not every member has it yet (it goes again with the group's next message or change): %w", err)
	}
	return g, nil
}

func describeRefusal(a grouplog.Action) string {
	switch a {
	case grouplog.Add:
		return "cannot add"
	case grouplog.Remove:
		return "cannot remove"
	case grouplog.MakeAdmin:
		return "cannot make admin"
	}
	return "cannot " + a.String()
}

// sendControl sends e to the members of before and the state after it,
// and the whole log to those it adds; then, if all went, the record's
// Resend is cleared. Called with sendMu held.
func (c *Client) sendControl(ctx context.Context, rec *groupRecord, e *grouplog.Entry, before *grouplog.State) error {
	after, _ := rec.log.State()
	var old, added []string
	for _, m := range slices.Concat(before.Members, after.Members) {
		if before.IsMember(m) {
			old = append(old, m)
		} else {
			added = append(added, m)
		}
	}
	slices.Sort(old)
	old = slices.Compact(old)
	slices.Sort(added)
	added = slices.Compact(added)
	if err := c.fanControl(ctx, rec.id, old, [][]byte{e.Bytes()}); err != nil {
		return err
	}
	if len(added) > 0 {
		if err := c.fanControl(ctx, rec.id, added, rec.log.Entries()); err != nil {
			return err
		}
	}
	return c.clearResend(ctx, rec.id)
}

// resendLog sends the whole log to every member and clears Resend.
// Called with sendMu held.
func (c *Client) resendLog(ctx context.Context, rec *groupRecord) error {
	s, _ := rec.log.State()
	if err := c.fanControl(ctx, rec.id, s.Members, rec.log.Entries()); err != nil {
		return err
	}
	return c.clearResend(ctx, rec.id)
}

func (c *Client) clearResend(ctx context.Context, id [16]byte) error {
	return c.st.Update(ctx, func(tx *store.Tx) error {
		rec, err := loadGroup(ctx, tx, id)
		if err != nil || (!rec.Resend && len(rec.LogTo) == 0) {
			return err
		}
		rec.Resend, rec.LogTo = false, nil
		return rec.save(ctx, tx)
	})
}

func (c *Client) fanControl(ctx context.Context, id [16]byte, accounts []string, entries [][]byte) error {
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
		GroupControl: &content.GroupControl{Group: id, Entries: entries}}
	_, err := c.fanContent(ctx, accounts, cm)
	return err
}

// describe words an entry for the group's conversation.
func describe(e *grouplog.Entry, self string) string {
	who := e.Actor
	if who == self {
		who = "You"
	}
	names := make([]string, len(e.Members))
	for i, m := range e.Members {
		names[i] = m
		if m == self {
			names[i] = "you"
		}
	}
	list := strings.Join(names, ", ")
	switch e.Action {
	case grouplog.Create:
		others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == e.Actor || n == "you" && e.Actor == self })
		return fmt.Sprintf("%s created the group %q with %s.", who, e.Name, strings.Join(others, ", "))
	case grouplog.Add:
		return fmt.Sprintf("%s added %s.", who, list)
	case grouplog.Remove:
		return fmt.Sprintf("%s removed %s.", who, list)
	case grouplog.Leave:
		return fmt.Sprintf("%s left the group.", who)
	case grouplog.Rename:
		return fmt.Sprintf("%s renamed the group to %q.", who, e.Name)
	case grouplog.MakeAdmin:
		return fmt.Sprintf("%s made %s admin.", who, list)
	}
	return fmt.Sprintf("%s changed the group.", who)
}

// groupChanged records what the log's new state means here, in tx: a
// notice for each entry that joined the chain (and for changes a
// concurrent one undid), and, when a member left the group, a new sender
// key before the next message and the records of the one who left gone.
func (c *Client) groupChanged(ctx context.Context, tx *store.Tx, rec *groupRecord, before *grouplog.State, beforeChain []*grouplog.Entry) error {
	self := c.acct.Username
	peer := store.GroupPeer(rec.id)
	after, chain := rec.log.State()
	if after.Head == before.Head {
		return nil
	}
	on := make(map[grouplog.Hash]bool, len(chain))
	for _, e := range chain {
		on[e.Hash()] = true
	}
	for _, e := range beforeChain {
		if on[e.Hash()] {
			continue
		}
		// A change that a concurrent one, with precedence, undid.
		text := fmt.Sprintf("A change made at the same time as another admin's is undone (%s).", strings.TrimSuffix(describe(e, self), "."))
		if e.Actor == self {
			text = fmt.Sprintf("Your change (%s) was overtaken by another admin's, made at the same time, and is undone: make it again if it still matters.", strings.TrimSuffix(describe(e, self), "."))
		}
		if _, err := tx.AddNoticeIn(ctx, peer, false, text); err != nil {
			return err
		}
	}
	was := make(map[grouplog.Hash]bool, len(beforeChain))
	for _, e := range beforeChain {
		was[e.Hash()] = true
	}
	for _, e := range chain {
		if was[e.Hash()] {
			continue
		}
		if _, err := tx.AddNoticeIn(ctx, peer, false, describe(e, self)); err != nil {
			return err
		}
	}
	// Whoever is no longer a member loses the sender key of every device:
	// ours rotates, theirs are forgotten.
	for _, m := range before.Members {
		if after.IsMember(m) {
			continue
		}
		if _, err := tx.DeleteSenderKeys(ctx, rec.id, m); err != nil {
			return err
		}
		rec.Rotate = true
	}
	for name := range rec.Sent {
		if !after.IsMember(name) {
			delete(rec.Sent, name)
			rec.Rotate = true
		}
	}
	if !after.IsMember(self) {
		// Left or removed: nothing more is sent, nothing more is read.
		if _, err := tx.DeleteSenderKeys(ctx, rec.id, ""); err != nil {
			return err
		}
		rec.Dist, rec.Sent, rec.Rotate = nil, nil, false
	}
	return nil
}

// acceptGroupControl takes the entries of a group control from from, in
// the receive transaction: it checks each entry's signature with its
// actor's account identity key, adds them to the group's log, and records
// what changed. A control for a group not kept here is taken only when it
// holds the group's create entry, the group's state then has this account
// as a member and from as an admin (an invitation). A control from someone
// who is not a member, or with an entry that does not verify or parse, is
// refused with a notice and changes nothing.
func (c *Client) acceptGroupControl(ctx context.Context, tx *store.Tx, from session.Address, gc *content.GroupControl) error {
	self := c.acct.Username
	refuse := func(peer, why string) error {
		_, err := tx.AddNoticeIn(ctx, peer, false, why)
		return err
	}
	entries := make([]*grouplog.Entry, 0, len(gc.Entries))
	for _, b := range gc.Entries {
		e, err := grouplog.Parse(b)
		if err != nil {
			return refuse(from.Name, fmt.Sprintf("A group change from %s could not be read and was refused.", from.Name))
		}
		entries = append(entries, e)
	}
	rec, err := loadGroup(ctx, tx, gc.Group)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var before *grouplog.State
	var beforeChain []*grouplog.Entry
	where := from.Name // a group not kept here gets no conversation
	if known {
		where = store.GroupPeer(gc.Group)
		before, beforeChain = rec.log.State()
		if !before.IsMember(from.Name) && from.Name != self {
			return refuse(where, fmt.Sprintf("A change of the group from %s, who is not a member, was refused.", from.Name))
		}
	} else {
		i := slices.IndexFunc(entries, func(e *grouplog.Entry) bool { return e.Action == grouplog.Create })
		if i < 0 || entries[i].Group() != gc.Group {
			return refuse(from.Name, fmt.Sprintf("A change of a group you are not in, from %s, was refused.", from.Name))
		}
		l, err := grouplog.New(entries[i])
		if err != nil {
			return refuse(from.Name, fmt.Sprintf("A group from %s was refused: %v.", from.Name, err))
		}
		rec = &groupRecord{id: gc.Group, log: l}
		before = &grouplog.State{ID: gc.Group}
	}
	vouched := false // from is an admin: its word stands for actors whose key is not known here
	fromKey, err := tx.Ordinary().Identity(ctx, from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var k *key.IdentityKey
		if e.Actor == from.Name {
			k = fromKey
		} else if k, err = tx.Ordinary().Identity(ctx, session.Address{Name: e.Actor}); err != nil {
			return err
		}
		if k == nil {
			vouched = true
			continue
		}
		if !e.Verify(*k) {
			return refuse(where, fmt.Sprintf("A change of the group from %s with a signature that is not %s's was refused.", from.Name, e.Actor))
		}
	}
	for _, e := range entries {
		if e.Action == grouplog.Create {
			continue
		}
		if known && e.Prev == before.Head && !rec.log.Has(e.Hash()) {
			// A change of the state as it is here: one it does not allow
			// (from someone who is not an admin, of people who are not
			// members) is refused now, with its reason.
			if err := before.Check(e); err != nil {
				return refuse(where, fmt.Sprintf("A change of the group by %s was refused: %v.", e.Actor, grouplog.Reason(err)))
			}
		}
		if _, err := rec.log.Add(e); errors.Is(err, grouplog.ErrFull) {
			return refuse(where, "The group's log is full: later changes are not taken.")
		} else if err != nil {
			return err
		}
	}
	after, _ := rec.log.State()
	if vouched && !after.IsAdmin(from.Name) && from.Name != self {
		return refuse(where, fmt.Sprintf("A change of the group from %s was refused: it carries changes by people whose keys you do not have, and %s is not an admin.", from.Name, from.Name))
	}
	if !known && (!after.IsMember(self) || (!after.IsAdmin(from.Name) && from.Name != self)) {
		return refuse(from.Name, fmt.Sprintf("A group from %s that does not have you as a member, or them as an admin, was refused.", from.Name))
	}
	if known && after.Head == before.Head && rec.log.Len() == len(rec.Entries) {
		return nil // nothing new (a control sent again)
	}
	if err := c.groupChanged(ctx, tx, rec, before, beforeChain); err != nil {
		return err
	}
	return rec.save(ctx, tx)
}

// skStore keeps sender key records in the receive or send transaction,
// bound to one group: a record bound to another group is not seen.
type skStore struct {
	tx    *store.Tx
	group [16]byte
}

func (s skStore) LoadSenderKey(ctx context.Context, sender session.Address, id senderkey.DistributionID) (*senderkey.Record, error) {
	grp, b, err := s.tx.SenderKey(ctx, sender.Name, uint32(sender.Device), id)
	if err != nil || b == nil || [16]byte(grp) != s.group {
		return nil, err
	}
	return senderkey.ParseRecord(b)
}

func (s skStore) StoreSenderKey(ctx context.Context, sender session.Address, id senderkey.DistributionID, r *senderkey.Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	return s.tx.SetSenderKey(ctx, sender.Name, uint32(sender.Device), id, s.group, b)
}

func (c *Client) groupCipher(tx *store.Tx, group [16]byte) *senderkey.Cipher {
	return &senderkey.Cipher{Store: skStore{tx, group}, Local: c.Self()}
}

// acceptSenderKey processes a sender key distribution from from, in the
// receive transaction: taken from a member of a group kept here (this
// account's other devices included), for a distribution id not bound to
// another group; refused with a notice otherwise.
func (c *Client) acceptSenderKey(ctx context.Context, tx *store.Tx, from session.Address, d *content.SenderKeyDistribution) error {
	rec, err := loadGroup(ctx, tx, d.Group)
	if errors.Is(err, store.ErrNotFound) {
		_, err := tx.AddNoticeIn(ctx, from.Name, false, fmt.Sprintf("A key for a group you are not in, from %s, was refused.", from.Name))
		return err
	} else if err != nil {
		return err
	}
	s, _ := rec.log.State()
	peer := store.GroupPeer(d.Group)
	if !s.IsMember(from.Name) || !s.IsMember(c.acct.Username) {
		_, err := tx.AddNoticeIn(ctx, peer, false, fmt.Sprintf("A key for the group from %s, who is not a member, was refused.", from.Name))
		return err
	}
	dm, err := senderkey.ParseDistributionMessage(d.Distribution)
	if err != nil {
		_, err := tx.AddNoticeIn(ctx, peer, false, fmt.Sprintf("A key for the group from %s could not be read.", from.Name))
		return err
	}
	grp, b, err := tx.SenderKey(ctx, from.Name, uint32(from.Device), dm.DistributionID())
	if err != nil {
		return err
	}
	if b != nil && [16]byte(grp) != d.Group {
		_, err := tx.AddNoticeIn(ctx, peer, false, fmt.Sprintf("A key for the group from %s that is another group's was refused.", from.Name))
		return err
	}
	return c.groupCipher(tx, d.Group).Process(ctx, from, dm)
}
