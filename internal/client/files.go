package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/attach"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
)

// This file: attachments (issue 11; docs/client.md "Files"). A file sent
// is encrypted as it is read, with a fresh key (internal/attach: format v2,
// chunked AES-256-GCM with a key commitment, since 2026-12-03; v1,
// Signal's AES-256-CBC + HMAC-SHA256, is still received), and uploaded to
// a blob on the server in chunks of uploadChunk bytes; the upload is
// remembered in the store (scheme, key, salt or IV, blob) before its first
// byte goes, so that the same send run again after an interruption
// encrypts the file again under the same key and salt (the same bytes)
// and goes on where the server's copy stops. The message that names the
// blob, its scheme, key and digest is sent once the upload is done. Each
// receiving device downloads the blob and decrypts it as it comes into a
// private temporary file (v2 checks the key commitment before opening a
// chunk, and each chunk's tag before releasing it; v1 checks its MAC at
// the end), checks the length and the plaintext's SHA-256, only then
// saves the file under a sanitised name that clobbers nothing, and then
// tells the server it has it (DELETE). Memory stays flat: everything
// streams.

// Attachment is a file of a message: see [store.Attachment].
type Attachment = store.Attachment

// Attachment states.
const (
	AttachPending = store.AttachPending
	AttachSaved   = store.AttachSaved
	AttachRefused = store.AttachRefused
)

// MaxFileSize is the largest file a message carries.
const MaxFileSize = content.MaxAttachmentSize

// MaxFiles is the most files one message carries.
const MaxFiles = content.MaxAttachments

// FilesDir is the folder of the home where files are saved, received and
// sent, unless a receive run names another ([ReceiveOptions.DownloadDir]).
const FilesDir = "files"

// tmpDir is the folder of the home for files being downloaded or copied.
const tmpDir = "tmp"

// uploadChunk is the size of one PATCH: the server's limit (8 MiB,
// docs/api.md), so that the fewest chunks are each written and fsynced
// before the next; and the most a killed upload has to send again.
const uploadChunk = apiclient.DefaultChunkSize

// pipeBuf and pipeBufs size the buffers between the goroutines a file
// goes through (hashing, copying, decrypting), and readBuf the reads of
// a file: memory stays flat.
const (
	pipeBuf  = 1 << 20
	pipeBufs = 3
	readBuf  = 256 << 10
)

// sendScheme is the format of the files this client sends (a test sends
// v1, as clients before 2026-12-03 did).
var sendScheme = attach.V2

// uploadLifetime is how long an unfinished upload is remembered: the
// server drops blobs that no send named long before that.
const uploadLifetime = api.MaxBlobLifetime * time.Second

// Progress is the progress of one file's upload or download, for a bar.
type Progress struct {
	Name        string // the file's name (sanitised, for a received one)
	Upload      bool
	Done, Total int64 // bytes
}

// blobClient is what attachments need of the server (docs/api.md, Blobs):
// the blob methods of *apiclient.Client (a fake in tests).
type blobClient interface {
	CreateBlob(ctx context.Context, size int64) (api.BlobState, error)
	UploadChunk(ctx context.Context, id string, off int64, body io.Reader, n int64) (api.BlobState, error)
	BlobState(ctx context.Context, id string) (api.BlobState, error)
	DownloadBlob(ctx context.Context, id string, from int64, w io.Writer) (int64, error)
	DeleteBlob(ctx context.Context, id string) error
}

// FileError refuses a file before anything is uploaded.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// ErrFileTooLarge: a file over MaxFileSize.
var ErrFileTooLarge = fmt.Errorf("a file sent is at most %d MiB", MaxFileSize>>20)

