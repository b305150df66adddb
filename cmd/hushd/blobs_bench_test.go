package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// Blob throughput through a real hushd on loopback, TLS on as by default
// (issue 11: upload then download 100 MiB; docs/performance.md), beside
// its floors measured in the same run: TLS 1.3 alone over loopback, and
// the disk alone (chunks written and fsynced as hushd does, then read).

const benchBlob = 100 << 20

func benchData(b *testing.B) []byte {
	data := make([]byte, benchBlob)
	_, _ = rand.Read(data)
	return data
}

func mbps(b *testing.B, name string, d time.Duration) {
	b.ReportMetric(float64(benchBlob)/1e6/d.Seconds(), name)
}

// BenchmarkBlobHushd uploads (8 MiB chunks, each fsynced and recorded
// before its answer) and downloads a 100 MiB blob.
func BenchmarkBlobHushd(b *testing.B) {
	data := benchData(b)
	dir := b.TempDir()
	p := start(b, "--addr", "127.0.0.1:0", "--data", dir, "--argon2-memory", "64", "--argon2-time", "1",
		"--limit-blob-bytes", "0", "--limit-blob-download", "0", "--blob-quota", "100000000000")
	c, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fingerprint})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := c.Register(ctx, api.Register{Username: "alice", Password: "password-alice", DeviceName: "d"}); err != nil {
		b.Fatal(err)
	}
	var up, down time.Duration
	b.SetBytes(2 * benchBlob)
	for b.Loop() {
		st, err := c.CreateBlob(ctx, benchBlob)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := c.Upload(ctx, st.ID, bytes.NewReader(data), benchBlob, apiclient.UploadOptions{}); err != nil {
			b.Fatal(err)
		}
		up += time.Since(start)
		start = time.Now()
		if n, err := c.DownloadBlob(ctx, st.ID, 0, io.Discard); err != nil || n != benchBlob {
			b.Fatal(n, err)
		}
		down += time.Since(start)
		if err := c.DeleteBlob(ctx, st.ID); err != nil {
			b.Fatal(err)
		}
	}
	mbps(b, "upload-MB/s", up/time.Duration(b.N))
	mbps(b, "download-MB/s", down/time.Duration(b.N))
}

// BenchmarkBlobFloorTLS sends 100 MiB over one TLS 1.3 loopback
// connection (hushd's certificate kind and suites), each way.
func BenchmarkBlobFloorTLS(b *testing.B) {
	cert, _, err := tlscert.LoadOrCreate(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := benchData(b)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // receive 100 MiB, then send 100 MiB, as hushd does
				defer c.Close()
				if _, err := io.CopyN(io.Discard, c, benchBlob); err != nil {
					return
				}
				c.Write(data)
			}()
		}
	}()
	var up, down time.Duration
	b.SetBytes(2 * benchBlob)
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := c.Write(data); err != nil {
			b.Fatal(err)
		}
		// Written is not received: the first byte back marks the end of
		// the server's reading.
		one := make([]byte, 1)
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatal(err)
		}
		up += time.Since(start)
		start = time.Now()
		if n, err := io.Copy(io.Discard, c); err != nil || n != benchBlob-1 {
			b.Fatal(n, err)
		}
		down += time.Since(start)
		c.Close()
	}
	mbps(b, "upload-MB/s", up/time.Duration(b.N))
	mbps(b, "download-MB/s", down/time.Duration(b.N))
}

// BenchmarkBlobFloorDisk writes 100 MiB in 8 MiB chunks into a file of
// the data folder's filesystem, fsyncing each as hushd does, then reads
// it back (from the page cache, as hushd's download right after does).
func BenchmarkBlobFloorDisk(b *testing.B) {
	data := benchData(b)
	dir := b.TempDir()
	var up, down time.Duration
	b.SetBytes(2 * benchBlob)
	for b.Loop() {
		p := filepath.Join(dir, "blob")
		start := time.Now()
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < benchBlob; off += 8 << 20 {
			if _, err := f.Write(data[off:min(off+8<<20, benchBlob)]); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
		up += time.Since(start)
		start = time.Now()
		f, err = os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, f); err != nil || n != benchBlob {
			b.Fatal(n, err)
		}
		f.Close()
		down += time.Since(start)
		os.Remove(p)
	}
	mbps(b, "upload-MB/s", up/time.Duration(b.N))
	mbps(b, "download-MB/s", down/time.Duration(b.N))
}
