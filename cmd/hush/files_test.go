package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/attach"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// writeRandom writes size random bytes to a new file and returns its
// path and SHA-256, streaming (a 100 MiB file is not held in memory).
func writeRandom(t testing.TB, dir, name string, size int64) (string, [32]byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return p, sum
}

func fileSum(t testing.TB, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// filesIn lists the regular files under dir (none if it does not exist).
func filesIn(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// blobFile finds the server's file of a blob of the given size.
func blobFile(t testing.TB, s *hushd, size int64) string {
	t.Helper()
	for _, p := range filesIn(t, s.Dir) {
		if fi, err := os.Stat(p); err == nil && fi.Size() == size && !strings.Contains(p, ".db") {
			return p
		}
	}
	t.Fatalf("no blob file of %d bytes under %s", size, s.Dir)
	return ""
}

// attachments reads the "attachments" of a recv/history JSON line.
func attachmentsOf(t testing.TB, m map[string]any) []map[string]any {
	t.Helper()
	raw, _ := m["attachments"].([]any)
	out := make([]map[string]any, len(raw))
	for i, a := range raw {
		out[i] = a.(map[string]any)
	}
	return out
}

// messagesOnly keeps the messages among JSON lines.
func messagesOnly(ms []map[string]any) []map[string]any {
	var out []map[string]any
	for _, m := range ms {
		if m["kind"] == "message" {
			out = append(out, m)
		}
	}
	return out
}

func noticesOnly(ms []map[string]any) []string {
	var out []string
	for _, m := range ms {
		if m["kind"] == "notice" {
			out = append(out, m["text"].(string))
		}
	}
	return out
}

// TestFileRoundTrip: a 100 MiB file, its upload killed half-way and
// resumed by the same command, reaches bob whole (SHA-256), saved in his
// files folder, and the blob is gone from the server once he has it. It
// reports the peak RSS of the send and the receive, and the throughput.
func TestFileRoundTrip(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 100 MiB file")
	}
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	alice.must("send", "--to", "bob", "hello first") // bob's devices known
	bob.must("recv")
	size := int64(client.MaxFileSize)
	path, sum := writeRandom(t, t.TempDir(), "big file.bin", size)
	total := attach.V2.CiphertextSize(size)

	// The first run, killed once the server has more than half.
	cmd := hushCmd(alice.dir, "send", "--to", "bob", "--file", path, "the big one")
	cmd.Env = append(cmd.Env, "HUSH_TRACE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	killedAt := int64(-1)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		f := strings.Fields(sc.Text())
		if len(f) == 5 && f[2] == "upload" {
			got, _ := strconv.ParseInt(f[3], 10, 64)
			if got >= total/2 {
				cmd.Process.Signal(syscall.SIGKILL)
				killedAt = got
				break
			}
		}
	}
	go io.Copy(io.Discard, stderr)
	cmd.Wait()
	if killedAt < 0 {
		t.Fatalf("the upload was not seen half-way; standard error:\n%s", strings.Join(seen, "\n"))
	}
	if len(filesIn(t, filepath.Join(bob.dir, "files"))) != 0 {
		t.Fatal("bob has a file before the message was sent")
	}

	// The same command again resumes: it sends only what is missing.
	start := time.Now()
	cmd = hushCmd(alice.dir, "--json", "send", "--to", "bob", "--file", path, "the big one")
	cmd.Env = append(cmd.Env, "HUSH_TRACE=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resumed send: %v\n%s", err, errb.String())
	}
	upload := time.Since(start)
	sendRSS := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	first := int64(-1)
	for _, l := range strings.Split(errb.String(), "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[2] == "upload" && first < 0 {
			first, _ = strconv.ParseInt(f[3], 10, 64)
		}
	}
	if first < killedAt || first > killedAt+2*(8<<20) {
		t.Errorf("the resumed upload's first chunk ends at %d; the killed one had %d on the server", first, killedAt)
	}
	sent := lines(t, out.String())
	if len(sent) != 1 || len(attachmentsOf(t, sent[0])) != 1 {
		t.Fatalf("send printed %v", sent)
	}
	if a := attachmentsOf(t, sent[0])[0]; a["sha256"] != hex.EncodeToString(sum[:]) || a["size"] != float64(size) {
		t.Fatalf("sent %v", a)
	}
	if blobFile(t, s, total) == "" {
		t.Fatal("no blob")
	}

	start = time.Now()
	cmd = hushCmd(bob.dir, "recv", "--json")
	out.Reset()
	errb.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("recv: %v\n%s", err, errb.String())
	}
	download := time.Since(start)
	recvRSS := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	ms := messagesOnly(lines(t, out.String()))
	if len(ms) != 1 || ms[0]["text"] != "the big one" {
		t.Fatalf("bob got %v", ms)
	}
	as := attachmentsOf(t, ms[0])
	if len(as) != 1 || as[0]["name"] != "big file.bin" || as[0]["size"] != float64(size) || as[0]["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("attachments %v", as)
	}
	saved := as[0]["path"].(string)
	if filepath.Dir(saved) != filepath.Join(bob.dir, "files") || fileSum(t, saved) != sum {
		t.Fatalf("saved as %s, or not the file", saved)
	}
	// Bob confirmed: the server deleted the blob.
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		for _, p := range filesIn(t, s.Dir) {
			if fi, _ := os.Stat(p); fi != nil && fi.Size() == total {
				found = true
			}
		}
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blob is still on the server after bob has it")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// history --json carries it too.
	hist := messagesOnly(lines(t, bob.must("--json", "history", "alice")))
	if as := attachmentsOf(t, hist[len(hist)-1]); len(as) != 1 || as[0]["path"] != saved {
		t.Fatalf("history: %v", hist[len(hist)-1])
	}
	mb := float64(size) / (1 << 20)
	// Throughput: the same file again, whole, not interrupted.
	timed := func(h *home, args ...string) (time.Duration, int64) {
		t.Helper()
		cmd := hushCmd(h.dir, args...)
		var e bytes.Buffer
		cmd.Stderr = &e
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, e.String())
		}
		return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	up, upRSS := timed(alice, "send", "--to", "bob", "--file", path, "again")
	down, downRSS := timed(bob, "recv")
	t.Logf("100 MiB whole: send (encrypt, hash, copy, upload) %v = %.0f MiB/s, recv (download, check, decrypt, save, confirm) %v = %.0f MiB/s, "+
		"end to end %.0f MiB/s; peak RSS send %d MiB, recv %d MiB",
		up.Round(time.Millisecond), mb/up.Seconds(), down.Round(time.Millisecond), mb/down.Seconds(), mb/(up+down).Seconds(), upRSS>>10, downRSS>>10)
	// The floor in the same run: encrypting and decrypting the same size
	// in memory with internal/attach alone (one core), on this machine now.
	k := attach.NewKey()
	start = time.Now()
	enc, _ := attach.NewStreamEncrypter(io.Discard, k, size)
	io.CopyN(enc, zeros{}, size)
	enc.Close()
	encFloor := time.Since(start)
	t.Logf("floor now: internal/attach encrypts 100 MiB in %v (%.0f MiB/s)", encFloor.Round(time.Millisecond), mb/encFloor.Seconds())
	t.Logf("100 MiB: resumed upload of %.0f MiB in %v (%.0f MiB/s), download and save in %v (%.0f MiB/s); peak RSS send %d MiB, recv %d MiB",
		float64(total-killedAt)/(1<<20), upload.Round(time.Millisecond), float64(total-killedAt)/(1<<20)/upload.Seconds(),
		download.Round(time.Millisecond), mb/download.Seconds(), sendRSS>>10, recvRSS>>10)
	if sendRSS > 200<<10 || recvRSS > 200<<10 {
		t.Errorf("peak RSS send %d MiB, recv %d MiB: not streaming", sendRSS>>10, recvRSS>>10)
	}
}

