package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client/store"
)

// TestConversation: register, a secret conversation both ways, every
// process a fresh start (both clients restart between messages), and the
// JSON fields scripts rely on.
func TestConversation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	var want []string
	for i := range 4 {
		a2b := fmt.Sprintf("alice to bob %d", i)
		out := lines(t, alice.must("send", "--secret", "--to", "bob", "--json", a2b))
		if len(out) != 1 || out[0]["state"] != "sent" || out[0]["to"] != "bob" || len(out[0]["id"].(string)) != 32 {
			t.Fatalf("send output %v", out)
		}
		got := lines(t, bob.must("recv", "--wait", "5s", "--json"))
		if len(got) != 1 {
			t.Fatalf("bob got %v", got)
		}
		m := got[0]
		if m["id"] != out[0]["id"] || m["from"] != "alice" || m["text"] != a2b || m["secret"] != true || m["sent_at"] == nil {
			t.Fatalf("bob got %v for %v", m, out[0])
		}
		if _, ok := m["expires_at"]; ok {
			t.Fatalf("expires_at without a timer: %v", m)
		}
		b2a := fmt.Sprintf("bob to alice %d", i)
		bob.must("send", "--secret", "--to", "alice", b2a)
		if got := texts(lines(t, alice.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{b2a}) {
			t.Fatalf("alice got %q", got)
		}
		want = append(want, a2b, b2a)
	}
	// Nothing is shown twice.
	if got := lines(t, bob.must("recv", "--json")); len(got) != 0 {
		t.Fatalf("second recv printed %v", got)
	}
	for _, h := range []*home{alice, bob} {
		if got := texts(lines(t, h.must("history", "--json", map[string]string{"alice": "bob", "bob": "alice"}[h.name]))); !equal(got, want) {
			t.Fatalf("%s's history %q, want %q", h.name, got, want)
		}
	}
}

// TestOfflineBacklog: three people; carol is offline while alice and bob
// write to her, then gets everything in order, and answers both.
func TestOfflineBacklog(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob, carol := newHome(t, "alice"), newHome(t, "bob"), newHome(t, "carol")
	for _, h := range []*home{alice, bob, carol} {
		h.register(s)
	}
	var fromAlice, fromBob []string
	for i := range 5 {
		fromAlice = append(fromAlice, fmt.Sprintf("a%d", i))
		alice.must("send", "--secret", "--to", "carol", fromAlice[i])
		fromBob = append(fromBob, fmt.Sprintf("b%d", i))
		bob.must("send", "--secret", "--to", "carol", fromBob[i])
	}
	got := lines(t, carol.must("recv", "--json"))
	var ga, gb []string
	for _, m := range got {
		switch m["from"] {
		case "alice":
			ga = append(ga, m["text"].(string))
		case "bob":
			gb = append(gb, m["text"].(string))
		}
	}
	if !equal(ga, fromAlice) || !equal(gb, fromBob) {
		t.Fatalf("carol got %q from alice and %q from bob", ga, gb)
	}
	carol.must("send", "--secret", "--to", "alice", "hi alice")
	carol.must("send", "--secret", "--to", "bob", "hi bob")
	if got := texts(lines(t, alice.must("recv", "--json"))); !equal(got, []string{"hi alice"}) {
		t.Fatalf("alice got %q", got)
	}
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"hi bob"}) {
		t.Fatalf("bob got %q", got)
	}
	list := lines(t, carol.must("list", "--json"))
	if len(list) != 2 {
		t.Fatalf("carol's list %v", list)
	}
}

