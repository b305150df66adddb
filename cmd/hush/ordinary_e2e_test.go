package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client/store"
)

// newLinkedDevice adds a new device to from's account the way a person does:
// hush device add on from prints a code, hush link --code on the new home
// completes it.
func newLinkedDevice(t *testing.T, from *home, url, fp string) *home {
	t.Helper()
	h := newHome(t, from.name)
	h.dir += fmt.Sprintf("-%d", time.Now().UnixNano())
	cmd := hushCmd(from.dir, "device", "add", "--json", "--wait", "60s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		t.Fatalf("hush device add printed no code: %s", stderr.String())
	}
	var first struct{ Code string }
	if err := json.Unmarshal(sc.Bytes(), &first); err != nil || first.Code == "" {
		cmd.Process.Kill()
		t.Fatalf("hush device add's first line %q: %v", sc.Text(), err)
	}
	go func() {
		for sc.Scan() {
		}
		done <- cmd.Wait()
	}()
	h.must("link", "--server", url, "--server-fingerprint", fp, "--code", first.Code)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hush device add: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("hush device add did not end")
	}
	return h
}

// TestOrdinaryEveryDevice is issue 9's test of ordinary conversations
// (part 1), with the real hushd binary and hush processes: three devices
// of alice and two of bob. Ordinary messages both ways reach all five
// devices exactly once, the sender's other devices included (as sent by
// the sender), across a restart of hushd and while some devices are
// offline (every hush command is a fresh process). A secret conversation
// between the same two people stays on their secret devices: no other
// device's store holds its text. The server's folder never holds a canary
// plaintext.
func TestOrdinaryEveryDevice(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds hushd")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build hushd")
	}
	bin := filepath.Join(t.TempDir(), "hushd")
	if out, err := exec.Command("go", "build", "-o", bin, "../hushd").CombinedOutput(); err != nil {
		t.Fatalf("building hushd: %v\n%s", err, out)
	}
	data := t.TempDir()
	p := startHushd(t, bin, data, "127.0.0.1:0")

	alice1, bob1 := newHome(t, "alice"), newHome(t, "bob")
	for _, h := range []*home{alice1, bob1} {
		h.must("register", "--server", p.url, "--server-fingerprint", p.fp, "--user", h.name)
	}
	alice2 := newLinkedDevice(t, alice1, p.url, p.fp)
	alice3 := newLinkedDevice(t, alice1, p.url, p.fp)
	bob2 := newLinkedDevice(t, bob1, p.url, p.fp)
	alices, bobs := []*home{alice1, alice2, alice3}, []*home{bob1, bob2}
	all := append(append([]*home{}, alices...), bobs...)
	label := map[*home]string{alice1: "alice1", alice2: "alice2", alice3: "alice3", bob1: "bob1", bob2: "bob2"}

	// got[h][text] counts what recv printed on h; sent[text] is who sent it.
	got := map[*home]map[string]int{}
	for _, h := range all {
		got[h] = map[string]int{}
	}
	recv := func(h *home) {
		t.Helper()
		for _, m := range lines(t, h.must("recv", "--json")) {
			if m["kind"] != "message" {
				continue
			}
			if m["secret"] != false {
				t.Fatalf("%s printed a secret message: %v", label[h], m)
			}
			got[h][m["text"].(string)]++
		}
	}
	type msg struct {
		from *home
		to   string
		text string
	}
	var sent []msg
	send := func(from *home, to, text string) {
		t.Helper()
		out := lines(t, from.must("send", "--json", "--to", to, text))
		if len(out) != 1 || out[0]["state"] != "sent" || out[0]["secret"] != false {
			t.Fatalf("%s's send: %v", label[from], out)
		}
		sent = append(sent, msg{from, to, text})
	}

	// Round 1: alice3 stays offline.
	send(alice1, "bob", "ORDINARY-CANARY one, alice1 to bob")
	send(bob2, "alice", "ORDINARY-CANARY two, bob2 to alice")
	for _, h := range []*home{alice1, alice2, bob1, bob2} {
		recv(h)
	}

	// The secret conversation, between the secret devices alice1 and bob1.
	alice1.must("send", "--secret", "--to", "bob", "SECRET-CANARY from alice")
	if texts := texts(lines(t, bob1.must("recv", "--wait", "10s", "--json"))); len(texts) != 1 || texts[0] != "SECRET-CANARY from alice" {
		t.Fatalf("bob1's secret message: %q", texts)
	}
	bob1.must("send", "--secret", "--to", "alice", "SECRET-CANARY from bob")
	if texts := texts(lines(t, alice1.must("recv", "--wait", "10s", "--json"))); len(texts) != 1 || texts[0] != "SECRET-CANARY from bob" {
		t.Fatalf("alice1's secret message: %q", texts)
	}

	// hushd restarts; round 2 with bob2 offline too, and a note to self.
	p.stop(t)
	p = startHushd(t, bin, data, strings.TrimPrefix(p.url, "https://"))
	send(alice2, "bob", "ORDINARY-CANARY three, alice2 to bob")
	send(bob1, "alice", "ORDINARY-CANARY four, bob1 to alice")
	send(alice1, "bob", "ORDINARY-CANARY five, alice1 to bob")
	send(alice3, "alice", "ORDINARY-CANARY six, alice3 to herself")
	for _, h := range all {
		recv(h)
		recv(h) // nothing more the second time
	}

	for _, h := range all {
		mine := h.name
		for _, m := range sent {
			want := 1
			if m.from == h || (m.to != mine && m.from.name != mine) {
				want = 0 // its sender stored it when sending; not for this account
			}
			if got[h][m.text] != want {
				t.Errorf("%s printed %q %d times, want %d", label[h], m.text, got[h][m.text], want)
			}
		}
		// The ordinary conversation holds every message of the two
		// people once, in each direction as it happened.
		peer := map[string]string{"alice": "bob", "bob": "alice"}[mine]
		hist := lines(t, h.must("history", "--json", "--ordinary", peer))
		var htexts []string
		for _, m := range hist {
			if m["kind"] != "message" {
				continue
			}
			htexts = append(htexts, m["text"].(string))
			out := m["from"] == mine
			if m["secret"] != false || m["device"] == nil {
				t.Errorf("%s's history line %v", label[h], m)
			}
			for _, s := range sent {
				if s.text == m["text"] && (s.from.name == mine) != out {
					t.Errorf("%s's history has %q in the wrong direction: %v", label[h], s.text, m)
				}
			}
		}
		var want []string
		for _, s := range sent {
			if s.to != s.from.name {
				want = append(want, s.text)
			}
		}
		if len(htexts) != len(want) {
			t.Errorf("%s's ordinary history %q, want each of %q once", label[h], htexts, want)
		}
		seen := map[string]bool{}
		for _, x := range htexts {
			if seen[x] {
				t.Errorf("%s's history holds %q twice", label[h], x)
			}
			seen[x] = true
		}
	}

	// alice1 lists both conversations with bob, apart; alice2 only the
	// ordinary one.
	for h, want := range map[*home][]bool{alice1: {false, true}, alice2: {false}} {
		var kinds []bool
		for _, cv := range lines(t, h.must("list", "--json")) {
			if cv["peer"] == "bob" {
				kinds = append(kinds, cv["secret"].(bool))
			}
		}
		if len(kinds) != len(want) || (len(kinds) == 2 && kinds[0] == kinds[1]) || (len(kinds) == 1 && kinds[0]) {
			t.Errorf("%s lists its conversations with bob as %v (secret or not)", label[h], kinds)
		}
	}

	// The secret conversation stayed on alice1 and bob1.
	for _, h := range all {
		n := storeHolds(t, h, "SECRET-CANARY")
		if secretDevice := h == alice1 || h == bob1; secretDevice && n != 2 || !secretDevice && n != 0 {
			t.Errorf("%s's store holds the secret conversation's text %d times", label[h], n)
		}
	}
	p.stop(t)
	if err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, canary := range []string{"CANARY", "alice1 to bob", "to herself"} {
			if bytes.Contains(b, []byte(canary)) {
				t.Errorf("the server's file %s holds %q", path, canary)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// storeHolds counts the lines of h's store, in every conversation, whose
// text contains s (the store seals bodies at rest: it is opened to read).
func storeHolds(t *testing.T, h *home, s string) int {
	t.Helper()
	st, err := store.Open(t.Context(), h.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	convs, err := st.Read().Conversations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cv := range convs {
		ms, err := st.Read().Conversation(t.Context(), cv.Peer, cv.Secret, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if strings.Contains(m.Body, s) {
				n++
			}
		}
	}
	return n
}
