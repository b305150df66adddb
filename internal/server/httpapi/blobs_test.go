package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/testutil"
)

// Tests of the blob endpoints (docs/api.md "Blobs", issue 11).

func randomData(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// blobFiles lists the files in the server's blob folder.
func blobFiles(t *testing.T, env *servertest.Env) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(env.BlobDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// upload creates a blob holding data for c, complete.
func upload(t *testing.T, c *apiclient.Client, data []byte) string {
	t.Helper()
	st, err := c.CreateBlob(t.Context(), int64(len(data)))
	check(t, err)
	st, err = c.Upload(t.Context(), st.ID, bytes.NewReader(data), int64(len(data)), apiclient.UploadOptions{ChunkSize: 1 << 20})
	check(t, err)
	if st.Received != int64(len(data)) {
		t.Fatalf("upload ended at %d of %d", st.Received, len(data))
	}
	return st.ID
}

func download(t *testing.T, c *apiclient.Client, id string, from int64) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	n, err := c.DownloadBlob(t.Context(), id, from, &buf)
	if err == nil && n != int64(buf.Len()) {
		t.Fatalf("DownloadBlob said %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes(), err
}

// clock is a settable clock for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBlobRoundTrip(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	data := randomData(3<<20 + 5)

	// A partial upload, then Upload resumes where the server stands.
	st, err := alice.C.CreateBlob(ctx, int64(len(data)))
	check(t, err)
	if len(st.ID) != 22 || st.Size != int64(len(data)) || st.Received != 0 || st.ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("new blob %+v", st)
	}
	_, err = alice.C.UploadChunk(ctx, st.ID, 0, bytes.NewReader(data[:1000]), 1000)
	check(t, err)
	if s, err := alice.C.BlobState(ctx, st.ID); err != nil || s.Received != 1000 {
		t.Fatalf("state after a chunk: %+v %v", s, err)
	}
	var progress []int64
	st, err = alice.C.Upload(ctx, st.ID, bytes.NewReader(data), int64(len(data)),
		apiclient.UploadOptions{ChunkSize: 1 << 20, Progress: func(n int64) { progress = append(progress, n) }})
	check(t, err)
	if st.Received != st.Size || len(progress) != 3 || progress[0] != 1000+1<<20 {
		t.Fatalf("after Upload %+v, progress %v", st, progress)
	}
	id := st.ID

	// Bob cannot see it before a message carries it to him.
	_, err = download(t, bob.C, id, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	_, err = bob.C.BlobState(ctx, id)
	wantCode(t, err, 404, api.CodeNotFound)
	// Alice can.
	if got, err := download(t, alice.C, id, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the uploader's download: %d bytes, %v", len(got), err)
	}

	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("a file"), Blobs: []string{id}})
	check(t, err)
	got, err := download(t, bob.C, id, 0)
	check(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("bob downloaded other bytes")
	}
	// Resuming with a range.
	got, err = download(t, bob.C, id, 2<<20+7)
	check(t, err)
	if !bytes.Equal(got, data[2<<20+7:]) {
		t.Fatal("the range is not the blob's tail")
	}
	_, err = download(t, bob.C, id, int64(len(data))+1)
	wantCode(t, err, 416, api.CodeBadRequest)
	// The state stays the uploader's; the sent blob cannot be discarded.
	_, err = bob.C.BlobState(ctx, id)
	wantCode(t, err, 404, api.CodeNotFound)
	wantCode(t, alice.C.DeleteBlob(ctx, id), 409, api.CodeConflict)
	if n := len(blobFiles(t, env)); n != 1 {
		t.Fatalf("%d blob files, want 1", n)
	}

	// Bob confirms: the blob is gone, file and all.
	check(t, bob.C.DeleteBlob(ctx, id))
	_, err = download(t, bob.C, id, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	_, err = download(t, alice.C, id, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	wantCode(t, bob.C.DeleteBlob(ctx, id), 404, api.CodeNotFound)
	noBlobFiles(t, env, "after every recipient confirmed")

	// The uploader discards a blob no message carries.
	id2 := upload(t, alice.C, []byte("never sent"))
	check(t, alice.C.DeleteBlob(ctx, id2))
	_, err = alice.C.BlobState(ctx, id2)
	wantCode(t, err, 404, api.CodeNotFound)
	noBlobFiles(t, env, "after a discard")
}

func TestBlobOrdinarySend(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 2)
	bob := newPerson(t, env, "bob", 2, 2)
	carol := env.NewUser(t, "carol", 0)
	data := randomData(5000)
	id := upload(t, alice.devs[0], data)
	send := api.OrdinarySend{Recipients: []api.OrdinaryRecipient{bob.to(0, api.TypeOrdinarySignal, "file"), alice.to(1, api.TypeOrdinarySignal, "file")},
		Blobs: []string{id}}
	_, err := alice.devs[0].SendOrdinary(ctx, send)
	check(t, err)
	// Every recipient device, the sender's other device included, may
	// download it; nobody else.
	for _, c := range []*apiclient.Client{bob.devs[0], bob.devs[1], alice.devs[1]} {
		if got, err := download(t, c, id, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("a recipient device's download: %v", err)
		}
	}
	_, err = download(t, carol.C, id, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	// Gone once the last of them confirmed.
	for i, c := range []*apiclient.Client{bob.devs[0], bob.devs[1], alice.devs[1]} {
		if n := len(blobFiles(t, env)); n != 1 {
			t.Fatalf("%d files after %d confirmations", n, i)
		}
		check(t, c.DeleteBlob(ctx, id))
	}
	noBlobFiles(t, env, "after the last confirmation")
	// A fanout naming an unusable blob stores nothing.
	half, err := alice.devs[0].CreateBlob(ctx, 10)
	check(t, err)
	send.Blobs = []string{half.ID}
	_, err = alice.devs[0].SendOrdinary(ctx, send)
	wantCode(t, err, 409, api.CodeConflict)
	// Another device's blob is not the sender's.
	other := upload(t, alice.devs[1], []byte("x"))
	send.Blobs = []string{other}
	_, err = alice.devs[0].SendOrdinary(ctx, send)
	wantCode(t, err, 404, api.CodeNotFound)
}

func TestBlobGroupSend(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := newPerson(t, env, "alice", 2, 1)
	bob := newPerson(t, env, "bob", 2, 1)
	carol := newPerson(t, env, "carol", 1, 1)
	data := randomData(10000)
	id := upload(t, alice.devs[0], data)
	half, err := alice.devs[0].CreateBlob(ctx, 10)
	check(t, err)
	g := api.GroupSend{Devices: members(1, alice, alice, bob), Type: api.TypeSenderKey, Content: []byte("c"), Blobs: []string{id, half.ID}}
	_, err = alice.devs[0].SendGroup(ctx, g)
	wantCode(t, err, 409, api.CodeConflict)
	g.Blobs = []string{id}
	_, err = alice.devs[0].SendGroup(ctx, g)
	check(t, err)
	for _, c := range []*apiclient.Client{bob.devs[0], bob.devs[1], alice.devs[1]} {
		if got, err := download(t, c, id, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("a member device's download: %v", err)
		}
	}
	_, err = download(t, carol.devs[0], id, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	for _, c := range []*apiclient.Client{bob.devs[0], bob.devs[1], alice.devs[1]} {
		check(t, c.DeleteBlob(ctx, id))
	}
	noBlobFiles(t, env, "after every member confirmed")
}

func TestBlobAbuse(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BlobsPerDev = ratelimit.Limit{Rate: 1.0 / 3600, Burst: 6}
	env := servertest.Start(t, server.Config{Limits: lim, BlobQuota: 1 << 20, MaxBlobChunk: 64 << 10})
	alice := env.NewUser(t, "alice", 0)
	mallory := env.NewUser(t, "mallory", 0)

	st, err := alice.C.CreateBlob(ctx, 100<<10)
	check(t, err)
	id := st.ID
	// Bad offsets: nothing changes, the answer says where to go on.
	for _, off := range []int64{1, 100, 100 << 10} {
		_, err = alice.C.UploadChunk(ctx, id, off, bytes.NewReader([]byte("x")), 1)
		wantCode(t, err, 409, api.CodeBadOffset)
		if !strings.Contains(err.Error(), "stands at 0") {
			t.Fatalf("bad offset answer %v", err)
		}
	}
	// A chunk over the chunk limit, or past the declared size.
	_, err = alice.C.UploadChunk(ctx, id, 0, bytes.NewReader(make([]byte, 64<<10+1)), 64<<10+1)
	wantCode(t, err, 413, api.CodeTooLarge)
	_, err = alice.C.UploadChunk(ctx, id, 0, bytes.NewReader(make([]byte, 60<<10)), 60<<10)
	check(t, err)
	_, err = alice.C.UploadChunk(ctx, id, 60<<10, bytes.NewReader(make([]byte, 41<<10)), 41<<10)
	wantCode(t, err, 413, api.CodeTooLarge)
	// Empty chunks, missing or malformed offsets, a JSON body.
	_, err = alice.C.UploadChunk(ctx, id, 60<<10, bytes.NewReader(nil), 0)
	wantCode(t, err, 400, api.CodeBadRequest)
	for _, h := range []map[string]string{{}, {"Upload-Offset": "-1"}, {"Upload-Offset": "x"}, {"Upload-Offset": "+61440"},
		{"Upload-Offset": "61440", "Content-Type": "application/json"}} {
		req, _ := http.NewRequest("PATCH", env.URL+"/v1/blobs/"+id, strings.NewReader("abc"))
		req.Header.Set("Authorization", "Bearer "+alice.Cred.Credential)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := env.HTTP.Client().Do(req)
		check(t, err)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 415 {
			t.Fatalf("PATCH with %v: %d", h, resp.StatusCode)
		}
	}
	// A body of unknown length.
	req, _ := http.NewRequest("PATCH", env.URL+"/v1/blobs/"+id, io.MultiReader(strings.NewReader("abc")))
	req.Header.Set("Authorization", "Bearer "+alice.Cred.Credential)
	req.Header.Set("Upload-Offset", "61440")
	resp, err := env.HTTP.Client().Do(req)
	check(t, err)
	resp.Body.Close()
	if resp.StatusCode != 411 {
		t.Fatalf("PATCH without Content-Length: %d", resp.StatusCode)
	}
	if s, _ := alice.C.BlobState(ctx, id); s.Received != 60<<10 {
		t.Fatalf("refused chunks moved the upload to %d", s.Received)
	}

	// Another account: every blob request on alice's blob is "no such
	// blob", the same answer as for an id nobody has.
	nobody := base64.RawURLEncoding.EncodeToString(randomData(16))
	for _, bid := range []string{id, nobody} {
		_, err = mallory.C.BlobState(ctx, bid)
		wantCode(t, err, 404, api.CodeNotFound)
		_, err = download(t, mallory.C, bid, 0)
		wantCode(t, err, 404, api.CodeNotFound)
		_, err = mallory.C.UploadChunk(ctx, bid, 60<<10, bytes.NewReader([]byte("x")), 1)
		wantCode(t, err, 404, api.CodeNotFound)
		wantCode(t, mallory.C.DeleteBlob(ctx, bid), 404, api.CodeNotFound)
		_, err = mallory.C.Send(ctx, "alice", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{bid}})
		wantCode(t, err, 404, api.CodeNotFound)
	}
	// An incomplete blob cannot be sent, nor downloaded.
	_, err = alice.C.Send(ctx, "mallory", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{id}})
	wantCode(t, err, 409, api.CodeConflict)
	_, err = download(t, alice.C, id, 0)
	wantCode(t, err, 409, api.CodeConflict)
	// Too many blobs in one message.
	many := make([]string, api.MaxBlobsPerMessage+1)
	for i := range many {
		many[i] = base64.RawURLEncoding.EncodeToString(randomData(16))
	}
	_, err = alice.C.Send(ctx, "mallory", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: many})
	wantCode(t, err, 400, api.CodeBadRequest)

	// The quota: 1 MiB of declared sizes per account.
	_, err = alice.C.CreateBlob(ctx, 900<<10)
	check(t, err)
	_, err = alice.C.CreateBlob(ctx, 100<<10)
	wantCode(t, err, 413, api.CodeQuotaExceeded)
	// Discarding makes room.
	check(t, alice.C.DeleteBlob(ctx, id))
	_, err = alice.C.CreateBlob(ctx, 100<<10)
	check(t, err)
	// Oversize and empty blobs.
	_, err = alice.C.CreateBlob(ctx, api.MaxBlobBytes+1)
	wantCode(t, err, 413, api.CodeTooLarge)
	_, err = alice.C.CreateBlob(ctx, 0)
	wantCode(t, err, 400, api.CodeBadRequest)

	// Flooding creations: the device's burst (6), then 429.
	for i := 0; ; i++ {
		_, err := mallory.C.CreateBlob(ctx, 1)
		if err != nil {
			wantCode(t, err, 429, api.CodeRateLimited)
			if i != 6 {
				t.Fatalf("refused after %d creations, want 6", i)
			}
			break
		}
	}
}

