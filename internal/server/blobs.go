package server

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
)

// Blobs: encrypted attachments uploaded in chunks, downloaded by the
// devices the messages carrying them went to (issue 11, docs/api.md
// "Blobs"). The server never sees inside one: the client encrypts it with
// a key that travels in the message's end-to-end encrypted content.

// Blob defaults.
const (
	DefaultBlobQuota      = 1 << 30 // bytes per account
	DefaultBlobQuotaCount = 10000   // blobs per account
	DefaultMaxBlobChunk   = 8 << 20 // bytes per PATCH
	// DefaultBlobUploadTTL is how long a blob is kept before a send names
	// it: an upload that never finishes, or a blob never sent, goes then.
	DefaultBlobUploadTTL = 24 * time.Hour
)

var (
	errNoBlob       = newError(api.CodeNotFound, "no such blob")
	errBlobsOff     = newError(api.CodeUnavailable, "this server does not keep blobs")
	errBlobSent     = newError(api.CodeConflict, "the blob was sent: it goes once its recipients have it or it expires")
	errBlobUnusable = newError(api.CodeConflict, "a blob of the message is missing, incomplete, expired or not the sending device's")
)

// parseBlobID reads an id as the API writes it (api.BlobState.ID): 22
// characters of unpadded base64url. Anything else is no blob.
func parseBlobID(s string) ([]byte, error) {
	if len(s) != 22 {
		return nil, errNoBlob
	}
	id, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(id) != 16 {
		return nil, errNoBlob
	}
	return id, nil
}

