package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
	"github.com/hushmsg/hush/internal/server/tlscert"
	"github.com/hushmsg/hush/internal/testutil"
)

// TestBlobUploadKilled kills hushd with SIGKILL in the middle of a chunk
// of an upload: after the restart the upload stands at the last chunk
// answered (never further, never "complete" with bytes missing), resumes
// from there, and the recipient downloads exactly the bytes sent; once
// the recipient confirms, the data folder holds no blob file.
func TestBlobUploadKilled(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	args := []string{"--addr", "127.0.0.1:0", "--data", data, "--argon2-memory", "64", "--argon2-time", "1"}
	p := start(t, args...)
	alice, bob := p.client(t), p.client(t)
	for _, r := range []struct {
		c    *apiclient.Client
		name string
	}{{alice, "alice"}, {bob, "bob"}} {
		if _, err := r.c.Register(ctx, api.Register{Username: r.name, Password: "password-" + r.name, DeviceName: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	const chunk = 4 << 20
	blob := make([]byte, 3*chunk+12345)
	_, _ = rand.Read(blob)
	st, err := alice.CreateBlob(ctx, int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UploadChunk(ctx, st.ID, 0, bytes.NewReader(blob[:chunk]), chunk); err != nil {
		t.Fatal(err)
	}
	// The second chunk: 1 MiB of it written, then the writer waits while
	// hushd is killed.
	raw, _ := base64.RawURLEncoding.DecodeString(st.ID)
	file := filepath.Join(data, "blobs", hex.EncodeToString(raw[:1]), hex.EncodeToString(raw))
	pr, pw := io.Pipe()
	go pw.Write(blob[chunk : chunk+1<<20])
	cut := make(chan error, 1)
	go func() {
		_, err := alice.UploadChunk(ctx, st.ID, chunk, pr, chunk)
		cut <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(file); err == nil && fi.Size() > chunk {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second chunk never reached the blob file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.exited <- nil
	// The client's body would wait for more bytes forever.
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-cut; err == nil {
		t.Fatal("the chunk cut by the kill was answered")
	}

	p = start(t, args...)
	alice2, bob2 := p.client(t), p.client(t)
	alice2.SetCredential(alice.Credential())
	bob2.SetCredential(bob.Credential())
	s, err := alice2.BlobState(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Received != chunk {
		t.Fatalf("after the kill the upload stands at %d, want %d (the last chunk answered)", s.Received, chunk)
	}
	// Not sendable until complete.
	if _, err := alice2.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{st.ID}}); !apiclient.IsCode(err, api.CodeConflict) {
		t.Fatalf("sending the interrupted blob: %v", err)
	}
	if _, err := alice2.Upload(ctx, st.ID, bytes.NewReader(blob), int64(len(blob)), apiclient.UploadOptions{ChunkSize: chunk}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice2.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{st.ID}}); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := bob2.DownloadBlob(ctx, st.ID, 0, h); err != nil || n != int64(len(blob)) {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if want := sha256.Sum256(blob); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the recipient downloaded other bytes than were uploaded")
	}
	if err := bob2.DeleteBlob(context.Background(), st.ID); err != nil {
		t.Fatal(err)
	}
	// Its bytes are overwritten and removed after the answer.
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			return fmt.Errorf("the blob file is still in the data folder after the recipient confirmed: %v", err)
		}
		return nil
	})
	p.stop(t)
}

// TestBlobAcrossNodes: two nodes on one PostgreSQL serve one blob. Its
// chunks go to either node, the recipient downloads it (and a range of
// it) from either, nothing is in either node's data folder, and the
// recipient's confirmation on one node deletes it for both.
func TestBlobAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	certDir := t.TempDir()
	if _, _, err := tlscert.LoadOrCreate(certDir); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certDir, tlscert.CertFile), filepath.Join(certDir, tlscert.KeyFile)
	dirs := []string{t.TempDir(), t.TempDir()}
	var nodes []*proc
	for _, d := range dirs {
		nodes = append(nodes, start(t, "--addr", "127.0.0.1:0", "--store", url, "--data", d, "--tls-cert", cert, "--tls-key", key,
			"--argon2-memory", "64", "--argon2-time", "1"))
	}
	a1, b2 := nodes[0].client(t), nodes[1].client(t)
	if _, err := a1.Register(ctx, api.Register{Username: "alice", Password: "password-alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Register(ctx, api.Register{Username: "bob", Password: "password-bob"}); err != nil {
		t.Fatal(err)
	}
	a2, b1 := nodes[1].client(t), nodes[0].client(t)
	a2.SetCredential(a1.Credential())
	b1.SetCredential(b2.Credential())

	blob := make([]byte, 3<<20+777)
	_, _ = rand.Read(blob)
	st, err := a1.CreateBlob(ctx, int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	// Chunks alternate between the nodes; a stale offset on the other
	// node is refused there too.
	for i, off := 0, int64(0); off < int64(len(blob)); i++ {
		c := []*apiclient.Client{a1, a2}[i%2]
		n := min(1<<20, int64(len(blob))-off)
		s, err := c.UploadChunk(ctx, st.ID, off, bytes.NewReader(blob[off:off+n]), n)
		if err != nil {
			t.Fatalf("chunk %d on node %d: %v", i, i%2+1, err)
		}
		off = s.Received
		if _, err := []*apiclient.Client{a2, a1}[i%2].UploadChunk(ctx, st.ID, 0, bytes.NewReader(blob[:1]), 1); !apiclient.IsCode(err, api.CodeBadOffset) && off < int64(len(blob)) {
			t.Fatalf("a stale chunk on the other node: %v", err)
		}
	}
	if _, err := a2.Send(ctx, "bob", 1, api.SendMessage{Type: 1, Content: []byte("x"), Blobs: []string{st.ID}}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*apiclient.Client{b1, b2} {
		var buf bytes.Buffer
		if _, err := c.DownloadBlob(ctx, st.ID, 0, &buf); err != nil || !bytes.Equal(buf.Bytes(), blob) {
			t.Fatalf("download from node %d: %v", i+1, err)
		}
		buf.Reset()
		from := int64(1<<20 - 5) // across a chunk boundary
		if _, err := c.DownloadBlob(ctx, st.ID, from, &buf); err != nil || !bytes.Equal(buf.Bytes(), blob[from:]) {
			t.Fatalf("range from node %d: %v", i+1, err)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "blobs")); !os.IsNotExist(err) {
			t.Fatalf("a node of a cluster keeps blobs in its data folder: %v", err)
		}
	}
	if err := b1.DeleteBlob(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b2.DownloadBlob(ctx, st.ID, 0, &buf); !apiclient.IsCode(err, api.CodeNotFound) {
		t.Fatalf("after the confirmation on node 1, node 2 answers %v", err)
	}
}
