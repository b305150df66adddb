package client_test

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/grouplog"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// groupLines is what a device shows of a group conversation: notices as
// "* text", messages as "sender: text".
func groupLines(ms []*store.Message) []string {
	var out []string
	for _, m := range ms {
		if _, ok := client.IsGroupPeer(m.Peer); !ok {
			out = append(out, "(not in a group) "+m.Peer+": "+m.Body)
			continue
		}
		if m.Kind == store.KindNotice {
			out = append(out, "* "+m.Body)
		} else {
			out = append(out, m.Sender+": "+m.Body)
		}
	}
	return out
}

func wantGroup(t *testing.T, who string, got []*store.Message, want ...string) {
	t.Helper()
	if g := groupLines(got); !slices.Equal(g, want) {
		t.Fatalf("%s got %q, want %q", who, g, want)
	}
}

func (u *user) group(t *testing.T, ref string) *client.Group {
	t.Helper()
	g, err := u.c.FindGroup(t.Context(), ref)
	check(t, err)
	return g
}

func (u *user) sendGroup(t *testing.T, ref, text string) *store.Message {
	t.Helper()
	m, err := u.c.SendGroup(t.Context(), ref, text)
	check(t, err)
	if m.State != store.StateSent || m.Sender != u.name {
		t.Fatalf("after a group send: %+v", m)
	}
	return m
}

// TestGroupMembership: a group made on one device reaches its members
// with its name, members and admins; changes reach them too, in the same
// order, and a non-admin's change is refused.
func TestGroupMembership(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, carol, dave := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "carol"), register(t, env, "dave")
	for _, u := range []*user{alice, bob, carol, dave} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "Team", []string{"Bob", "carol"})
	check(t, err)
	if g.Name != "Team" || !slices.Equal(g.Members, []string{"alice", "bob", "carol"}) || !slices.Equal(g.Admins, []string{"alice"}) || !g.Member {
		t.Fatalf("created %+v", g)
	}
	wantGroup(t, "bob", bob.recv(t), `* alice created the group "Team" with you, carol.`)
	wantGroup(t, "carol", carol.recv(t), `* alice created the group "Team" with bob, you.`)
	for _, u := range []*user{bob, carol} {
		if got := u.group(t, g.ID[:8]); !slices.Equal(got.Members, g.Members) || !slices.Equal(got.Admins, g.Admins) || got.Name != "Team" || got.ID != g.ID {
			t.Fatalf("%s sees %+v", u.name, got)
		}
	}
	// Bob is no admin: refused here, and by everyone when sent anyway.
	if _, err := bob.c.GroupAdd(ctx, "Team", "dave"); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("bob added someone: %v", err)
	}
	_, err = alice.c.GroupAdd(ctx, "team", "dave")
	check(t, err)
	wantGroup(t, "dave", dave.recv(t), `* alice created the group "Team" with bob, carol.`, "* alice added you.")
	wantGroup(t, "bob", bob.recv(t), "* alice added dave.")
	_, err = alice.c.GroupMakeAdmin(ctx, g.ID, "bob")
	check(t, err)
	_, err = alice.c.GroupRename(ctx, g.ID, "Old team")
	check(t, err)
	wantGroup(t, "bob", bob.recv(t), "* alice made you admin.", `* alice renamed the group to "Old team".`)
	_, err = bob.c.GroupRemove(ctx, g.ID, "carol")
	check(t, err)
	_, err = dave.c.GroupLeave(ctx, g.ID)
	check(t, err)
	wantGroup(t, "carol", carol.recv(t), "* alice added dave.", "* alice made bob admin.", `* alice renamed the group to "Old team".`, "* bob removed you.")
	alice.recv(t)
	want := alice.group(t, g.ID)
	if want.Name != "Old team" || !slices.Equal(want.Members, []string{"alice", "bob"}) || !slices.Equal(want.Admins, []string{"alice", "bob"}) {
		t.Fatalf("alice sees %+v", want)
	}
	for _, u := range []*user{bob, carol, dave} {
		u.recv(t)
		got := u.group(t, g.ID)
		if got.Name != want.Name || got.Epoch != want.Epoch || !slices.Equal(got.Members, want.Members) || !slices.Equal(got.Admins, want.Admins) {
			t.Fatalf("%s sees %+v, alice %+v", u.name, got, want)
		}
		if got.Member != (u == bob) {
			t.Fatalf("%s member: %v", u.name, got.Member)
		}
	}
}