// CheckFiles checks the files of a message before anything is sent: at
// most MaxFiles, each a regular file that can be read, at most
// MaxFileSize bytes.
func CheckFiles(paths []string) error {
	if len(paths) > MaxFiles {
		return fmt.Errorf("%d files: a message carries at most %d", len(paths), MaxFiles)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return &FileError{Path: p, Err: errors.Unwrap(err)}
		}
		if !fi.Mode().IsRegular() {
			return &FileError{Path: p, Err: errors.New("not a regular file")}
		}
		if fi.Size() > MaxFileSize {
			return &FileError{Path: p, Err: fmt.Errorf("%w (%d bytes): it is %d bytes", ErrFileTooLarge, int64(MaxFileSize), fi.Size())}
		}
		f, err := os.Open(p)
		if err != nil {
			return &FileError{Path: p, Err: errors.Unwrap(err)}
		}
		f.Close()
	}
	return nil
}

// FormatSize writes a size as people read it: 912 B, 1.5 KiB, 100.0 MiB.
func FormatSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func (c *Client) blobAPI() blobClient {
	if c.blobs != nil {
		return c.blobs
	}
	return c.apic()
}

func (c *Client) progress(p Progress) {
	if c.opts.Progress != nil {
		c.opts.Progress(p)
	}
}

// uploaded is a file sent: its attachment, and the upload to forget
// when the message naming it is stored.
type uploaded struct {
	att    store.Attachment
	upload int64
}

