package store

import (
	"context"
	"errors"
	"io"
)

// Blobs hold encrypted attachments (issue 11, docs/api.md "Blobs"). The
// Store keeps their metadata (who uploaded a blob, how far the upload is,
// which devices may download it, until when it is kept); a BlobData keeps
// their bytes: files in the data folder beside SQLite (blobfiles), chunk
// rows in PostgreSQL for a cluster (pgstore).

// More errors callers branch on.
var (
	// ErrQuotaExceeded: the account's blobs would pass its quota.
	ErrQuotaExceeded = errors.New("store: blob quota exceeded")
	// ErrBlobUnusable: a message names a blob that is missing, expired,
	// not complete, or not uploaded by the message's sending device.
	ErrBlobUnusable = errors.New("store: blob missing, incomplete or not the sender's")
)

// Blob is the metadata of one blob.
type Blob struct {
	ID       []byte    // 16 random bytes, chosen by the caller
	Owner    DeviceRef // the device that uploads it
	Size     int64     // declared at creation
	Received int64     // bytes stored so far, from the start
	Created  int64     // Unix ms
	// ExpiresAt is when the blob is deleted at the latest (Unix ms): at
	// creation, the end of the upload window; once sent, the earliest
	// ExpiresAt of the messages carrying it, never past Deadline.
	ExpiresAt int64
	// Deadline is the latest a send may push ExpiresAt to: Created plus
	// the longest lifetime (api.MaxBlobLifetime).
	Deadline int64
	// Sent says whether a stored message names it: from then on only its
	// recipients' confirmations and expiry delete it.
	Sent bool
}

// Complete says whether every byte of b was received.
func (b Blob) Complete() bool { return b.Received == b.Size }

// BlobQuota bounds what one account holds in blobs at a time.
type BlobQuota struct {
	Bytes int64 // sum of the declared sizes
	Count int   // number of blobs
}

// BlobStore is the part of Store that keeps blob metadata. Messages name
// blobs in Message.Blobs: EnqueueBatch and EnqueueFanout check each (it
// must exist, be complete, unexpired at the message's Timestamp, and be
// the message's From device's; else ErrBlobUnusable), let the message's
// recipient device download it, mark it sent and bring its ExpiresAt down
// to the message's ExpiresAt (up to Deadline when it was not sent yet), in
// the message's transaction.
type BlobStore interface {
	// CreateBlob stores a new blob (Received 0, not sent). It fails with
	// ErrQuotaExceeded when the owner account's blobs with this one would
	// pass q, and with ErrConflict when the id exists.
	CreateBlob(ctx context.Context, b Blob, q BlobQuota) error
	// Blob returns the blob with that id (ErrNotFound), expired or not.
	Blob(ctx context.Context, id []byte) (Blob, error)
	// BlobGranted says whether a stored message let ref download the blob.
	BlobGranted(ctx context.Context, id []byte, ref DeviceRef) (bool, error)
	// AdvanceBlob moves the blob's Received from from to to, when it is
	// from: ErrConflict when it is not, ErrNotFound when there is no such
	// blob. BlobData implementations that store bytes elsewhere call it
	// once those bytes are durable.
	AdvanceBlob(ctx context.Context, id []byte, from, to int64) error
	// DeleteBlob is ref's DELETE of the blob, in one transaction: a
	// device the blob was sent to gives up its right to download it, and
	// when that was the last such right the blob is deleted; the owner
	// device deletes a blob that was not sent. It fails with ErrNotFound
	// when ref is neither (or there is no such blob), and with ErrConflict
	// when ref is the owner of a blob that was sent. gone says whether
	// the blob's metadata was deleted: the caller then removes its bytes.
	DeleteBlob(ctx context.Context, id []byte, ref DeviceRef) (gone bool, err error)
	// DeleteExpiredBlobs deletes up to limit blobs whose ExpiresAt is not
	// after now, or that were sent and have no recipient left to download
	// them, and returns their ids: the caller removes their bytes.
	DeleteExpiredBlobs(ctx context.Context, now int64, limit int) ([][]byte, error)
}

// BlobData keeps the bytes of blobs, each stored from its start with no
// gap. Its methods are safe for concurrent use; the caller has checked
// who may call them.
type BlobData interface {
	// WriteBlob reads exactly n bytes from r, stores them at offset off of
	// blob b (whose Received must be off), and then moves the blob's
	// Received to off+n (BlobStore.AdvanceBlob): once it returns nil, the
	// bytes and the new Received are durable. A failure leaves Received
	// as it was; bytes past it are discarded by the next write.
	// ErrConflict: Received is no longer off.
	WriteBlob(ctx context.Context, b Blob, off, n int64, r io.Reader) error
	// OpenBlob returns a reader of blob b's first b.Received bytes;
	// ErrNotFound when they are gone.
	OpenBlob(ctx context.Context, b Blob) (io.ReadSeekCloser, error)
	// RemoveBlob deletes a blob's bytes (nothing to delete is no error),
	// overwriting them first where the medium allows it.
	RemoveBlob(ctx context.Context, id []byte) error
}
