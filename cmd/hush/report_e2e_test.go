package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportEndToEnd is issue 11's report flow with the real binaries:
// mallory sends bob messages (ordinary and secret), bob reports one with
// the one before it as context; `hushd reports list` and `show` give the
// operator the report (its text made safe for a terminal), a second report
// of it is refused, and the server's folder holds no text of the messages
// not reported, nor any franking key.
func TestReportEndToEnd(t *testing.T) {
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
	mallory, bob := newHome(t, "mallory"), newHome(t, "bob")
	for _, h := range []*home{mallory, bob} {
		h.must("register", "--server", p.url, "--server-fingerprint", p.fp, "--user", h.name)
	}
	mallory.must("send", "--to", "bob", "UNREPORTED-CANARY nothing to see")
	mallory.must("send", "--to", "bob", "the context line")
	mallory.must("send", "--to", "bob", "ABUSE \x1b[2J\x1b]0;pwned\x07 you will regret it")
	mallory.must("send", "--secret", "--to", "bob", "SECRET-CANARY unreported secret")
	bob.must("recv", "--json")

	// The id, as history shows it.
	var id string
	for _, m := range lines(t, bob.must("history", "--json", "mallory")) {
		if strings.HasPrefix(m["text"].(string), "ABUSE") {
			id = m["id"].(string)
		}
	}
	plain := bob.must("history", "--ids", "--ordinary", "mallory")
	if id == "" || !strings.Contains(plain, id+"  ") {
		t.Fatalf("history --ids does not show %q:\n%s", id, plain)
	}
	out := lines(t, bob.must("report", "--json", "mallory", id, "--context", "1", "--reason", "threats"))
	if len(out) != 1 || out[0]["messages"] != float64(2) || out[0]["report"] == nil {
		t.Fatalf("hush report: %v", out)
	}
	_, stderr, code := bob.run("report", "mallory", id)
	if code == 0 || !strings.Contains(stderr, "reported already") {
		t.Fatalf("a second report: exit %d, %s", code, stderr)
	}
	if _, stderr, code := bob.run("report", "mallory", "not-an-id"); code != 2 || !strings.Contains(stderr, "MESSAGE_ID") {
		t.Fatalf("a bad id: exit %d, %s", code, stderr)
	}
	if _, _, code := mallory.run("report", "bob", id); code == 0 {
		t.Fatal("mallory reported bob for her own message")
	}

	// The operator's view.
	hushd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("hushd %v: %v\n%s", args, err, e.String())
		}
		return o.String()
	}
	list := hushd("reports", "list", "--data", data)
	if !strings.Contains(list, "bob reported mallory (2 messages)") || !strings.Contains(list, "threats") {
		t.Fatalf("hushd reports list:\n%s", list)
	}
	if reps := lines(t, hushd("reports", "list", "--data", data, "--json")); len(reps) != 1 || reps[0]["reporter"] != "bob" ||
		reps[0]["reported"] != "mallory" || reps[0]["messages"] != float64(2) || reps[0]["reason"] != "threats" {
		t.Fatalf("hushd reports list --json: %v", reps)
	}
	show := hushd("reports", "show", "1", "--data", data)
	if !strings.Contains(show, "you will regret it") || !strings.Contains(show, "the context line") || strings.Contains(show, "CANARY") {
		t.Fatalf("hushd reports show:\n%s", show)
	}
	if strings.ContainsAny(show, "\x1b\x07") {
		t.Fatalf("hushd reports show prints terminal escapes:\n%q", show)
	}
	var one struct {
		Messages []struct {
			From string `json:"from"`
			Body string `json:"body"`
		} `json:"reportedMessages"`
	}
	js := hushd("reports", "show", "1", "--data", data, "--json")
	if err := json.Unmarshal([]byte(js), &one); err != nil || len(one.Messages) != 2 || one.Messages[1].Body != "the context line" {
		t.Fatalf("hushd reports show --json: %+v %v\n%s", one, err, js)
	}
	if strings.ContainsAny(js, "\x1b\x07") {
		t.Fatal("hushd reports show --json prints terminal escapes")
	}
	cmd := exec.Command(bin, "reports", "show", "99", "--data", data)
	if o, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(o), "no report 99") {
		t.Fatalf("hushd reports show 99: %v %s", err, o)
	}

	// Nothing of the unreported messages in the server's folder.
	p.stop(t)
	err := filepath.WalkDir(data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, canary := range []string{"UNREPORTED-CANARY", "SECRET-CANARY"} {
			if bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s holds %s", path, canary)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
