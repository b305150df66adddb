package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/attach"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
)

// fakeBlobs is the server's blob API in memory, as docs/api.md says it
// behaves: chunks must start where the upload stands.
type fakeBlobs struct {
	mu      sync.Mutex
	blobs   map[string]*fakeBlob
	failAt  int64 // an UploadChunk that would pass this offset fails (0: never)
	chunks  int
	deleted []string
}

type fakeBlob struct {
	size int64
	data []byte
}

func newFakeBlobs() *fakeBlobs { return &fakeBlobs{blobs: map[string]*fakeBlob{}} }

func notFound() error {
	return &apiclient.Error{Status: 404, Code: api.CodeNotFound, Message: "no such blob"}
}

func (f *fakeBlobs) CreateBlob(_ context.Context, size int64) (api.BlobState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size < 1 || size > api.MaxBlobBytes {
		return api.BlobState{}, &apiclient.Error{Status: 413, Code: api.CodeTooLarge}
	}
	var b [16]byte
	rand.Read(b[:])
	id := strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(fmt.Sprintf("%x", b[:])[:22])
	f.blobs[id] = &fakeBlob{size: size}
	return api.BlobState{ID: id, Size: size}, nil
}

func (f *fakeBlobs) UploadChunk(_ context.Context, id string, off int64, body io.Reader, n int64) (api.BlobState, error) {
	b, err := io.ReadAll(body)
	if err != nil || int64(len(b)) != n {
		return api.BlobState{}, fmt.Errorf("short body: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	bl := f.blobs[id]
	switch {
	case bl == nil:
		return api.BlobState{}, notFound()
	case off != int64(len(bl.data)):
		return api.BlobState{}, &apiclient.Error{Status: 409, Code: api.CodeBadOffset}
	case off+n > bl.size:
		return api.BlobState{}, &apiclient.Error{Status: 413, Code: api.CodeTooLarge}
	case f.failAt > 0 && off+n > f.failAt:
		return api.BlobState{}, errors.New("connection reset (test)")
	}
	f.chunks++
	bl.data = append(bl.data, b...)
	return api.BlobState{ID: id, Size: bl.size, Received: int64(len(bl.data))}, nil
}

func (f *fakeBlobs) BlobState(_ context.Context, id string) (api.BlobState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bl := f.blobs[id]
	if bl == nil {
		return api.BlobState{}, notFound()
	}
	return api.BlobState{ID: id, Size: bl.size, Received: int64(len(bl.data))}, nil
}

func (f *fakeBlobs) DownloadBlob(_ context.Context, id string, from int64, w io.Writer) (int64, error) {
	f.mu.Lock()
	bl := f.blobs[id]
	f.mu.Unlock()
	if bl == nil || int64(len(bl.data)) != bl.size {
		return 0, notFound()
	}
	n, err := w.Write(bl.data[from:])
	return int64(n), err
}

func (f *fakeBlobs) DeleteBlob(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blobs[id] == nil {
		return notFound()
	}
	delete(f.blobs, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func testClient(t *testing.T, blobs blobClient) *Client {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "home"), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Client{st: st, blobs: blobs, acct: &store.Account{Username: "alice"}}
}

func writeFile(t *testing.T, name string, size int) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestUploadResumes: an upload that fails half-way is remembered; the
// same file sent again continues where the server's copy stops (no chunk
// sent twice), and what the server holds decrypts to the file under the
// key and digest of the attachment.
func TestUploadResumes(t *testing.T) {
	fb := newFakeBlobs()
	c := testClient(t, fb)
	path, data := writeFile(t, "big.bin", 3*uploadChunk+12345)
	total := sendScheme.CiphertextSize(int64(len(data)))
	fb.failAt = 2*uploadChunk + 10
	if _, err := c.uploadFiles(t.Context(), "bob", true, []string{path}); err == nil {
		t.Fatal("the upload did not fail")
	}
	if fb.chunks != 2 {
		t.Fatalf("%d chunks before the failure, want 2", fb.chunks)
	}
	fb.failAt = 0
	var seen []int64
	c.opts.Progress = func(p Progress) { seen = append(seen, p.Done) }
	us, err := c.uploadFiles(t.Context(), "bob", true, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	if want := int((total + uploadChunk - 1) / uploadChunk); fb.chunks != want {
		t.Errorf("%d chunks in all, want %d (none sent twice)", fb.chunks, want)
	}
	if len(seen) == 0 || seen[0] != 2*uploadChunk || seen[len(seen)-1] != total {
		t.Errorf("progress %v", seen)
	}
	a := us[0].att
	if len(fb.blobs) != 1 || a.Size != int64(len(data)) || a.SHA256 != sha256.Sum256(data) || a.Name != "big.bin" {
		t.Fatalf("attachment %v, %d blobs", a, len(fb.blobs))
	}
	var out bytes.Buffer
	if a.Format() != attach.V2 {
		t.Fatalf("sent in scheme %d", a.Format())
	}
	dec, err := attach.NewOpener(a.Format(), &out, a.Key, a.Size, a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	dec.Write(fb.blobs[a.BlobID].data)
	if err := dec.Close(); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("the server's copy does not decrypt to the file: %v", err)
	}
	// This home's copy of the file sent.
	if got, err := os.ReadFile(a.Path); err != nil || !bytes.Equal(got, data) || filepath.Dir(a.Path) != filepath.Join(c.st.Home(), FilesDir) {
		t.Fatalf("home copy %s: %v", a.Path, err)
	}
	// The blob expired on the server: a new one.
	delete(fb.blobs, a.BlobID)
	us, err = c.uploadFiles(t.Context(), "bob", true, []string{path})
	if err != nil || us[0].att.BlobID == a.BlobID || len(fb.blobs) != 1 {
		t.Fatalf("after expiry: %v, %v", us, err)
	}
}

// TestUploadChecks: files are refused before anything is uploaded.
func TestUploadChecks(t *testing.T) {
	fb := newFakeBlobs()
	c := testClient(t, fb)
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxFileSize + 1)
	f.Close()
	small, _ := writeFile(t, "small", 10)
	for name, paths := range map[string][]string{
		"too large":    {small, big},
		"missing":      {filepath.Join(t.TempDir(), "nope")},
		"a folder":     {t.TempDir()},
		"too many":     slicesRepeat(small, MaxFiles+1),
		"dev null-ish": {"/dev/null"},
	} {
		_, err := c.uploadFiles(t.Context(), "bob", false, paths)
		if err == nil || len(fb.blobs) != 0 {
			t.Errorf("%s: %v, %d blobs", name, err, len(fb.blobs))
		}
		if name == "too large" && (!errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), big)) {
			t.Errorf("too large: %v", err)
		}
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestDownload: a received file is saved under its sanitised name,
// without clobbering; a flipped byte, a truncated or extended blob, a
// wrong SHA-256 are refused with nothing saved; a blob the server no
// longer has is refused. In format v2, and in v1 as clients sent it
// before 2026-12-03 (still received).
func TestDownload(t *testing.T) {
	for _, s := range []attach.Scheme{attach.V2, attach.V1} {
		t.Run(fmt.Sprintf("v%d", s), func(t *testing.T) {
			defer func(old attach.Scheme) { sendScheme = old }(sendScheme)
			sendScheme = s
			testDownload(t, s)
		})
	}
}

func testDownload(t *testing.T, scheme attach.Scheme) {
	fb := newFakeBlobs()
	sender := testClient(t, fb)
	recv := testClient(t, fb)
	path, data := writeFile(t, "photo.jpg", 100_000)
	us, err := sender.uploadFiles(t.Context(), "bob", true, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	good := us[0].att.Attachment
	if good.Format() != scheme {
		t.Fatalf("sent in scheme %d", good.Format())
	}
	dir := filepath.Join(t.TempDir(), "downloads")
	for _, name := range []string{"../../etc/passwd", "..", "/abs/x", "CON", ".hidden", "a\u202etxt.exe", "photo.jpg", "photo.jpg"} {
		a := store.Attachment{Attachment: good}
		a.Name = name
		p, err := recv.download(t.Context(), a, dir)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if filepath.Dir(p) != dir || strings.HasPrefix(filepath.Base(p), ".") {
			t.Errorf("%q saved as %s", name, p)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%q: content differs", name)
		}
	}
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if want := "[_CON __ ___.._etc_passwd _abs_x _hidden a_txt.exe photo (1).jpg photo.jpg]"; fmt.Sprint(names) != want {
		t.Errorf("saved %v, want %s", names, want)
	}

	blob := fb.blobs[good.BlobID].data
	bad := func(name string, mutate func(*store.Attachment)) {
		t.Helper()
		orig := bytes.Clone(blob)
		a := store.Attachment{Attachment: good}
		mutate(&a)
		d := filepath.Join(t.TempDir(), "d")
		_, err := recv.download(t.Context(), a, d)
		if !errors.Is(err, attach.ErrCorrupt) && !errors.Is(err, errBlobGone) {
			t.Errorf("%s: %v", name, err)
		}
		if es, _ := os.ReadDir(d); len(es) != 0 {
			t.Errorf("%s: %d files left", name, len(es))
		}
		fb.blobs[good.BlobID] = &fakeBlob{size: int64(len(orig)), data: orig}
		blob = orig
	}
	bad("flipped byte", func(*store.Attachment) { fb.blobs[good.BlobID].data[5000] ^= 1 })
	bad("flipped tag", func(*store.Attachment) { fb.blobs[good.BlobID].data[len(blob)-1] ^= 1 })
	bad("wrong digest", func(a *store.Attachment) { a.Digest[0] ^= 1 })
	bad("wrong sha256", func(a *store.Attachment) { a.SHA256[0] ^= 1 })
	bad("wrong size", func(a *store.Attachment) { a.Size-- })
	bad("extended", func(*store.Attachment) {
		fb.blobs[good.BlobID].data = append(bytes.Clone(blob), 0)
		fb.blobs[good.BlobID].size++
	})
	bad("gone", func(*store.Attachment) { delete(fb.blobs, good.BlobID) })
	bad("the other scheme", func(a *store.Attachment) { a.Scheme = 3 - a.Format() })
	a := store.Attachment{Attachment: good}
	a.Scheme = 9
	if _, err := recv.download(t.Context(), a, t.TempDir()); !errors.Is(err, attach.ErrUnsupported) {
		t.Errorf("scheme 9: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Join(recv.st.Home(), tmpDir)); len(es) != 0 {
		t.Errorf("%d temporary files left", len(es))
	}
}

// TestPlaceNeverClobbers: concurrent saves of one name all land, under
// distinct names.
func TestPlaceNeverClobbers(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	paths := make([]string, 20)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := filepath.Join(dir, fmt.Sprintf(".tmp%d", i))
			os.WriteFile(tmp, []byte{byte(i)}, 0o600)
			p, err := place(tmp, dir, "same.txt")
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) != 1 || b[0] != byte(i) || seen[p] {
			t.Fatalf("%d: %s %v %v", i, p, b, err)
		}
		seen[p] = true
	}
}

// TestPlaceAcrossFileSystems: a file received into the home's tmp folder
// and saved in a download folder on another file system (no link, no
// rename) is copied there and named, without clobbering, and only named
// files are left there.
func TestPlaceAcrossFileSystems(t *testing.T) {
	other, err := os.MkdirTemp("/dev/shm", "hush-test-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	home := t.TempDir()
	var st1, st2 syscall.Stat_t
	if syscall.Stat(home, &st1) != nil || syscall.Stat(other, &st2) != nil || st1.Dev == st2.Dev {
		t.Skip("/dev/shm is on the same file system as the temporary folder")
	}
	os.WriteFile(filepath.Join(other, "a.txt"), []byte("already there"), 0o600)
	tmp, err := os.CreateTemp(home, ".hush-download-")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	tmp.WriteString("the file")
	p, err := placeFrom(tmp, other, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "the file" || p != filepath.Join(other, "a (1).txt") {
		t.Fatalf("placed as %s: %q, %v", p, b, err)
	}
	es, _ := os.ReadDir(other)
	if len(es) != 2 {
		t.Fatalf("the download folder holds %v", es)
	}
}

// TestFileNamesOnDisk: names from FuzzFileName's worst cases are saved in
// the folder given, and nowhere else.
func TestFileNamesOnDisk(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"../x", "..", "a/../../b", "\x00", strings.Repeat("é", 300), "con.txt", " .. "} {
		tmp := filepath.Join(dir, ".t")
		os.WriteFile(tmp, nil, 0o600)
		p, err := place(tmp, dir, content.FileName(n))
		if err != nil || filepath.Dir(p) != dir {
			t.Fatalf("%q: %s %v", n, p, err)
		}
	}
	_ = time.Second
}

// TestUploadV1NotResumedAsV2: an upload a v1 client left half-way is not
// continued in format v2 (the bytes would not match): a new blob, whole.
func TestUploadV1NotResumedAsV2(t *testing.T) {
	fb := newFakeBlobs()
	c := testClient(t, fb)
	path, data := writeFile(t, "old.bin", 2*uploadChunk+5)
	sendScheme = attach.V1
	fb.failAt = uploadChunk + 10
	_, err := c.uploadFiles(t.Context(), "bob", true, []string{path})
	sendScheme, fb.failAt = attach.V2, 0
	if err == nil {
		t.Fatal("the upload did not fail")
	}
	us, err := c.uploadFiles(t.Context(), "bob", true, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	a := us[0].att
	var out bytes.Buffer
	dec, _ := attach.NewOpener(a.Format(), &out, a.Key, a.Size, a.Digest)
	dec.Write(fb.blobs[a.BlobID].data)
	if err := dec.Close(); err != nil || a.Format() != attach.V2 || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("scheme %d: %v", a.Format(), err)
	}
	if len(fb.blobs) != 1 || len(fb.deleted) != 1 {
		t.Fatalf("%d blobs left, %d discarded: the v1 one stays", len(fb.blobs), len(fb.deleted))
	}
}
