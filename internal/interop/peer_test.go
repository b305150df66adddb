package interop

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// hushpeerBin is built once per test binary.
var (
	buildOnce sync.Once
	hushpeer  string
	buildErr  error
)

func hushpeerPath(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hushpeer-")
		if err != nil {
			buildErr = err
			return
		}
		hushpeer = filepath.Join(dir, "hushpeer")
		out, err := exec.Command("go", "build", "-o", hushpeer, "github.com/hushmsg/hush/cmd/hushpeer").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building hushpeer: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return hushpeer
}

var (
	installMu sync.Mutex
	installed = map[string]string{} // version -> peer.mjs path
)

// nodePeer installs libsignal-client ver (once) and returns its script.
// Without Node.js and npm, or where the release's native addon does not
// load, the test skips (fails with HUSH_INTEROP_REQUIRED set).
func nodePeer(t *testing.T, ver string) string {
	t.Helper()
	required := os.Getenv("HUSH_INTEROP_REQUIRED") != ""
	skip := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf(format+" (HUSH_INTEROP_REQUIRED is set)", args...)
		}
		t.Skipf(format+" (set HUSH_INTEROP_REQUIRED=1 to fail instead)", args...)
	}
	if _, err := exec.LookPath("node"); err != nil {
		skip("interop with libsignal needs Node.js (node not found)")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		skip("interop with libsignal needs npm (not found)")
	}
	installMu.Lock()
	defer installMu.Unlock()
	if p, ok := installed[ver]; ok {
		if p == "" {
			skip("libsignal-client %s is not usable here (see the first test that tried it)", ver)
		}
		return p
	}
	installed[ver] = "" // tried: a skip below holds for the other tests too
	cache := os.Getenv("HUSH_INTEROP_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cache = filepath.Join(base, "hush-interop")
	}
	dir, out, err := installPeer(cache, filepath.Join("testdata", "libsignal-"+ver))
	if err != nil {
		skip("installing @signalapp/libsignal-client %s with npm failed: %v\n%s", ver, err, out)
	}
	p := filepath.Join(dir, "peer.mjs")
	// The package ships prebuilt native addons; one may not load on this
	// system (another libc, another architecture).
	cmd := exec.Command("node", p, "info")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		skip("@signalapp/libsignal-client %s does not load here (%v): %s", ver, err, nodeError(out))
	}
	installed[ver] = p
	return p
}

// nodeError picks the error out of what node printed as it failed.
func nodeError(out []byte) string {
	for l := range strings.Lines(string(out)) {
		if _, e, ok := strings.Cut(l, "Error: "); ok {
			return strings.TrimSpace(e)
		}
	}
	return strings.TrimSpace(string(out))
}

// peerFiles are what a peer folder in testdata holds.
var peerFiles = []string{"package.json", "package-lock.json", "peer.mjs"}