func blobID(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

func blobState(b store.Blob) api.BlobState {
	return api.BlobState{ID: blobID(b.ID), Size: b.Size, Received: b.Received, ExpiresAt: b.ExpiresAt}
}

// blobReq charges one blob request of p's device.
func (s *Server) blobReq(p Principal) error {
	if s.cfg.BlobData == nil {
		return errBlobsOff
	}
	if !s.limBlobReqs.Allow(deviceKey(p), 1) {
		return errRateLimited
	}
	return nil
}

func deviceKey(p Principal) string { return accountKey(p.Account) + "." + accountKey(int64(p.Device)) }

// liveBlob returns the blob id names, unless it expired (the sweep has
// not come by yet): ErrNotFound then, as for no blob.
func (s *Server) liveBlob(ctx context.Context, id []byte) (store.Blob, error) {
	b, err := s.st.Blob(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return b, errNoBlob
	case err != nil:
		return b, s.internal("blob", err)
	case b.ExpiresAt <= s.nowMs():
		return b, errNoBlob
	}
	return b, nil
}

// ownBlob is liveBlob for the blob's uploader only: to anyone else, it is
// no blob.
func (s *Server) ownBlob(ctx context.Context, p Principal, ids string) (store.Blob, error) {
	id, err := parseBlobID(ids)
	if err != nil {
		return store.Blob{}, err
	}
	b, err := s.liveBlob(ctx, id)
	if err != nil {
		return b, err
	}
	if b.Owner != p.DeviceRef {
		return store.Blob{}, errNoBlob
	}
	return b, nil
}

// CreateBlob makes a new, empty blob of the declared size for p's device
// to upload, within the account's quota.
func (s *Server) CreateBlob(ctx context.Context, p Principal, r api.NewBlob) (api.BlobState, error) {
	if err := s.blobReq(p); err != nil {
		return api.BlobState{}, err
	}
	switch {
	case r.Size < 1:
		return api.BlobState{}, badRequest("size must be at least 1")
	case r.Size > api.MaxBlobBytes:
		return api.BlobState{}, newError(api.CodeTooLarge, "size %d is more than the largest blob, %d bytes", r.Size, api.MaxBlobBytes)
	}
	if !s.limBlobs.Allow(deviceKey(p), 1) {
		return api.BlobState{}, errRateLimited
	}
	now := s.now()
	b := store.Blob{ID: randomBytes(16), Owner: p.DeviceRef, Size: r.Size, Created: now.UnixMilli(),
		ExpiresAt: now.Add(s.cfg.BlobUploadTTL).UnixMilli(), Deadline: now.Add(api.MaxBlobLifetime * time.Second).UnixMilli()}
	switch err := s.st.CreateBlob(ctx, b, store.BlobQuota{Bytes: s.cfg.BlobQuota, Count: s.cfg.BlobQuotaCount}); {
	case errors.Is(err, store.ErrQuotaExceeded):
		return api.BlobState{}, newError(api.CodeQuotaExceeded,
			"the account's blobs would pass its quota (%d bytes in at most %d blobs): wait until recipients have fetched earlier ones", s.cfg.BlobQuota, s.cfg.BlobQuotaCount)
	case err != nil:
		return api.BlobState{}, s.internal("create blob", err)
	}
	return blobState(b), nil
}

// BlobState tells the uploader how far its upload is.
func (s *Server) BlobState(ctx context.Context, p Principal, id string) (api.BlobState, error) {
	if err := s.blobReq(p); err != nil {
		return api.BlobState{}, err
	}
	b, err := s.ownBlob(ctx, p, id)
	if err != nil {
		return api.BlobState{}, err
	}
	return blobState(b), nil
}

// MaxBlobChunk is the most bytes one UploadBlob takes.
func (s *Server) MaxBlobChunk() int64 { return s.cfg.MaxBlobChunk }

// UploadBlob stores the n bytes of body at offset off of the uploader's
// blob: off must be where the upload stands (else bad_offset, saying
// where), and off+n at most the blob's size. The bytes go to the blob
// store as they arrive (never all in memory, on the file store); the
// answer comes once they are durable.
func (s *Server) UploadBlob(ctx context.Context, p Principal, id string, off, n int64, body io.Reader) (api.BlobState, error) {
	if err := s.blobReq(p); err != nil {
		return api.BlobState{}, err
	}
	b, err := s.ownBlob(ctx, p, id)
	if err != nil {
		return api.BlobState{}, err
	}
	switch {
	case off != b.Received:
		return blobState(b), badOffset(b)
	case n < 1:
		return api.BlobState{}, badRequest("a chunk must hold at least one byte")
	case n > s.cfg.MaxBlobChunk:
		return api.BlobState{}, newError(api.CodeTooLarge, "a chunk is at most %d bytes, not %d", s.cfg.MaxBlobChunk, n)
	case off+n > b.Size:
		return api.BlobState{}, newError(api.CodeTooLarge, "the chunk ends at %d, past the blob's size %d", off+n, b.Size)
	}
	if !s.limBlobBytes.Allow(accountKey(p.Account), float64(n)) {
		return api.BlobState{}, errRateLimited
	}
	switch err := s.cfg.BlobData.WriteBlob(ctx, b, off, n, body); {
	case errors.Is(err, store.ErrConflict):
		// Another chunk got there first.
		if b, err := s.liveBlob(ctx, b.ID); err == nil {
			return blobState(b), badOffset(b)
		}
		return api.BlobState{}, errNoBlob
	case errors.Is(err, store.ErrNotFound):
		return api.BlobState{}, errNoBlob
	case errors.Is(err, io.ErrUnexpectedEOF):
		return api.BlobState{}, badRequest("the chunk was cut short; the upload stands at %d", off)
	case err != nil:
		return api.BlobState{}, s.internal("write blob", err)
	}
	b.Received = off + n
	return blobState(b), nil
}

func badOffset(b store.Blob) error {
	return newError(api.CodeBadOffset, "the upload stands at %d: send the chunk that starts there", b.Received)
}

// OpenBlob opens a complete blob for download by its uploader or a
// device a message carrying it went to; to anyone else it is no blob.
// The caller closes the reader. The device's download bytes are charged
// from the first byte asked for (from, 0 without a range) to the end.
func (s *Server) OpenBlob(ctx context.Context, p Principal, ids string, from int64) (io.ReadSeekCloser, api.BlobState, error) {
	if err := s.blobReq(p); err != nil {
		return nil, api.BlobState{}, err
	}
	id, err := parseBlobID(ids)
	if err != nil {
		return nil, api.BlobState{}, err
	}
	b, err := s.liveBlob(ctx, id)
	if err != nil {
		return nil, api.BlobState{}, err
	}
	if b.Owner != p.DeviceRef {
		ok, err := s.st.BlobGranted(ctx, id, p.DeviceRef)
		if err != nil {
			return nil, api.BlobState{}, s.internal("blob granted", err)
		}
		if !ok {
			return nil, api.BlobState{}, errNoBlob
		}
	}
	if !b.Complete() {
		return nil, api.BlobState{}, newError(api.CodeConflict, "the blob is not fully uploaded (%d of %d bytes)", b.Received, b.Size)
	}
	if !s.limBlobDown.Allow(deviceKey(p), float64(max(b.Size-min(max(from, 0), b.Size), 1))) {
		return nil, api.BlobState{}, errRateLimited
	}
	rd, err := s.cfg.BlobData.OpenBlob(ctx, b)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.BlobState{}, errNoBlob
	} else if err != nil {
		return nil, api.BlobState{}, s.internal("open blob", err)
	}
	return rd, blobState(b), nil
}

