// Package blobfiles is the [store.BlobData] of a single hushd: one file
// per blob under the data folder (blobs/XX/ID, XX the id's first byte in
// hex), next to the SQLite database that holds the blobs' metadata.
//
// A chunk is written at its offset, fsynced, and only then is the blob's
// Received moved in the metadata (store.BlobStore.AdvanceBlob). So after
// a crash (kill -9 mid-chunk), Received never counts a byte that is not
// on disk: the file may hold more (a chunk cut short), which the next
// write at Received truncates away, and a reader never reads past
// Received. A blob is complete only when Received reaches its size.
//
// Deleting overwrites a file with zeros, fsyncs, truncates it and
// unlinks it (docs/security.md says what that guarantees and what it
// cannot on some disks). Files left without metadata (the process died
// between deleting a blob's row and its file) are found and removed by
// RemoveOrphans, which hushd runs at start.
package blobfiles

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hushmsg/hush/internal/server/store"
)

// Files keeps blob bytes in files under a folder. Open makes one.
type Files struct {
	dir  string
	meta store.BlobStore
	// locks serialize the writes of one blob: two chunks sent at once for
	// the same offset must not interleave in the file. One lock per blob
	// being written, so that a slow upload holds up only its own blob.
	mu    sync.Mutex
	locks map[string]*blobLock
}

type blobLock struct {
	sync.Mutex
	users int // holders and waiters, under Files.mu
}

var _ store.BlobData = (*Files)(nil)

// Open returns the blob files under dir (created, private, if missing),
// whose metadata is in meta.
func Open(dir string, meta store.BlobStore) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blobfiles: %w", err)
	}
	return &Files{dir: dir, meta: meta, locks: make(map[string]*blobLock)}, nil
}

// Dir is the folder of the files.
func (f *Files) Dir() string { return f.dir }

func (f *Files) path(id []byte) string {
	h := hex.EncodeToString(id)
	return filepath.Join(f.dir, h[:2], h)
}

// lock takes the blob's lock; the function it returns releases it.
func (f *Files) lock(id []byte) (unlock func()) {
	f.mu.Lock()
	l := f.locks[string(id)]
	if l == nil {
		l = &blobLock{}
		f.locks[string(id)] = l
	}
	l.users++
	f.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		f.mu.Lock()
		if l.users--; l.users == 0 {
			delete(f.locks, string(id))
		}
		f.mu.Unlock()
	}
}

// WriteBlob implements store.BlobData.
func (f *Files) WriteBlob(ctx context.Context, b store.Blob, off, n int64, r io.Reader) error {
	defer f.lock(b.ID)()
	// Under the lock, Received is what this process last made it: a
	// writer that lost the race for off must not touch the file.
	cur, err := f.meta.Blob(ctx, b.ID)
	if err != nil {
		return err
	}
	if cur.Received != off {
		return store.ErrConflict
	}
	p := f.path(b.ID)
	created := false
	if off == 0 {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("blobfiles: %w", err)
		}
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			created = true
		}
	}
	file, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	if fi.Size() < off {
		return fmt.Errorf("blobfiles: blob file is %d bytes, shorter than the %d received", fi.Size(), off)
	}
	// Bytes past off are a chunk cut short (by a crash or a client gone):
	// not counted in Received, discarded now.
	if err := file.Truncate(off); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	if _, err := file.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	if w, err := f.copyChunk(file, r, off, n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("blobfiles: chunk cut short at %d of %d bytes: %w", w, n, err)
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	if created {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	err = f.meta.AdvanceBlob(ctx, b.ID, off, off+n)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted meanwhile (expired): the file must not outlive it.
		file.Close()
		_ = f.remove(b.ID) // under the lock already
	}
	return err
}

// copyBuf is the size of the buffer a chunk is copied through: 32 times
// io.Copy's, so a 8 MiB chunk is 8 writes.
const copyBuf = 1 << 20

var bufs = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyChunk copies n bytes from r to file, whose offset is off, through
// a 1 MiB buffer, starting the disk's writeback of each 1 MiB as it is
// written (an 8 MiB chunk through hushd on loopback: see
// docs/performance.md, "Files end to end").
func (f *Files) copyChunk(file *os.File, r io.Reader, off, n int64) (int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var done int64
	for done < n {
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), n-done)])
		if k > 0 {
			if _, werr := file.Write(buf[:k]); werr != nil {
				return done, werr
			}
			startWriteback(file, off+done, int64(k))
			done += int64(k)
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	return nil
}

type section struct {
	*io.SectionReader
	io.Closer
}

// OpenBlob implements store.BlobData. The reader never reads past
// b.Received, whatever the file holds beyond.
func (f *Files) OpenBlob(ctx context.Context, b store.Blob) (io.ReadSeekCloser, error) {
	file, err := os.Open(f.path(b.ID))
	if errors.Is(err, fs.ErrNotExist) {
		if b.Received == 0 {
			return section{io.NewSectionReader(eof{}, 0, 0), io.NopCloser(nil)}, nil
		}
		// Gone from the folder (a restored database without its blob
		// files): as if the blob were.
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blobfiles: %w", err)
	}
	return section{io.NewSectionReader(file, 0, b.Received), file}, nil
}

type eof struct{}

func (eof) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

// zeros is what a deleted file is overwritten with.
var zeros = make([]byte, 1<<20)

// RemoveBlob implements store.BlobData: the file is overwritten with
// zeros and fsynced, then truncated and unlinked, so that its blocks do
// not keep the ciphertext on a filesystem that writes in place (ext4,
// xfs: docs/security.md).
func (f *Files) RemoveBlob(ctx context.Context, id []byte) error {
	defer f.lock(id)()
	return f.remove(id)
}

// remove is RemoveBlob under the blob's lock.
func (f *Files) remove(id []byte) error {
	p := f.path(id)
	file, err := os.OpenFile(p, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	defer file.Close()
	if err := overwrite(file); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	return syncDir(filepath.Dir(p))
}

func overwrite(file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	for left := fi.Size(); left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := file.Write(zeros[:n]); err != nil {
			return fmt.Errorf("blobfiles: overwriting: %w", err)
		}
		left -= n
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	if err := file.Truncate(0); err != nil {
		return fmt.Errorf("blobfiles: %w", err)
	}
	return file.Sync()
}

// RemoveOrphans removes every blob file whose blob has no metadata (a
// process that died between deleting the two) and returns how many.
func (f *Files) RemoveOrphans(ctx context.Context) (int, error) {
	n := 0
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		id, err := hex.DecodeString(d.Name())
		if err != nil || len(id) != 16 {
			return nil // not ours
		}
		if _, err := f.meta.Blob(ctx, id); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := f.RemoveBlob(ctx, id); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
