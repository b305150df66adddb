package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
)

// TestGroupEveryDevice is issue 10's test of groups, with the real hushd
// binary and hush processes: five people with two devices each. Group
// messages reach all ten devices exactly once (the sender's other device
// as sent); recv and history say which group; a removed member's devices
// get nothing after the removal and hold no new sender key; a member
// added later reads what follows, not what came before; a name with
// control characters is refused.
func TestGroupEveryDevice(t *testing.T) {
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
	p := startHushd(t, bin, t.TempDir(), "127.0.0.1:0")

	names := []string{"ann", "ben", "cat", "dan", "eve"}
	var all []*home
	label := map[*home]string{}
	devices := map[string][]*home{}
	for _, n := range names {
		h := newHome(t, n)
		h.must("register", "--server", p.url, "--server-fingerprint", p.fp, "--user", n)
		h2 := newLinkedDevice(t, h, p.url, p.fp)
		devices[n] = []*home{h, h2}
		all = append(all, h, h2)
		label[h], label[h2] = n+"1", n+"2"
	}
	ann1 := devices["ann"][0]
	out := lines(t, ann1.must("group", "create", "Crew", "--members", "ben,cat,dan,eve", "--json"))
	if len(out) != 1 || out[0]["name"] != "Crew" || len(out[0]["members"].([]any)) != 5 {
		t.Fatalf("group create: %v", out)
	}
	id := out[0]["id"].(string)

	// got[h][text] counts the group messages recv printed on h.
	got := map[*home]map[string]int{}
	for _, h := range all {
		got[h] = map[string]int{}
	}
	recv := func(hs ...*home) {
		t.Helper()
		for _, h := range hs {
			for _, m := range lines(t, h.must("recv", "--json")) {
				g, _ := m["group"].(map[string]any)
				if g == nil || g["id"] != id {
					t.Fatalf("%s printed a line of no group or another: %v", label[h], m)
				}
				if m["kind"] == "message" {
					got[h][m["text"].(string)]++
				}
			}
		}
	}
	recv(all...)
	var sent []string
	send := func(from *home, text string) {
		t.Helper()
		out := lines(t, from.must("send", "--json", "--group", "Crew", text))
		if len(out) != 1 || out[0]["state"] != "sent" {
			t.Fatalf("%s's group send: %v", label[from], out)
		}
		sent = append(sent, text)
	}
	send(ann1, "GROUP-CANARY one from ann1")
	send(devices["ben"][1], "GROUP-CANARY two from ben2")
	send(devices["eve"][0], "GROUP-CANARY three from eve1")
	recv(all...)
	recv(all...) // nothing more the second time
	for _, h := range all {
		for _, text := range sent {
			want := 1
			if strings.HasSuffix(text, label[h]) {
				want = 0 // stored when sent
			}
			if got[h][text] != want {
				t.Errorf("%s printed %q %d times, want %d", label[h], text, got[h][text], want)
			}
		}
		// The group's conversation holds each once, from its sender.
		hist := lines(t, h.must("history", "--json", "--group", id[:8]))
		var texts []string
		for _, m := range hist {
			if m["kind"] != "message" {
				continue
			}
			texts = append(texts, m["text"].(string))
			if g := m["group"].(map[string]any); g["name"] != "Crew" || g["id"] != id {
				t.Errorf("%s's history line %v", label[h], m)
			}
			from := strings.Fields(m["text"].(string))[3][:3]
			if m["from"] != from {
				t.Errorf("%s's history line from %v: %v", label[h], m["from"], m)
			}
		}
		slices.Sort(texts)
		want := slices.Sorted(slices.Values(sent))
		if !slices.Equal(texts, want) {
			t.Errorf("%s's group history %q, want %q", label[h], texts, sent)
		}
	}

	// info: members, their devices, admins.
	info := lines(t, ann1.must("group", "info", "Crew", "--json"))
	if len(info) != 1 || fmt.Sprint(info[0]["admins"]) != "[ann]" || fmt.Sprint(info[0]["devices"]) != "map[ann:[1 2] ben:[1 2] cat:[1 2] dan:[1 2] eve:[1 2]]" {
		t.Fatalf("group info: %v", info)
	}

	// Eve is removed: her devices get nothing more and hold no new key.
	ann1.must("group", "remove", "Crew", "eve")
	recv(all...)
	send(devices["ben"][0], "GROUP-CANARY four after eve left")
	if _, stderr, code := devices["eve"][1].run("send", "--group", id, "still here?"); code == 0 || !strings.Contains(stderr, "no longer a member") {
		t.Fatalf("eve sent after her removal: exit %d, %s", code, stderr)
	}
	recv(all...)
	for _, h := range devices["eve"] {
		if n := storeHolds(t, h, "after eve left"); n != 0 {
			t.Errorf("%s's store holds a message sent after eve's removal", label[h])
		}
		st, err := store.Open(t.Context(), h.dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		gid, _ := client.ParseGroupID(id)
		for _, o := range all {
			if o.name == "eve" {
				continue
			}
			dev := uint32(1 + slices.Index(devices[o.name], o))
			if ds, err := st.Read().SenderKeyDists(t.Context(), gid, o.name, dev); err != nil || len(ds) != 0 {
				t.Errorf("%s holds %d sender keys of %s after her removal (%v)", label[h], len(ds), label[o], err)
			}
		}
		st.Close()
	}

	// Fay joins later: she reads what follows, not what came before.
	fay := newHome(t, "fay")
	fay.must("register", "--server", p.url, "--server-fingerprint", p.fp, "--user", "fay")
	fay.must("recv") // her account's keys are up
	ann1.must("group", "add", id, "fay")
	recv(all...)
	fay.must("recv")
	send(devices["dan"][1], "GROUP-CANARY five welcome fay")
	var fays []string
	for _, m := range lines(t, fay.must("recv", "--json")) {
		if m["kind"] == "message" {
			fays = append(fays, m["text"].(string))
		}
	}
	if !slices.Equal(fays, []string{"GROUP-CANARY five welcome fay"}) {
		t.Fatalf("fay got %q", fays)
	}
	if storeHolds(t, fay, "GROUP-CANARY one") != 0 {
		t.Fatal("fay holds a message from before she joined")
	}

	// A name with control characters is refused, and printed safely if
	// it ever came.
	if _, stderr, code := ann1.run("group", "rename", id, "evil\x1b]0;pwned\x07"); code == 0 || !strings.Contains(stderr, "control characters") {
		t.Fatalf("rename with an escape sequence: exit %d, %s", code, stderr)
	}
	list := lines(t, devices["ben"][0].must("group", "list", "--json"))
	if len(list) != 1 || list[0]["name"] != "Crew" {
		t.Fatalf("group list: %v", list)
	}
}
