package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addDevice runs `hush device add --json` on from and `hush link --code`
// on to, as a person does on two devices, and returns the new device's
// number and what link printed.
func addDevice(t *testing.T, s *hushd, from, to *home) (float64, map[string]any) {
	t.Helper()
	cmd := hushCmd(from.dir, "device", "add", "--json", "--wait", "2m")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("device add printed nothing: %s", stderr.String())
	}
	var first map[string]any
	if err := json.Unmarshal(sc.Bytes(), &first); err != nil || first["code"] == nil {
		t.Fatalf("device add's first line %q: %v", sc.Text(), err)
	}
	linked := lines(t, to.must("link", "--server", s.URL, "--server-fingerprint", s.Fingerprint,
		"--code", first["code"].(string), "--json"))
	if !sc.Scan() {
		t.Fatalf("device add did not say which device: %s", stderr.String())
	}
	var second map[string]any
	if err := json.Unmarshal(sc.Bytes(), &second); err != nil || second["linked"] != linked[0]["device"] {
		t.Fatalf("device add said %q, link %v", sc.Text(), linked)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device add: %v: %s", err, stderr.String())
	}
	return second["linked"].(float64), linked[0]
}

// TestDevicesHistoryRecovery: issue 9 parts 2 to 4 with the hush command,
// as a person runs it. A device linked later shows the earlier ordinary
// history, both directions, in order; a removed device is refused; with
// every device gone, the recovery code brings the history back and a
// wrong one creates nothing; the secret conversation stays on the secret
// devices, and the server's folder never holds a message's text.
func TestDevicesHistoryRecovery(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice1, bob := newHome(t, "alice"), newHome(t, "bob")
	reg := lines(t, alice1.must("register", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", "alice", "--json"))
	code, _ := reg[0]["recovery_code"].(string)
	if len(code) != 39 {
		t.Fatalf("register printed no recovery code: %v", reg)
	}
	bob.register(s)

	alice1.must("send", "--to", "bob", "canary-ordinary-one")
	bob.must("recv")
	bob.must("send", "--to", "alice", "canary-ordinary-two")
	alice1.must("recv")
	alice1.must("send", "--secret", "--to", "bob", "canary-secret")
	bob.must("recv")

	alice2 := newHome(t, "alice")
	id2, linked := addDevice(t, s, alice1, alice2)
	if linked["history"] != float64(2) {
		t.Fatalf("link read %v lines of history", linked["history"])
	}
	want := []string{"canary-ordinary-one", "canary-ordinary-two"}
	if got := texts(lines(t, alice2.must("history", "--json", "bob"))); !equal(got, want) {
		t.Fatalf("the linked device's history %q, want %q", got, want)
	}
	// The new device talks at once, and is in the fan-out of both sides.
	alice2.must("send", "--to", "bob", "canary-from-the-new-device")
	if got := texts(lines(t, bob.must("recv", "--json"))); !equal(got, []string{"canary-from-the-new-device"}) {
		t.Fatalf("bob got %q", got)
	}
	want = append(want, "canary-from-the-new-device")

	// A mistyped or reused code.
	other := newHome(t, "alice")
	if _, e, code := other.run("link", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--code", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"); code != 1 || !strings.Contains(e, "no such link code") {
		t.Fatalf("a code never offered: exit %d: %s", code, e)
	}
	if _, err := os.Stat(other.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed link left a home behind")
	}
	if _, e, code := alice2.run("device", "remove", "2"); code != 1 || !strings.Contains(e, "cannot remove itself") {
		t.Fatalf("a device removing itself: exit %d: %s", code, e)
	}

	// Removed, the device is refused.
	alice1.must("device", "remove", strings.TrimSuffix(strings.TrimSpace(jsonNum(id2)), ".0"))
	if _, e, code := alice2.run("recv"); code != 1 || !strings.Contains(e, "refused") {
		t.Fatalf("recv on a removed device: exit %d: %s", code, e)
	}
	alice1.must("send", "--to", "bob", "canary-after-removal")
	want = append(want, "canary-after-removal")

	// Every device lost: a wrong code creates nothing, the right one brings
	// the history back.
	if err := os.RemoveAll(alice1.dir); err != nil {
		t.Fatal(err)
	}
	restored := newHome(t, "alice")
	if _, e, code := restored.run("link", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", "alice",
		"--recovery-code", "BBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBB"); code != 1 || !strings.Contains(e, "recovery code does not open") {
		t.Fatalf("a wrong recovery code: exit %d: %s", code, e)
	}
	if _, err := os.Stat(restored.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed recovery left a home behind")
	}
	restored.must("link", "--server", s.URL, "--server-fingerprint", s.Fingerprint, "--user", "alice", "--recovery-code", code)
	bob.must("recv") // alice2's device is gone from the fan-out; bob learns it on his next send
	if got := texts(lines(t, restored.must("history", "--json", "--ordinary", "bob"))); !equal(got, want) {
		t.Fatalf("the restored history %q, want %q", got, want)
	}
	bob.must("send", "--to", "alice", "canary-welcome-back")
	if got := texts(lines(t, restored.must("recv", "--json"))); !equal(got, []string{"canary-welcome-back"}) {
		t.Fatalf("the restored device got %q", got)
	}

	// The secret conversation stayed on the secret devices, and no text is
	// in the server's folder, in any file.
	for _, h := range []*home{alice2, restored} {
		if out, _, _ := h.run("history", "--json", "bob"); strings.Contains(out, "canary-secret") {
			t.Fatalf("%s shows the secret conversation", h.dir)
		}
	}
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("canary")) {
			t.Errorf("the server's %s holds a message's text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