// TestFileTampered: a byte flipped in the blob on the server: bob refuses
// the file, saves nothing, and a notice says so.
func TestFileTampered(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	bob.must("send", "--secret", "--to", "alice", "hi")
	alice.must("recv")
	path, _ := writeRandom(t, t.TempDir(), "report.pdf", 300_000)
	alice.must("send", "--secret", "--to", "bob", "--file", path)
	bf := blobFile(t, s, attach.V2.CiphertextSize(300_000))
	b, err := os.ReadFile(bf)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(bf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dl := t.TempDir()
	got := lines(t, bob.must("recv", "--json", "--download-dir", dl))
	ms := messagesOnly(got)
	if len(ms) != 1 {
		t.Fatalf("bob got %v", got)
	}
	as := attachmentsOf(t, ms[0])
	if len(as) != 1 || as[0]["state"] != "refused" || as[0]["path"] != "" {
		t.Fatalf("attachments %v", as)
	}
	if ns := noticesOnly(got); len(ns) != 1 || !strings.Contains(ns[0], "report.pdf") || !strings.Contains(ns[0], "refused") {
		t.Fatalf("notices %q", ns)
	}
	if fs := append(filesIn(t, dl), filesIn(t, filepath.Join(bob.dir, "files"))...); len(fs) != 0 {
		t.Fatalf("files saved: %v", fs)
	}
	if fs := filesIn(t, filepath.Join(bob.dir, "tmp")); len(fs) != 0 {
		t.Fatalf("temporary files left: %v", fs)
	}
}

// TestFileDisappears: a file sent with a timer is deleted from both homes
// when the timer runs out.
func TestFileDisappears(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	bob.must("send", "--secret", "--to", "alice", "hi")
	alice.must("recv")
	path, sum := writeRandom(t, t.TempDir(), "photo.jpg", 2<<20)
	alice.must("send", "--secret", "--to", "bob", "--timer", "5s", "--file", path, "for your eyes only")
	if fs := filesIn(t, filepath.Join(alice.dir, "files")); len(fs) != 1 || fileSum(t, fs[0]) != sum {
		t.Fatalf("alice's copy: %v", fs)
	}
	ms := messagesOnly(lines(t, bob.must("recv", "--json")))
	if len(ms) != 1 || len(attachmentsOf(t, ms[0])) != 1 {
		t.Fatalf("bob got %v", ms)
	}
	saved := attachmentsOf(t, ms[0])[0]["path"].(string)
	if fileSum(t, saved) != sum {
		t.Fatal("bob's file differs")
	}
	// Both countdowns have started (alice's when the server took it,
	// bob's when recv showed it): within 5 s and a margin, both go.
	deadline := time.Now().Add(30 * time.Second)
	for {
		alice.must("list")
		bob.must("list")
		a, b := filesIn(t, filepath.Join(alice.dir, "files")), filesIn(t, filepath.Join(bob.dir, "files"))
		if len(a) == 0 && len(b) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files still there: %v %v", a, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ms := messagesOnly(lines(t, bob.must("--json", "history", "alice"))); len(ms) != 1 {
		t.Fatalf("bob's history: %v", ms)
	}
}

// TestFileExpiresPending: bob is shown a message with a timer whose file
// could not be downloaded (the server refuses the download: bob's
// download bytes are limited to almost nothing here), so the file stays
// pending; when his countdown ends, the message goes and his hush tells
// the server it will never fetch the blob: the blob is gone from the
// server's folder after the timer, not after 30 days.
func TestFileExpiresPending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	limits := servertest.Generous
	limits.BlobDownloadPerDev = ratelimit.Limit{Rate: 1, Burst: 1000}
	s := &hushd{Env: servertest.StartIn(t, server.Config{Limits: limits}, dir), Dir: dir}
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	bob.must("send", "--secret", "--to", "alice", "hi")
	alice.must("recv")
	path, _ := writeRandom(t, t.TempDir(), "photo.jpg", 300_000)
	alice.must("send", "--secret", "--to", "bob", "--timer", "5s", "--file", path, "for your eyes only")
	bf := blobFile(t, s, attach.V2.CiphertextSize(300_000))
	cmd := hushCmd(bob.dir, "recv", "--json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run() // warns about the file it could not download
	ms := messagesOnly(lines(t, out.String()))
	if len(ms) != 1 || len(attachmentsOf(t, ms[0])) != 1 || attachmentsOf(t, ms[0])[0]["state"] != "pending" {
		t.Fatalf("bob got %v (stderr %s)", ms, errb.String())
	}
	if _, err := os.Stat(bf); err != nil {
		t.Fatalf("the blob went before the timer: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		bob.must("list")
		if _, err := os.Stat(bf); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blob of the expired message is still on the server")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ms := messagesOnly(lines(t, bob.must("--json", "history", "alice"))); len(ms) != 1 {
		t.Fatalf("bob's history: %v", ms)
	}
}

// TestFileChecks: what is refused before anything is uploaded, and names
// that would be dangerous are saved safely.
func TestFileChecks(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice, bob := newHome(t, "alice"), newHome(t, "bob")
	alice.register(s)
	bob.register(s)
	dir := t.TempDir()
	big := filepath.Join(dir, "huge.iso")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(client.MaxFileSize + 1)
	f.Close()
	before := len(filesIn(t, s.Dir))
	_, e, code := alice.run("send", "--to", "bob", "--file", big, "too big")
	if code != 1 || !strings.Contains(e, "huge.iso") || !strings.Contains(e, "at most 100 MiB") {
		t.Fatalf("oversize: exit %d, %s", code, e)
	}
	if _, e, code := alice.run("send", "--to", "bob", "--file", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(e, "missing") {
		t.Fatalf("missing file: exit %d, %s", code, e)
	}
	if _, _, code := alice.run("send", "--to", "bob"); code != 2 {
		t.Fatalf("no text, no file: exit %d", code)
	}
	if n := len(filesIn(t, s.Dir)); n != before {
		t.Fatalf("the server has %d files more after refused sends", n-before)
	}
	if ms := lines(t, alice.must("--json", "history", "bob")); len(ms) != 0 {
		t.Fatalf("refused sends stored %v", ms)
	}

	// Hostile names, as a file system allows them.
	var paths []string
	names := []string{"..", "-rf", ".bashrc", "CON.txt", "evil\u202etxt.exe", "bell\x07\x1b[2J.txt", " "}
	for i, n := range names {
		if n == ".." {
			n = "...."
		}
		p, _ := writeRandom(t, t.TempDir(), n, int64(100+i))
		paths = append(paths, p)
	}
	args := []string{"send", "--to", "bob"}
	for _, p := range paths {
		args = append(args, "--file", p)
	}
	alice.must(args...)
	ms := messagesOnly(lines(t, bob.must("recv", "--json")))
	if len(ms) != 1 {
		t.Fatalf("bob got %v", ms)
	}
	files := filepath.Join(bob.dir, "files")
	var got []string
	for _, a := range attachmentsOf(t, ms[0]) {
		p := a["path"].(string)
		if filepath.Dir(p) != files || strings.HasPrefix(filepath.Base(p), ".") || strings.HasPrefix(filepath.Base(p), "-") {
			t.Errorf("saved as %q", p)
		}
		got = append(got, filepath.Base(p))
	}
	want := "[____ _rf _bashrc _CON.txt evil_txt.exe bell__[2J.txt _]"
	if fmt.Sprint(got) != want {
		t.Errorf("saved names %v, want %s", got, want)
	}
	// Printed, the names are inert.
	out := bob.must("history", "alice")
	if strings.ContainsAny(out, "\x07\x1b\u202e") {
		t.Errorf("history prints control characters: %q", out)
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