// TestBlobRateLimits: chunk bytes per account and blob requests per
// device are limited.
func TestBlobRateLimits(t *testing.T) {
	ctx := t.Context()
	lim := servertest.Generous
	lim.BlobBytesPerAcct = ratelimit.Limit{Rate: 1, Burst: 64 << 10}
	lim.BlobRequestsPerDev = ratelimit.Limit{Rate: 1.0 / 3600, Burst: 30}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := env.NewUser(t, "alice", 0)
	st, err := alice.C.CreateBlob(ctx, 100<<10)
	check(t, err)
	_, err = alice.C.UploadChunk(ctx, st.ID, 0, bytes.NewReader(make([]byte, 60<<10)), 60<<10)
	check(t, err)
	_, err = alice.C.UploadChunk(ctx, st.ID, 60<<10, bytes.NewReader(make([]byte, 40<<10)), 40<<10)
	wantCode(t, err, 429, api.CodeRateLimited)

	// Requests per device: 30 in all, then 429 on every blob route.
	n := 0
	for {
		_, err := alice.C.BlobState(ctx, st.ID)
		if err != nil {
			wantCode(t, err, 429, api.CodeRateLimited)
			break
		}
		n++
	}
	if n > 30 {
		t.Fatalf("%d state requests passed a burst of 30", n)
	}
}