// installPeer installs the peer in folder src (testdata/libsignal-VER) into
// the cache shared by every test process (and .ci/run), and returns its
// folder there: VER-HASH, named by a hash of the files, so that a folder
// once in place never changes while another process runs node from it. It
// is installed into a fresh folder beside it and renamed into place, so
// that the name only ever holds a complete install, and under a lock on
// the cache between processes, so that one npm installs it while the
// others wait.
func installPeer(cache, src string) (dir string, npmOut []byte, err error) {
	h := sha256.New()
	for _, f := range peerFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	dir = filepath.Join(cache, strings.TrimPrefix(filepath.Base(src), "libsignal-")+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(dir); err == nil {
		return dir, nil, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", nil, err
	}
	defer lock.Close() // releases the lock
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(dir); err == nil {
		return dir, nil, nil // another process installed it while this one waited
	}
	// Left by an install that was killed: nobody else installs now.
	if old, err := filepath.Glob(filepath.Join(cache, ".install-*")); err == nil {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(cache, ".install-")
	if err != nil {
		return "", nil, err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	for _, f := range peerFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return "", nil, err
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", out, err
	}
	return dir, nil, os.Rename(tmp, dir)
}

// server is a long-running "node serve.mjs peer.mjs" (testdata/serve.mjs):
// the same peer, called the same way, without a Node start-up per call.
type server struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startServer(t *testing.T, peerScript string) *server {
	t.Helper()
	cmd := exec.Command("node", filepath.Join("testdata", "serve.mjs"), peerScript)
	// serve.mjs imports the peer from its own folder (with its node_modules).
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return s
}

func (s *server) call(args []string, stdin []byte) (string, string, int, error) {
	req, _ := json.Marshal(map[string]any{"args": args, "stdin": string(stdin)})
	if _, err := s.in.Write(append(req, '\n')); err != nil {
		return "", "", 0, err
	}
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		return "", "", 0, err
	}
	var res struct {
		Code   int    `json:"code"`
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return "", "", 0, fmt.Errorf("serve.mjs answered %q: %v", line, err)
	}
	return res.Stdout, res.Stderr, res.Code, nil
}

// party is one side of a conversation: hush or a libsignal release.
type party struct {
	t     *testing.T
	impl  string // "hush" or a libsignal version
	name  string
	state string
	argv0 []string
	srv   *server // for libsignal peers
}

func newParty(t *testing.T, impl, name string) *party {
	t.Helper()
	p := &party{t: t, impl: impl, name: name, state: filepath.Join(t.TempDir(), name+".json")}
	if impl == "hush" {
		p.argv0 = []string{hushpeerPath(t)}
	} else {
		p.srv = startServer(t, nodePeer(t, impl))
	}
	return p
}

func (p *party) String() string { return p.impl + "/" + p.name }

// run calls the peer and returns stdout, stderr and the exit code.
func (p *party) run(stdin []byte, args ...string) (string, string, int) {
	p.t.Helper()
	if p.srv != nil {
		out, errs, code, err := p.srv.call(args, stdin)
		if err != nil {
			p.t.Fatalf("%s %v: %v", p, args, err)
		}
		return out, errs, code
	}
	cmd := exec.Command(p.argv0[0], append(p.argv0[1:], args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			p.t.Fatalf("%s %v: %v", p, args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// must runs a call that has to succeed and decodes its JSON output.
func (p *party) must(stdin []byte, v any, args ...string) {
	p.t.Helper()
	out, errs, code := p.run(stdin, args...)
	if code != 0 {
		p.t.Fatalf("%s %s: exit %d: %s", p, strings.Join(args, " "), code, errs)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			p.t.Fatalf("%s %s: output %q: %v", p, args[0], out, err)
		}
	}
}

func (p *party) init(extra ...string) []byte {
	p.t.Helper()
	var b json.RawMessage
	p.must(nil, &b, append([]string{"init", "--state", p.state, "--name", p.name}, extra...)...)
	return b
}

func (p *party) start(peer *party, bundle []byte, extra ...string) {
	p.t.Helper()
	p.must(bundle, nil, append([]string{"start", "--state", p.state, "--peer", peer.name, "--bundle", "-"}, extra...)...)
}

type message struct {
	Type int    `json:"type"`
	Body string `json:"body"`
}

func (p *party) encrypt(peer *party, plaintext []byte) message {
	p.t.Helper()
	in, _ := json.Marshal(map[string]string{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	var m message
	p.must(in, &m, "encrypt", "--state", p.state, "--peer", peer.name)
	return m
}

// decrypt returns the plaintext, or nil and the exit code on failure.
func (p *party) decrypt(peer *party, m message, extra ...string) ([]byte, int) {
	p.t.Helper()
	in, _ := json.Marshal(m)
	out, errs, code := p.run(in, append([]string{"decrypt", "--state", p.state, "--peer", peer.name}, extra...)...)
	if code != 0 {
		if code != 1 {
			p.t.Fatalf("%s decrypt: exit %d (want 0 or 1): %s", p, code, errs)
		}
		return nil, code
	}
	var res struct {
		Plaintext string `json:"plaintext"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		p.t.Fatalf("%s decrypt output %q: %v", p, out, err)
	}
	pt, err := base64.StdEncoding.DecodeString(res.Plaintext)
	if err != nil {
		p.t.Fatal(err)
	}
	return pt, 0
}

// mustDecrypt decrypts and compares with want.
func (p *party) mustDecrypt(peer *party, m message, want []byte) {
	p.t.Helper()
	got, code := p.decrypt(peer, m)
	if code != 0 {
		p.t.Fatalf("%s could not decrypt a message from %s", p, peer)
	}
	if !bytes.Equal(got, want) {
		p.t.Fatalf("%s decrypted %q, want %q", p, short(got), short(want))
	}
}

// stateDigest hashes the state file, to check that a failed call left it alone.
func (p *party) stateDigest() string {
	p.t.Helper()
	b, err := os.ReadFile(p.state)
	if err != nil {
		p.t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func short(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s... (%d bytes)", b[:40], len(b))
	}
	return string(b)
}