// DeleteBlob is a recipient device saying it has the blob (once every
// recipient has, it is deleted), or the uploader discarding a blob no
// message carries yet.
func (s *Server) DeleteBlob(ctx context.Context, p Principal, ids string) error {
	if err := s.blobReq(p); err != nil {
		return err
	}
	id, err := parseBlobID(ids)
	if err != nil {
		return err
	}
	gone, err := s.st.DeleteBlob(ctx, id, p.DeviceRef)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoBlob
	case errors.Is(err, store.ErrConflict):
		return errBlobSent
	case err != nil:
		return s.internal("delete blob", err)
	}
	if gone {
		s.removeLater(ctx, id)
	}
	return nil
}

// shredQueue is how many deleted blobs wait for blobLoop to remove their
// bytes; past it, the request that deleted one removes them itself.
const shredQueue = 64

// removeLater hands the bytes of a blob whose metadata is gone to
// blobLoop, so that the answer does not wait for them to be overwritten
// (100 MiB written and fsynced: a quarter of a second or more). Nobody
// can fetch the blob from now on; a process that dies before its bytes
// are gone leaves an orphan, removed at the next start as any other.
func (s *Server) removeLater(ctx context.Context, id []byte) {
	if !s.closing() {
		select {
		case s.shred <- id:
			return
		default:
		}
	}
	s.removeBlobData(ctx, id)
}

// removeBlobData removes the bytes of a blob whose metadata is gone; a
// failure leaves an orphan that the start-up sweep removes.
func (s *Server) removeBlobData(ctx context.Context, id []byte) {
	if err := s.cfg.BlobData.RemoveBlob(context.WithoutCancel(ctx), id); err != nil {
		s.log.Error("removing blob data", "err", err)
		return
	}
	s.m.blobsDeleted.Inc()
}

// checkBlobs validates the blob ids a send names, as far as can be told
// before its transaction (which checks them again): at most
// MaxBlobsPerMessage, no repeats, each a complete blob of p's device.
func (s *Server) checkBlobs(ctx context.Context, p Principal, ids []string) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if s.cfg.BlobData == nil {
		return nil, errBlobsOff
	}
	if len(ids) > api.MaxBlobsPerMessage {
		return nil, badRequest("blobs: at most %d", api.MaxBlobsPerMessage)
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if seen[id] {
			return nil, badRequest("blobs[%d] appears twice", i)
		}
		seen[id] = true
	}
	out := make([][]byte, 0, len(ids))
	for i, ids := range ids {
		b, err := s.ownBlob(ctx, p, ids)
		if errors.Is(err, errNoBlob) {
			return nil, newError(api.CodeNotFound, "blobs[%d]: no such blob", i)
		} else if err != nil {
			return nil, err
		}
		if !b.Complete() {
			return nil, newError(api.CodeConflict, "blobs[%d]: the blob is not fully uploaded (%d of %d bytes)", i, b.Received, b.Size)
		}
		out = append(out, b.ID)
	}
	return out, nil
}

// SweepBlobs deletes the blobs that expired, or that every recipient
// device has confirmed (or left), with their bytes, and returns how many.
// hushd runs it every minute.
func (s *Server) SweepBlobs(ctx context.Context) (int, error) {
	if s.cfg.BlobData == nil {
		return 0, nil
	}
	const batch = 1000
	n := 0
	for {
		ids, err := s.st.DeleteExpiredBlobs(ctx, s.nowMs(), batch)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			s.removeBlobData(ctx, id)
		}
		n += len(ids)
		if len(ids) < batch {
			return n, nil
		}
	}
}

// orphanRemover is a BlobData that can find bytes left without metadata
// (blobfiles).
type orphanRemover interface {
	RemoveOrphans(ctx context.Context) (int, error)
}

// blobLoop sweeps blobs every BlobSweepInterval, and removes the bytes
// of the blobs DeleteBlob deleted (removeLater); first it removes the
// bytes of blobs whose metadata went without them.
func (s *Server) blobLoop() {
	if o, ok := s.cfg.BlobData.(orphanRemover); ok {
		if n, err := o.RemoveOrphans(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
			s.log.Error("removing orphaned blob data", "err", err)
		} else if n > 0 {
			s.log.Info("removed orphaned blob data", "count", n)
		}
	}
	t := time.NewTicker(s.cfg.BlobSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			for {
				select {
				case id := <-s.shred:
					s.removeBlobData(context.Background(), id)
				default:
					return
				}
			}
		case id := <-s.shred:
			s.removeBlobData(context.Background(), id)
		case <-t.C:
			n, err := s.SweepBlobs(context.Background())
			if err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Error("deleting expired blobs", "err", err)
			} else if n > 0 {
				s.log.Info("deleted blobs", "count", n)
			}
		}
	}
}