// TestBlobDownloadLimit: a device's download bytes are limited.
func TestBlobDownloadLimit(t *testing.T) {
	lim := servertest.Generous
	lim.BlobDownloadPerDev = ratelimit.Limit{Rate: 1, Burst: 100 << 10}
	env := servertest.Start(t, server.Config{Limits: lim})
	alice := env.NewUser(t, "alice", 0)
	id := upload(t, alice.C, make([]byte, 60<<10))
	_, err := download(t, alice.C, id, 0)
	check(t, err)
	_, err = download(t, alice.C, id, 0)
	wantCode(t, err, 429, api.CodeRateLimited)
	// A range is charged from its start: the last 10 KiB pass (the
	// bucket holds 40 KiB).
	if got, err := download(t, alice.C, id, 50<<10); err != nil || len(got) != 10<<10 {
		t.Fatalf("a small range after the limit: %v", err)
	}
}

// TestBlobLifetime: an upload that never finishes goes after the upload
// window; a sent blob goes when the shortest timer of the messages
// carrying it runs out; both leave no file.
func TestBlobLifetime(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: time.Now()}
	env := servertest.Start(t, server.Config{Limits: servertest.Generous, Now: clk.now, BlobSweepInterval: time.Hour})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)

	st, err := alice.C.CreateBlob(ctx, 100)
	check(t, err)
	_, err = alice.C.UploadChunk(ctx, st.ID, 0, bytes.NewReader(make([]byte, 50)), 50)
	check(t, err)
	unfinished := st.ID
	timed := upload(t, alice.C, randomData(1000))
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{timed}, ExpiresIn: 3600})
	check(t, err)
	kept := upload(t, alice.C, randomData(1000))
	_, err = alice.C.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{kept}})
	check(t, err)
	if n := len(blobFiles(t, env)); n != 3 {
		t.Fatalf("%d files, want 3", n)
	}

	clk.add(time.Hour + time.Second)
	// Expired is gone at once, before the sweep comes by.
	_, err = download(t, bob.C, timed, 0)
	wantCode(t, err, 404, api.CodeNotFound)
	n, err := env.Server.SweepBlobs(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep after an hour: %d, %v; want the timed blob", n, err)
	}
	clk.add(24 * time.Hour)
	if n, err := env.Server.SweepBlobs(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after a day: %d, %v; want the unfinished upload", n, err)
	}
	_, err = alice.C.BlobState(ctx, unfinished)
	wantCode(t, err, 404, api.CodeNotFound)
	if got, err := download(t, bob.C, kept, 0); err != nil || len(got) != 1000 {
		t.Fatalf("the blob with no timer after a day: %v", err)
	}
	if n := len(blobFiles(t, env)); n != 1 {
		t.Fatalf("%d files, want the kept one", n)
	}
	// At most MaxBlobLifetime.
	clk.add(api.MaxBlobLifetime * time.Second)
	if n, err := env.Server.SweepBlobs(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after 30 days: %d, %v", n, err)
	}
	if files := blobFiles(t, env); len(files) != 0 {
		t.Fatalf("files left after expiry: %v", files)
	}
}