// TestGroupControlAbuse: a change by someone who is not an admin, from
// someone who is not a member, with a forged signature, or sent again,
// changes nothing, and (but for the one sent again) says so.
func TestGroupControlAbuse(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, mallory := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "mallory")
	for _, u := range []*user{alice, bob, mallory} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "g", []string{"bob", "mallory"})
	check(t, err)
	id, err := client.ParseGroupID(g.ID)
	check(t, err)
	bob.recv(t)
	mallory.recv(t)
	entries, err := bob.c.GroupLogEntries(ctx, id)
	check(t, err)
	l := newLog(t, entries)
	s, _ := l.State()
	before := bob.group(t, g.ID)

	// Mallory, a member but no admin, adds eve.
	e, err := grouplog.NewChange(rand.Reader, mallory.c.Store().AccountIdentity(), adminState(s, "mallory"), "mallory", grouplog.Add, []string{"eve"}, "", time.Now())
	check(t, err)
	check(t, mallory.c.SendGroupControl(ctx, id, []string{"bob"}, [][]byte{e.Bytes()}))
	wantGroup(t, "bob", bob.recv(t), "* A change of the group by mallory was refused: mallory is not an admin.")

	// Mallory signs an entry in alice's name.
	forged, err := grouplog.NewChange(rand.Reader, mallory.c.Store().AccountIdentity(), s, "alice", grouplog.Remove, []string{"bob"}, "", time.Now())
	check(t, err)
	check(t, mallory.c.SendGroupControl(ctx, id, []string{"bob"}, [][]byte{forged.Bytes()}))
	wantGroup(t, "bob", bob.recv(t), "* A change of the group from mallory with a signature that is not alice's was refused.")

	// A stranger (carol) sends a real entry of alice's: refused, not a member.
	carol := register(t, env, "carol")
	check(t, carol.c.EnsureOrdinary(ctx))
	rename, err := grouplog.NewChange(rand.Reader, alice.c.Store().AccountIdentity(), s, "alice", grouplog.Rename, []string{}, "renamed", time.Now())
	check(t, err)
	check(t, carol.c.SendGroupControl(ctx, id, []string{"bob"}, [][]byte{rename.Bytes()}))
	wantGroup(t, "bob", bob.recv(t), "* A change of the group from carol, who is not a member, was refused.")
	// A control for a group carol is not in, to carol: refused.
	check(t, mallory.c.SendGroupControl(ctx, id, []string{"carol"}, entries))
	got := carol.recv(t)
	if len(got) != 1 || got[0].Peer != "mallory" || !strings.Contains(got[0].Body, "refused") {
		t.Fatalf("carol got %q", lines(got))
	}
	if gs, err := carol.c.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("carol keeps %d groups, %v", len(gs), err)
	}

	// Alice's own control, sent again by mallory: nothing new, nothing said.
	check(t, mallory.c.SendGroupControl(ctx, id, []string{"bob"}, entries))
	wantGroup(t, "bob", bob.recv(t))
	if after := bob.group(t, g.ID); after.Epoch != before.Epoch || !slices.Equal(after.Members, before.Members) || after.Name != before.Name {
		t.Fatalf("bob's group changed: %+v, was %+v", after, before)
	}

	// Names: control characters and too many members refused when made.
	if _, err := alice.c.CreateGroup(ctx, "evil\x1b]0;title\a", []string{"bob"}); err == nil {
		t.Error("a name with an escape sequence made")
	}
	if _, err := alice.c.GroupRename(ctx, g.ID, "a\u202eb"); err == nil {
		t.Error("a name with a bidi override made")
	}
	many := make([]string, grouplog.MaxMembers)
	for i := range many {
		many[i] = fmt.Sprintf("user%04d", i)
	}
	if _, err := alice.c.CreateGroup(ctx, "big", many); err == nil || !strings.Contains(err.Error(), "1000") {
		t.Errorf("a group of 1,001: %v", err)
	}
}

func newLog(t *testing.T, entries [][]byte) *grouplog.Log {
	t.Helper()
	var l *grouplog.Log
	for i, b := range entries {
		e, err := grouplog.Parse(b)
		check(t, err)
		if i == 0 {
			l, err = grouplog.New(e)
		} else {
			_, err = l.Add(e)
		}
		check(t, err)
	}
	return l
}

// adminState is s with name an admin: for making, on purpose, an entry s
// does not allow.
func adminState(s *grouplog.State, name string) *grouplog.State {
	c := *s
	c.Admins = append(slices.Clone(s.Admins), name)
	slices.Sort(c.Admins)
	return &c
}

var _ = api.TypeSenderKey