// uploadFiles uploads the files of a message to peer (in the secret
// conversation or the ordinary one), resuming any upload of the same
// file (path, size, modification time) that an earlier run left.
func (c *Client) uploadFiles(ctx context.Context, peer string, secret bool, paths []string) ([]uploaded, error) {
	if err := CheckFiles(paths); err != nil {
		return nil, err
	}
	c.cleanTmp()
	// Uploads never finished, whose blobs the server has dropped.
	if err := c.st.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteUploadsBefore(ctx, tx.Now.Add(-uploadLifetime))
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]uploaded, 0, len(paths))
	for _, p := range paths {
		u, err := c.uploadFile(ctx, peer, secret, p)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (c *Client) uploadFile(ctx context.Context, peer string, secret bool, path string) (uploaded, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return uploaded{}, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return uploaded{}, &FileError{Path: path, Err: errors.Unwrap(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return uploaded{}, err
	}
	size := fi.Size()
	if size > MaxFileSize {
		return uploaded{}, &FileError{Path: path, Err: fmt.Errorf("%w (%d bytes): it is %d bytes", ErrFileTooLarge, int64(MaxFileSize), size)}
	}
	total := sendScheme.CiphertextSize(size)
	bc := c.blobAPI()
	up, err := c.st.Read().FindUpload(ctx, peer, secret, abs, size, fi.ModTime())
	var offset int64
	switch {
	case err == nil:
		st, err := bc.BlobState(ctx, up.BlobID)
		switch {
		case err == nil && st.Size == total && up.Scheme == sendScheme:
			offset = st.Received
		case err == nil || apiclient.IsCode(err, api.CodeNotFound):
			// Gone (expired), not what this upload made, or made in
			// another format (v1, before an update): start again, and
			// discard what is left of it (it counts against the quota).
			if err == nil {
				_ = bc.DeleteBlob(ctx, up.BlobID)
			}
			if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteUpload(ctx, up.ID) }); err != nil {
				return uploaded{}, err
			}
			up = nil
		default:
			return uploaded{}, explain(err)
		}
	case errors.Is(err, store.ErrNotFound):
		up = nil
	default:
		return uploaded{}, err
	}
	if up == nil {
		up = &store.Upload{Peer: peer, Secret: secret, File: abs, Size: size, MTime: fi.ModTime(), Key: attach.NewKey(), Scheme: sendScheme}
		rand.Read(up.IV[:])
		st, err := bc.CreateBlob(ctx, total)
		if err != nil {
			if apiclient.IsCode(err, api.CodeQuotaExceeded) {
				return uploaded{}, fmt.Errorf("%s: the server refuses it: your files on the server would pass your quota (files not yet fetched by everyone count)", path)
			}
			return uploaded{}, explain(err)
		}
		up.BlobID = st.ID
		// Remembered before a byte goes, so that a run killed from here
		// on resumes this blob.
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.AddUpload(ctx, up) }); err != nil {
			return uploaded{}, err
		}
	}
	// One pass over the file, on two goroutines besides the upload's:
	// this one reads and encrypts (of the ciphertext, the bytes the server
	// has are skipped; format v1 computes its MAC on a goroutine of its
	// own, internal/attach), one the file's SHA-256 and this home's copy.
	copyTmp, err := c.tmpFile(".hush-sending-")
	if err != nil {
		return uploaded{}, err
	}
	defer os.Remove(copyTmp.Name())
	defer copyTmp.Close()
	name := filepath.Base(abs)
	w := &chunkUploader{ctx: ctx, bc: bc, id: up.BlobID, skip: offset, total: total,
		progress: func(done int64) { c.progress(Progress{Name: name, Upload: true, Done: done, Total: total}) }}
	w.start()
	enc, err := attach.NewSealer(up.Scheme, w, up.Key, up.IV, size)
	if err != nil {
		w.abort()
		return uploaded{}, err
	}
	sum := sha256.New()
	side := attach.NewBackgroundWriter(io.MultiWriter(sum, newWriteback(copyTmp)), pipeBuf, pipeBufs)
	n, err := io.CopyBuffer(enc, io.TeeReader(f, side), make([]byte, readBuf))
	if serr := side.Close(); err == nil {
		err = serr
	}
	if err == nil && n != size {
		err = &FileError{Path: path, Err: errors.New("the file changed while it was being sent")}
	}
	// This home's copy goes to disk while the last chunks go up.
	synced := make(chan error, 1)
	if err == nil {
		go func() { synced <- copyTmp.Sync() }()
	} else {
		synced <- nil
	}
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		<-synced
		w.abort()
		return uploaded{}, uploadErr(path, err)
	}
	err = w.Close()
	if serr := <-synced; err == nil && serr != nil {
		return uploaded{}, serr
	}
	if err != nil {
		return uploaded{}, uploadErr(path, err)
	}
	if fi2, err := f.Stat(); err != nil || fi2.Size() != size || !fi2.ModTime().Equal(fi.ModTime()) {
		return uploaded{}, &FileError{Path: path, Err: errors.New("the file changed while it was being sent")}
	}
	a := store.Attachment{Attachment: content.Attachment{Name: name, Size: size, ContentType: contentType(name),
		Key: up.Key, Digest: enc.Digest(), BlobID: up.BlobID}, State: store.AttachSaved}
	if up.Scheme != attach.V1 {
		a.Scheme = up.Scheme
	}
	sum.Sum(a.SHA256[:0])
	// This home's copy, as the recipient's: a disappearing message
	// takes it too.
	if a.Path, err = place(copyTmp.Name(), filepath.Join(c.st.Home(), FilesDir), content.FileName(name)); err != nil {
		return uploaded{}, err
	}
	return uploaded{att: a, upload: up.ID}, nil
}

func uploadErr(path string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("uploading %s: %w (sending it again resumes the upload)", path, explain(err))
}

// contentType guesses a file's MIME type from its extension; empty if
// unknown.
func contentType(name string) string {
	t := mime.TypeByExtension(filepath.Ext(name))
	if t == "" || len(t) > content.MaxContentTypeBytes {
		return ""
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x20 || t[i] > 0x7e {
			return ""
		}
	}
	return t
}

// chunkUploader is the io.Writer the encrypter writes to: it skips the
// bytes the server has, gathers the rest in chunks and PATCHes them on
// its own goroutine, so that encrypting the next chunk and sending this
// one overlap (two buffers: memory stays at two chunks).
type chunkUploader struct {
	ctx      context.Context
	bc       blobClient
	id       string
	skip     int64 // bytes the server has: not sent again
	total    int64
	progress func(done int64)

	pos  int64  // ciphertext bytes written so far
	buf  []byte // the chunk being filled
	off  int64  // where buf starts in the blob
	full chan chunk
	free chan []byte
	done chan error
	err  error
}