// TestBlobConcurrentUploads: the same chunk sent on several connections
// at once is taken once; the others are told where the upload stands.
func TestBlobConcurrentUploads(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	data := randomData(256 << 10)
	st, err := alice.C.CreateBlob(ctx, int64(len(data)))
	check(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := alice.C.Upload(ctx, st.ID, bytes.NewReader(data), int64(len(data)), apiclient.UploadOptions{ChunkSize: 32 << 10})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !apiclient.IsCode(err, api.CodeBadOffset) {
			t.Fatal(err)
		}
	}
	// Whatever the race left, one more Upload finishes it.
	_, err = alice.C.Upload(ctx, st.ID, bytes.NewReader(data), int64(len(data)), apiclient.UploadOptions{})
	check(t, err)
	if got, err := download(t, alice.C, st.ID, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after concurrent uploads: %v", err)
	}
}

// TestBlobWebSocketSend: a send frame carries blobs as POST
// /v1/messages does; one naming an unusable blob gets an error frame.
func TestBlobWebSocketSend(t *testing.T) {
	ctx := t.Context()
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	alice := env.NewUser(t, "alice", 0)
	bob := env.NewUser(t, "bob", 0)
	data := randomData(3000)
	id := upload(t, alice.C, data)
	half, err := alice.C.CreateBlob(ctx, 10)
	check(t, err)
	conn, err := alice.C.Connect(ctx)
	check(t, err)
	defer conn.Close()
	next := func(reqID uint64) api.Frame {
		t.Helper()
		for {
			f, err := conn.Next(ctx)
			check(t, err)
			if f.ReqID == reqID && (f.Type == api.FrameSent || f.Type == api.FrameError) {
				return f
			}
		}
	}
	check(t, conn.Send(ctx, 1, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{half.ID}}))
	if f := next(1); f.Type != api.FrameError || f.Error.Code != api.CodeConflict {
		t.Fatalf("a send frame with an unfinished blob: %+v", f)
	}
	check(t, conn.Send(ctx, 2, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{id}}))
	if f := next(2); f.Type != api.FrameSent {
		t.Fatalf("a send frame with a blob: %+v", f)
	}
	if got, err := download(t, bob.C, id, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("bob's download after a WebSocket send: %v", err)
	}
}

// noBlobFiles waits until the blob files are gone: a confirmed blob's
// bytes are overwritten and removed after the answer, in the background.
func noBlobFiles(t *testing.T, env *servertest.Env, when string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if files := blobFiles(t, env); len(files) != 0 {
			return fmt.Errorf("blob files left %s: %v", when, files)
		}
		return nil
	})
}