// TestGroupMessages: a group message reaches every device of every member
// (the sender's other devices as sent) once; a member added later reads
// what follows and not what came before; a removed member's devices get
// nothing after the removal, hold none of the new sender keys, and what
// they send is refused.
func TestGroupMessages(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, carol, dave := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "carol"), register(t, env, "dave")
	alice2, bob2 := linkWithIdentity(t, env, alice), linkWithIdentity(t, env, bob)
	for _, u := range []*user{alice, bob, carol, dave} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "Team", []string{"bob", "carol"})
	check(t, err)
	id, _ := client.ParseGroupID(g.ID)
	for _, u := range []*user{alice, bob, bob2, carol, alice2} {
		u.recv(t)
	}
	alice.sendGroup(t, g.ID, "hello team")
	for _, u := range []*user{bob, bob2, carol} {
		got := u.recv(t)
		wantGroup(t, u.name, texts(got), "alice: hello team")
	}
	got := alice2.recv(t)
	wantGroup(t, "alice2", texts(got), "alice: hello team")
	if m := texts(got)[0]; !m.Outgoing || m.State != store.StateSent {
		t.Fatalf("alice2's copy %+v", m)
	}
	wantGroup(t, "alice", alice.recv(t))

	bob2.sendGroup(t, "team", "hi from bob2")
	for _, u := range []*user{alice, alice2, carol, bob} {
		wantGroup(t, u.name, texts(u.recv(t)), "bob: hi from bob2")
	}

	// Dave joins: he reads what follows, not what came before.
	_, err = alice.c.GroupAdd(ctx, g.ID, "dave")
	check(t, err)
	for _, u := range []*user{alice2, bob, bob2, carol, dave} {
		u.recv(t)
	}
	carol.sendGroup(t, g.ID, "welcome dave")
	for _, u := range []*user{alice, alice2, bob, bob2, dave} {
		wantGroup(t, u.name, texts(u.recv(t)), "carol: welcome dave")
	}
	if h, err := dave.c.Conversation(ctx, g.Peer(), false, 0); err != nil || slices.ContainsFunc(h, func(m *store.Message) bool { return strings.Contains(m.Body, "hello team") }) {
		t.Fatalf("dave reads what came before: %q %v", groupLines(h), err)
	}

	// Carol is removed: every remaining device makes a new sender key.
	carolDists := func() [][16]byte {
		var all [][16]byte
		for _, u := range []*user{alice, alice2, bob, bob2, dave} {
			ds, err := carol.c.Store().Read().SenderKeyDists(ctx, id, u.name, u.c.Account().DeviceID)
			check(t, err)
			all = append(all, ds...)
		}
		return all
	}
	if len(carolDists()) == 0 {
		t.Fatal("carol holds no sender key before her removal")
	}
	kept, err := carol.c.EncryptGroupRaw(ctx, id, "let me in")
	check(t, err)
	_, err = alice.c.GroupRemove(ctx, g.ID, "carol")
	check(t, err)
	wantGroup(t, "carol", carol.recv(t), "* alice removed you.")
	for _, u := range []*user{alice2, bob, bob2, dave} {
		u.recv(t)
	}
	before, err := bob.c.GroupDist(ctx, id)
	check(t, err)
	bob.sendGroup(t, g.ID, "carol is gone")
	after, err := bob.c.GroupDist(ctx, id)
	check(t, err)
	if before == after {
		t.Fatal("bob sent with the sender key carol had")
	}
	for _, u := range []*user{alice, alice2, bob2, dave} {
		wantGroup(t, u.name, texts(u.recv(t)), "bob: carol is gone")
	}
	alice.sendGroup(t, g.ID, "still gone")
	wantGroup(t, "carol", carol.recv(t))
	for _, u := range []*user{alice2, bob, bob2, dave} {
		wantGroup(t, u.name, texts(u.recv(t)), "alice: still gone")
	}
	if ds := carolDists(); len(ds) != 0 {
		t.Fatalf("carol holds %d sender keys after her removal", len(ds))
	}
	h, err := carol.c.Conversation(ctx, g.Peer(), false, 0)
	check(t, err)
	for _, m := range h {
		if strings.Contains(m.Body, "gone") {
			t.Fatalf("carol has %q", m.Body)
		}
	}
	if _, err := carol.c.SendGroup(ctx, g.ID, "still here?"); err == nil {
		t.Fatal("carol sent to a group she was removed from")
	}
	// Carol sends anyway, with the sender key she had: refused by all.
	check(t, carol.c.PostGroupRaw(ctx, kept, []api.GroupDevice{{Username: "bob", Device: 1}, {Username: "bob", Device: bob2.c.Account().DeviceID}}))
	for _, u := range []*user{bob, bob2} {
		got := u.recv(t)
		if len(texts(got)) != 0 || len(got) != 1 || !strings.Contains(got[0].Body, "A group message from carol could not be decrypted") {
			t.Fatalf("%s got %q", u.name, groupLines(got))
		}
	}
	h, err = bob.c.Conversation(ctx, g.Peer(), false, 0)
	check(t, err)
	if slices.ContainsFunc(h, func(m *store.Message) bool { return m.Body == "let me in" }) {
		t.Fatal("carol's message kept")
	}
}