type chunk struct {
	b   []byte
	off int64
}

func (u *chunkUploader) start() {
	u.full, u.free, u.done = make(chan chunk), make(chan []byte, 2), make(chan error, 1)
	u.free <- make([]byte, 0, uploadChunk)
	u.free <- make([]byte, 0, uploadChunk)
	u.buf = <-u.free
	u.off = u.skip
	go func() {
		var err error
		for ch := range u.full {
			if err == nil {
				err = u.send(ch)
			}
			u.free <- ch.b[:0]
		}
		u.done <- err
	}()
}

func (u *chunkUploader) send(ch chunk) error {
	st, err := u.bc.UploadChunk(u.ctx, u.id, ch.off, bytes.NewReader(ch.b), int64(len(ch.b)))
	if err != nil {
		return err
	}
	if want := ch.off + int64(len(ch.b)); st.Received != want {
		return fmt.Errorf("the server's copy stands at %d bytes, not %d", st.Received, want)
	}
	u.progress(st.Received)
	trace(fmt.Sprintf("upload %d %d", st.Received, u.total))
	return nil
}

func (u *chunkUploader) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	n := len(p)
	if u.pos < u.skip {
		k := int(min(int64(len(p)), u.skip-u.pos))
		u.pos += int64(k)
		p = p[k:]
		if u.pos == u.skip && u.skip > 0 {
			u.progress(u.skip)
		}
	}
	for len(p) > 0 {
		k := min(len(p), uploadChunk-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		p, u.pos = p[k:], u.pos+int64(k)
		if len(u.buf) == uploadChunk {
			if err := u.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (u *chunkUploader) flush() error {
	if len(u.buf) == 0 {
		return nil
	}
	select {
	case u.full <- chunk{u.buf, u.off}:
	case err := <-u.done:
		// The goroutine stopped on an error.
		u.done <- err
		u.err = err
		return err
	}
	u.off += int64(len(u.buf))
	u.buf = <-u.free
	return nil
}

// Close sends the last chunk and waits for every one.
func (u *chunkUploader) Close() error {
	if u.err == nil {
		u.err = u.flush()
	}
	close(u.full)
	err := <-u.done
	if u.err != nil {
		return u.err
	}
	if err == nil && u.pos != u.total {
		err = fmt.Errorf("the ciphertext is %d bytes, not %d", u.pos, u.total)
	}
	return err
}

// abort stops the goroutine without sending what is left.
func (u *chunkUploader) abort() {
	u.buf = u.buf[:0]
	u.err = errors.New("aborted")
	close(u.full)
	<-u.done
}

// tmpFile creates a file in the home's tmp folder.
func (c *Client) tmpFile(prefix string) (*os.File, error) {
	dir := filepath.Join(c.st.Home(), tmpDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, prefix+"*")
}

// cleanTmp removes what killed runs left in the home's tmp folder (files
// older than an hour: a run under way may be using newer ones).
func (c *Client) cleanTmp() {
	dir := filepath.Join(c.st.Home(), tmpDir)
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// place gives the file tmp the name name in dir, or "stem (N).ext" when
// that exists: never replacing a file (a hard link, which fails if the
// name is taken, then the temporary name removed; a rename without it
// where the file system has no hard links). It returns the path.
func place(tmp, dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	ext := filepath.Ext(name)
	if len(ext) == len(name) || len(ext) > 16 {
		ext = ""
	}
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 10000; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		p := filepath.Join(dir, n)
		err := os.Link(tmp, p)
		if err == nil {
			os.Remove(tmp)
			return filepath.Abs(p)
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		// No hard links here (or across file systems): a rename, after
		// checking the name is free.
		if _, serr := os.Lstat(p); !errors.Is(serr, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", err
		}
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%s: too many files named %s", dir, name)
}

// downloadDir is where a receive run saves files.
func (c *Client) downloadDir(dir string) string {
	if dir == "" {
		return filepath.Join(c.st.Home(), FilesDir)
	}
	return dir
}

// errBlobGone: the server no longer has the blob.
var errBlobGone = errors.New("the server no longer has it")

// downloadPending downloads the files earlier runs left pending.
func (c *Client) downloadPending(ctx context.Context, o ReceiveOptions) error {
	ids, err := c.st.Read().PendingAttachments(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := c.downloadAll(ctx, id, o.DownloadDir, o.Warn); err != nil {
			return err
		}
	}
	return nil
}

// downloadAll downloads the pending attachments of message id into dir.
// A file that fails its checks is refused, with a notice (whose id it
// returns); a failure to reach the server leaves it pending, for the next
// receive run.
func (c *Client) downloadAll(ctx context.Context, id int64, dir string, warn func(error)) (notices []int64, err error) {
	m, err := c.st.Read().Message(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	for i, a := range m.Attachments {
		if a.State != store.AttachPending {
			continue
		}
		path, dlErr := c.download(ctx, a, c.downloadDir(dir))
		if dlErr != nil && !errors.Is(dlErr, attach.ErrCorrupt) && !errors.Is(dlErr, errBlobGone) && !errors.Is(dlErr, attach.ErrUnsupported) {
			return notices, dlErr // unreachable, or a local failure: try again later
		}
		state := store.AttachSaved
		if dlErr != nil {
			state = store.AttachRefused
		}
		err := c.updateNoting(ctx, func(tx *store.Tx) error {
			if err := tx.SetAttachment(ctx, m.ID, i, state, path); err != nil || state == store.AttachSaved {
				return err
			}
			why := "it is not the file " + m.Peer + " sent (its length, digest, tags or SHA-256 do not match)"
			switch {
			case errors.Is(dlErr, errBlobGone):
				why = "the server no longer has it"
			case errors.Is(dlErr, attach.ErrUnsupported):
				why = "it was sent in a format this version of hush does not read"
			}
			_, err := tx.AddNoticeIn(ctx, m.Peer, m.Secret, fmt.Sprintf("The file %s from %s was refused: %s; nothing was saved.",
				content.FileName(a.Name), m.Peer, why))
			return err
		}, &notices)
		if err != nil {
			if path != "" {
				os.Remove(path) // the message disappeared meanwhile
			}
			if errors.Is(err, store.ErrNotFound) {
				return notices, nil
			}
			return notices, err
		}
		// The server may drop it now: this device has it (or will never
		// use it).
		if err := c.blobAPI().DeleteBlob(ctx, a.BlobID); err != nil && !apiclient.IsCode(err, api.CodeNotFound) && warn != nil {
			warn(fmt.Errorf("telling the server a file was received: %w", explain(err)))
		}
	}
	return notices, nil
}

// updateNoting is Update that appends the ids of the notices it added
// to notices, once committed.
func (c *Client) updateNoting(ctx context.Context, fn func(tx *store.Tx) error, notices *[]int64) error {
	var added []int64
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		err := fn(tx)
		added = tx.Notices
		return err
	})
	if err == nil {
		*notices = append(*notices, added...)
	}
	return err
}

// download fetches one attachment's blob, checks it and saves the file in
// dir; attach.ErrCorrupt, attach.ErrUnsupported or errBlobGone refuse
// it, with nothing saved. One pass, on two goroutines: this one
// downloads and decrypts (format v1 computes its MAC on a third,
// internal/attach), one the SHA-256 of the plaintext and writes it to a
// private temporary file in the home's tmp folder. Only once the length,
// the tags (or MAC) and the SHA-256 match is the file synced and given
// its name in dir; otherwise it is removed, unseen.
func (c *Client) download(ctx context.Context, a store.Attachment, dir string) (string, error) {
	name := content.FileName(a.Name)
	if !a.Format().Known() {
		return "", attach.ErrUnsupported
	}
	total := a.Format().CiphertextSize(a.Size)
	pt, err := c.tmpFile(".hush-download-")
	if err != nil {
		return "", err
	}
	defer os.Remove(pt.Name())
	defer pt.Close()
	sum := sha256.New()
	out := attach.NewBackgroundWriter(io.MultiWriter(newWriteback(pt), sum), pipeBuf, pipeBufs)
	dec, err := attach.NewOpener(a.Format(), out, a.Key, a.Size, a.Digest)
	if err != nil {
		out.Close()
		return "", err
	}
	pw := &progressWriter{w: dec, limit: total, report: func(done int64) { c.progress(Progress{Name: name, Done: done, Total: total}) }}
	n, err := c.blobAPI().DownloadBlob(ctx, a.BlobID, 0, pw)
	derr := dec.Close()
	oerr := out.Close()
	switch {
	case apiclient.IsCode(err, api.CodeNotFound):
		return "", errBlobGone
	case errors.Is(err, attach.ErrCorrupt):
		return "", err // longer than it should be
	case err != nil && !errors.Is(err, oerr):
		return "", explain(err)
	case oerr != nil:
		return "", oerr // the temporary file
	case n != total:
		return "", attach.ErrCorrupt
	case derr != nil:
		return "", derr
	}
	if subtle.ConstantTimeCompare(sum.Sum(nil), a.SHA256[:]) != 1 {
		return "", attach.ErrCorrupt
	}
	if err := pt.Sync(); err != nil {
		return "", err
	}
	return placeFrom(pt, dir, name)
}

// placeFrom places the file tmp (in the home's tmp folder) in dir, as
// place does; where dir is on another file system, it copies it there
// first (a private temporary file, synced, then placed).
func placeFrom(tmp *os.File, dir, name string) (string, error) {
	p, err := place(tmp.Name(), dir, name)
	if !errors.Is(err, syscall.EXDEV) {
		return p, err
	}
	cp, err := os.CreateTemp(dir, ".hush-download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(cp.Name())
	defer cp.Close()
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(cp, tmp); err != nil {
		return "", err
	}
	if err := cp.Sync(); err != nil {
		return "", err
	}
	return place(cp.Name(), dir, name)
}

// progressWriter reports bytes written, for a progress bar, and refuses
// more than limit (attach.ErrCorrupt: not the blob the message named).
type progressWriter struct {
	w      io.Writer
	n      int64
	limit  int64
	last   int64
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > p.limit-p.n {
		return 0, attach.ErrCorrupt
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n-p.last >= 1<<20 || err != nil {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}

// discardTimeout bounds telling the server about the blobs of expired
// messages, which every command does first (docs/client.md, "Disappearing
// files"): an unreachable server must not hold it up.
const discardTimeout = 3 * time.Second

// discardBlobs tells the server that this device will never fetch the
// blobs of files that were still pending when their message's timer ran
// out (DELETE: "I have it", so that the server deletes each once its
// other recipients have it too). Best effort: a blob the server cannot be
// told about goes when its message's server lifetime ends, 30 days at
// most.
func (c *Client) discardBlobs(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, discardTimeout)
	defer cancel()
	for _, id := range ids {
		if err := c.blobAPI().DeleteBlob(ctx, id); err != nil && !apiclient.IsCode(err, api.CodeNotFound) {
			trace("discarding an expired file's blob: " + err.Error())
			return
		}
	}
}

// removeFiles deletes the saved files of expired messages.
func removeFiles(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// contentAttachments are the attachments of a content message.
func contentAttachments(as []store.Attachment) []content.Attachment {
	if len(as) == 0 {
		return nil
	}
	out := make([]content.Attachment, len(as))
	for i, a := range as {
		out[i] = a.Attachment
	}
	return out
}

// receivedAttachments are the attachments of a received content message,
// to download.
func receivedAttachments(as []content.Attachment) []store.Attachment {
	if len(as) == 0 {
		return nil
	}
	out := make([]store.Attachment, len(as))
	for i, a := range as {
		out[i] = store.Attachment{Attachment: a, State: store.AttachPending}
	}
	return out
}

// blobIDs are the blob ids of attachments.
func blobIDs(as []store.Attachment) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.BlobID
	}
	return out
}