// TestKeyChange: bob moves his secret device to a new one; alice, who had
// verified him, sees the change and must confirm before sending; bob's old
// device can no longer take part; carol, who had not verified, is told and
// goes on.
func TestKeyChange(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob, carol, bob2 := newHome(t, "alice"), newHome(t, "bob"), newHome(t, "carol"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	carol.register(s)
	alice.must("send", "--secret", "--to", "bob", "before")
	carol.must("send", "--secret", "--to", "bob", "before from carol")
	bob.must("recv")
	bob.must("send", "--secret", "--to", "alice", "ok")
	alice.must("recv")

	// Alice and bob compare safety numbers; alice verifies.
	snA := lines(t, alice.must("safety-number", "--json", "bob"))[0]
	snB := lines(t, bob.must("safety-number", "--json", "alice"))[0]
	if snA["safety_number"] != snB["safety_number"] || len(snA["safety_number"].(string)) != 60 {
		t.Fatalf("safety numbers differ: %v %v", snA, snB)
	}
	if _, _, code := alice.run("verify", "bob", "12345"); code != 1 {
		t.Fatal("verify accepted a wrong number")
	}
	alice.must("verify", "bob", snB["safety_number"].(string))
	if sn := lines(t, alice.must("safety-number", "--json", "bob"))[0]; sn["verified"] != true {
		t.Fatalf("after verify: %v", sn)
	}

	// Bob's laptop becomes his secret device.
	bob2.must("link", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", "bob")
	if _, e, code := bob2.run("send", "--secret", "--to", "alice", "too early"); code != 1 || !strings.Contains(e, "not your secret device") {
		t.Fatalf("send from a linked device: %d %s", code, e)
	}
	bob2.must("device", "make-secret")

	// Alice must confirm.
	_, e, code := alice.run("send", "--secret", "--to", "bob", "are you there?")
	if code != 1 || !strings.Contains(e, "safety number changed") || !strings.Contains(e, "hush verify bob") {
		t.Fatalf("send to a changed verified key: exit %d, %s", code, e)
	}
	sn := lines(t, alice.must("safety-number", "--json", "bob"))[0]
	if sn["changed"] != true || sn["verified"] == true || sn["safety_number"] == snA["safety_number"] {
		t.Fatalf("safety number after the change: %v", sn)
	}
	hist := lines(t, alice.must("history", "--json", "bob"))
	notices := 0
	for _, m := range hist {
		if m["kind"] == "notice" && strings.Contains(m["text"].(string), "safety number changed") {
			notices++
		}
	}
	if notices == 0 {
		t.Fatalf("no key-change notice in alice's history: %v", hist)
	}
	snB2 := lines(t, bob2.must("safety-number", "--json", "alice"))[0]
	if snB2["safety_number"] != sn["safety_number"] {
		t.Fatal("alice's new safety number is not bob's new one")
	}
	alice.must("verify", "bob", snB2["safety_number"].(string))
	alice.must("send", "--secret", "--to", "bob", "verified again")
	if got := texts(lines(t, bob2.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"verified again"}) {
		t.Fatalf("bob's new device got %q", got)
	}
	bob2.must("send", "--secret", "--to", "alice", "from the laptop")
	if got := texts(lines(t, alice.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"from the laptop"}) {
		t.Fatalf("alice got %q", got)
	}

	// The old device is out of secret conversations.
	if _, e, code := bob.run("send", "--secret", "--to", "alice", "stale"); code != 1 || !strings.Contains(e, "secret device") {
		t.Fatalf("send from the old secret device: %d %s", code, e)
	}

	// Carol had not verified bob: she is told, and her message goes to the
	// new device.
	carol.must("send", "--secret", "--to", "bob", "hello again")
	got := lines(t, carol.must("history", "--json", "bob"))
	if len(got) < 3 || got[len(got)-2]["kind"] != "notice" {
		t.Fatalf("carol's history %v", got)
	}
	if got := texts(lines(t, bob2.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"hello again"}) {
		t.Fatalf("bob's new device got %q from carol", got)
	}
}

// TestOneReceiver: the server keeps one connection per device, so one
// process per home receives; a second one says why it cannot, while
// sending goes on beside the receiver.
func TestOneReceiver(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	f := follow(t, bob)
	alice.must("send", "--secret", "--to", "bob", "while bob follows")
	if l := f.next(t, 10*time.Second); !strings.Contains(l, "while bob follows") {
		t.Fatalf("follower printed %s", l)
	}
	if _, e, code := bob.run("recv"); code != 1 || !strings.Contains(e, "another hush process is receiving in this home") {
		t.Fatalf("a second receiver: exit %d, %s", code, e)
	}
	bob.must("send", "--secret", "--to", "alice", "sent beside the follower")
	if got := texts(lines(t, alice.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"sent beside the follower"}) {
		t.Fatalf("alice got %q", got)
	}
	f.stop(t)
	bob.must("recv")
}

// TestRestoredHomeCopy: issue 14, finding 1, with real binaries. A copy
// of dave's home taken before he starts over on the same device (device
// make-secret) keeps his old key and the device's credential, and the
// server still takes its messages (it is the secret device). What it sends
// is not shown as from dave, whether in a session the recipient had
// answered (erin: Signal messages) or not (carol: a PreKey message), and
// their verification of dave's new key stands. Before the fix, both showed
// "it is me, dave" as dave's, and list still said verified.
func TestRestoredHomeCopy(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	carol, erin, dave := newHome(t, "carol"), newHome(t, "erin"), newHome(t, "dave")
	carol.register(s)
	erin.register(s)
	dave.register(s)
	dave.must("send", "--secret", "--to", "carol", "hello carol")
	dave.must("send", "--secret", "--to", "erin", "hello erin")
	carol.must("recv", "--wait", "5s")
	erin.must("recv", "--wait", "5s")
	erin.must("send", "--secret", "--to", "dave", "hi dave")
	dave.must("recv", "--wait", "5s")

	copied := &home{t: t, dir: filepath.Join(t.TempDir(), "dave-copy"), name: "dave (copy)"}
	if err := os.CopyFS(copied.dir, os.DirFS(dave.dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(copied.dir, "key"), 0o600); err != nil { // CopyFS makes it 0644
		t.Fatal(err)
	}
	dave.must("device", "make-secret", "--force")
	for _, h := range []*home{carol, erin} {
		dave.must("send", "--secret", "--to", h.name, "my new key")
		got := lines(t, h.must("recv", "--wait", "5s", "--json"))
		if len(got) != 2 || got[0]["kind"] != "notice" || got[1]["text"] != "my new key" {
			t.Fatalf("%s got %v", h.name, got)
		}
		sn := lines(t, dave.must("safety-number", "--json", h.name))[0]
		h.must("verify", "dave", sn["safety_number"].(string))
	}

	for _, h := range []*home{carol, erin} {
		copied.must("send", "--secret", "--to", h.name, "it is me, dave")
		out := h.must("recv", "--wait", "5s")
		if strings.Contains(out, "it is me") || !strings.Contains(out, "* A message that claims to be from dave was refused") {
			t.Fatalf("%s's recv after the copy sent:\n%s", h.name, out)
		}
		if hist := h.must("history", "dave"); strings.Contains(hist, "it is me") {
			t.Fatalf("%s's history:\n%s", h.name, hist)
		}
		l := lines(t, h.must("list", "--json"))
		if len(l) != 1 || l[0]["verified"] != true || l[0]["safety_number_changed"] != false {
			t.Fatalf("%s's list: %v", h.name, l)
		}
	}

	// dave himself goes on, both ways.
	dave.must("send", "--secret", "--to", "carol", "really me")
	if got := texts(lines(t, carol.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"really me"}) {
		t.Fatalf("carol got %q", got)
	}
	carol.must("send", "--secret", "--to", "dave", "good")
	if got := texts(lines(t, dave.must("recv", "--wait", "5s", "--json"))); !equal(got, []string{"good"}) {
		t.Fatalf("dave got %q", got)
	}
}

// hostileText is what a peer sends to take over a terminal (issue 14,
// finding 2): an OSC 0 window title, an OSC 52 clipboard write, a C1 CSI,
// cursor movement and a carriage return, a right-to-left override, a
// zero-width space, and a line that forges a notice.
const hostileText = "hi\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\u009b2J\x1b[1A\x1b[2K\rx\u202eevil\u200b\n" +
	"2026-12-02 08:00:00  * mallory is verified"

// rawBad are byte strings that must not reach a terminal.
var rawBad = []string{"\x1b", "\a", "\r", "\u009b", "\u202e", "\u200b"}

func checkInert(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range rawBad {
		if strings.Contains(out, bad) {
			t.Errorf("%s prints %q raw:\n%q", what, bad, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "2026-12-02 08:00:00") {
			t.Errorf("%s prints a forged line at the margin: %q", what, l)
		}
	}
}

// TestHostileText: recv, history and list print a peer's hostile text
// inert (escapes visible as ␛, the forged line indented under its
// message), and --json carries it exactly, escaped, with no raw control
// or format character. Before the fix the escapes were printed raw and the
// forged line started at the margin.
func TestHostileText(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, mallory := newHome(t, "alice"), newHome(t, "mallory")
	alice.register(s)
	mallory.register(s)
	mallory.must("send", "--secret", "--to", "alice", hostileText)
	mallory.must("send", "--secret", "--to", "alice", hostileText+" (2)")

	// recv prints both; the text form is checked on the whole output.
	out := alice.must("recv", "--wait", "5s")
	checkInert(t, "recv", out)
	if !strings.Contains(out, "mallory: hi␛]0;pwned␇␛]52;c;ZXZpbA==␇") || !strings.Contains(out, "\n    | 2026-12-02 08:00:00  * mallory is verified") {
		t.Errorf("recv does not show the text inert:\n%s", out)
	}
	hist := alice.must("history", "mallory")
	checkInert(t, "history", hist)
	if strings.Count(hist, "␛]0;pwned") != 2 {
		t.Errorf("history:\n%s", hist)
	}
	checkInert(t, "list", alice.must("list"))

	js := alice.must("history", "--json", "mallory")
	for _, bad := range rawBad {
		if strings.Contains(js, bad) {
			t.Errorf("history --json holds %q raw:\n%q", bad, js)
		}
	}
	got := texts(lines(t, js))
	if !equal(got, []string{hostileText, hostileText + " (2)"}) {
		t.Errorf("history --json does not carry the text as sent: %q", got)
	}
	if !strings.Contains(js, `\u001b]0;pwned\u0007`) || !strings.Contains(js, `\u009b`) || !strings.Contains(js, `\u202e`) {
		t.Errorf("history --json escapes: %s", js)
	}
}

// TestHostileNames: a username comes from the server, which may lie: a
// name with a newline, an escape or a bidi override is printed on its own
// line, inert.
func TestHostileNames(t *testing.T) {
	m := &store.Message{Peer: "dave\x1b]0;t\x07\n2026-12-02 08:00:00  * dave\u202e", Body: "hi", At: time.Now()}
	for _, out := range []string{messageText(m, "alice", nil), messageText(&store.Message{Peer: m.Peer, Body: "x", Outgoing: true, At: time.Now()}, "al\nice", nil)} {
		checkInert(t, "messageText", out)
		if strings.Contains(out, "\n") {
			t.Errorf("a name breaks the line: %q", out)
		}
	}
}

// TestMakeSecretAsks: on the device that already is the secret device,
// make-secret asks on a terminal (here a tmux pane) before it replaces the
// identity key.
func TestMakeSecretAsks(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("needs tmux to give hush a terminal")
	}
	s := startServer(t)
	alice := newHome(t, "alice")
	alice.register(s)
	before := alice.must("safety-number", "--no-qr", "alice")
	answer := func(ans string) string {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "tmux")
		tmux := func(args ...string) string {
			t.Helper()
			out, err := exec.CommandContext(t.Context(), "tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("tmux %q: %v\n%s", args, err, out)
			}
			return string(out)
		}
		hush, err := exec.LookPath("hush")
		if err != nil {
			t.Fatal(err)
		}
		tmux("-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "env", "HUSH_PASSWORD=password-for-tests",
			"bash", "--norc", "-c", hush+" --home "+alice.dir+" device make-secret; echo EXIT:$?; sleep 600")
		defer tmux("kill-server")
		wait := func(what string) string {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				screen := tmux("capture-pane", "-p", "-J")
				if strings.Contains(screen, what) {
					return screen
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %q on the screen:\n%s", what, screen)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		wait(`Type "yes" to go on:`)
		tmux("send-keys", ans, "Enter")
		return wait("EXIT:")
	}
	if out := answer("no"); !strings.Contains(out, "This device is already your secret device") ||
		!strings.Contains(out, "nothing was done") || !strings.Contains(out, "EXIT:1") {
		t.Fatalf("make-secret answered no:\n%s", out)
	}
	if after := alice.must("safety-number", "--no-qr", "alice"); after != before {
		t.Fatalf("the identity changed after 'no':\n%s\n%s", before, after)
	}
	if out := answer("yes"); !strings.Contains(out, "is now your secret device") || !strings.Contains(out, "EXIT:0") {
		t.Fatalf("make-secret answered yes:\n%s", out)
	}
	if after := alice.must("safety-number", "--no-qr", "alice"); after == before {
		t.Fatal("the identity did not change after 'yes'")
	}
}