func texts(ms []*store.Message) []*store.Message {
	return slices.DeleteFunc(slices.Clone(ms), func(m *store.Message) bool { return m.Kind != store.KindText })
}

// TestGroupNewDevices: a device linked after the group was made, of a
// member or of the sender's own account, is learnt from the server's
// device_mismatch answer: it gets the group and the sender key, and the
// message.
func TestGroupNewDevices(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob := register(t, env, "alice"), register(t, env, "bob")
	for _, u := range []*user{alice, bob} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "Pair", []string{"bob"})
	check(t, err)
	bob.recv(t)
	alice.sendGroup(t, g.ID, "first")
	wantGroup(t, "bob", texts(bob.recv(t)), "alice: first")
	alice2, bob2 := linkWithIdentity(t, env, alice), linkWithIdentity(t, env, bob)
	alice.sendGroup(t, g.ID, "to the new devices too")
	wantGroup(t, "bob", texts(bob.recv(t)), "alice: to the new devices too")
	for _, u := range []*user{alice2, bob2} {
		got := u.recv(t)
		wantGroup(t, u.name+"2", texts(got), "alice: to the new devices too")
		if gs, err := u.c.Groups(ctx); err != nil || len(gs) != 1 || gs[0].ID != g.ID || !gs[0].Member {
			t.Fatalf("%s2 keeps %+v, %v", u.name, gs, err)
		}
	}
	bob2.sendGroup(t, g.ID, "from bob's new device")
	for _, u := range []*user{alice, alice2, bob} {
		wantGroup(t, u.name, texts(u.recv(t)), "bob: from bob's new device")
	}
}

// BenchmarkGroupEncrypt is the sender's cost of one group message in the
// engine: one store transaction that loads the group's record and this
// device's chain, steps it, encrypts and signs (senderkey.Cipher.Encrypt)
// and stores the chain. It does not depend on the group's size (here 3
// members). Compare with senderkey's BenchmarkEncrypt and
// BenchmarkEncryptFloor in the same run.
func BenchmarkGroupEncrypt(b *testing.B) {
	ctx := b.Context()
	env := servertest.Start(b, server.Config{Limits: servertest.Generous})
	alice, bob, carol := register(b, env, "alice"), register(b, env, "bob"), register(b, env, "carol")
	for _, u := range []*user{alice, bob, carol} {
		check(b, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "bench", []string{"bob", "carol"})
	check(b, err)
	if _, err := alice.c.SendGroup(ctx, g.ID, "first"); err != nil {
		b.Fatal(err)
	}
	id, _ := client.ParseGroupID(g.ID)
	text := strings.Repeat("x", 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := alice.c.EncryptGroupRaw(ctx, id, text); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGroupConcurrentChanges: two admins change the group at the same
// time, each before it has the other's change, and a message is sent in
// between; once everyone has everything, every member is in the same
// state, whatever order the changes reached them in.
func TestGroupConcurrentChanges(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice, bob, carol, dave := register(t, env, "alice"), register(t, env, "bob"), register(t, env, "carol"), register(t, env, "dave")
	for _, u := range []*user{alice, bob, carol, dave} {
		check(t, u.c.EnsureOrdinary(ctx))
	}
	g, err := alice.c.CreateGroup(ctx, "g", []string{"bob", "carol", "dave"})
	check(t, err)
	_, err = alice.c.GroupMakeAdmin(ctx, g.ID, "bob")
	check(t, err)
	for _, u := range []*user{alice, bob, carol, dave} {
		u.recv(t)
	}
	// Concurrent: alice renames and removes dave, bob adds nobody new but
	// removes dave too and renames; carol sends in between.
	_, err = alice.c.GroupRename(ctx, g.ID, "from alice")
	check(t, err)
	_, err = bob.c.GroupRename(ctx, g.ID, "from bob")
	check(t, err)
	carol.sendGroup(t, g.ID, "in between")
	_, err = bob.c.GroupRemove(ctx, g.ID, "dave")
	check(t, err)
	_, err = alice.c.GroupRemove(ctx, g.ID, "dave")
	check(t, err)
	for range 2 {
		for _, u := range []*user{dave, carol, bob, alice} {
			u.recv(t)
		}
	}
	want := alice.group(t, g.ID)
	if slices.Contains(want.Members, "dave") || (want.Name != "from alice" && want.Name != "from bob") {
		t.Fatalf("alice ends with %+v", want)
	}
	for _, u := range []*user{bob, carol, dave} {
		got := u.group(t, g.ID)
		if got.Name != want.Name || !slices.Equal(got.Members, want.Members) || !slices.Equal(got.Admins, want.Admins) {
			t.Fatalf("%s ends with %+v, alice with %+v", u.name, got, want)
		}
	}
}
