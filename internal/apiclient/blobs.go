package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hushmsg/hush/internal/api"
)

// Blobs: encrypted attachments, uploaded in resumable chunks and
// downloaded with Range (docs/api.md "Blobs"). The bytes are the caller's
// ciphertext: nothing here encrypts.

// DefaultChunkSize is the chunk Upload sends unless told otherwise: the
// server's largest (8 MiB by default).
const DefaultChunkSize = 8 << 20

// CreateBlob makes an empty blob of size bytes to upload.
func (c *Client) CreateBlob(ctx context.Context, size int64) (api.BlobState, error) {
	var out api.BlobState
	return out, c.Do(ctx, "POST", "/v1/blobs", api.NewBlob{Size: size}, &out)
}

// BlobState tells how far the upload of one of the caller's blobs is.
func (c *Client) BlobState(ctx context.Context, id string) (api.BlobState, error) {
	var out api.BlobState
	return out, c.Do(ctx, "GET", "/v1/blobs/"+url.PathEscape(id)+"/state", nil, &out)
}

// DeleteBlob says the calling device has the blob (as a recipient), or
// discards a blob of its own that no message carries.
func (c *Client) DeleteBlob(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/v1/blobs/"+url.PathEscape(id), nil, nil)
}

// UploadChunk sends n bytes of body as the chunk at offset off. A chunk
// that does not start where the upload stands gets an *Error with Code
// api.CodeBadOffset (BlobState then says where).
func (c *Client) UploadChunk(ctx context.Context, id string, off int64, body io.Reader, n int64) (api.BlobState, error) {
	req, err := http.NewRequestWithContext(ctx, "PATCH", c.Current()+"/v1/blobs/"+url.PathEscape(id), body)
	if err != nil {
		return api.BlobState{}, err
	}
	req.ContentLength = n
	if n == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
	var out api.BlobState
	return out, c.doBlob(req, &out)
}

// sendBlob sends a blob request to the node tried first, on the client
// without a timeout. A blob transfer is not sent again to another node
// (its body is not kept): when the node cannot be reached it is marked
// (Skip), so that the caller's retry, which resumes from the blob's
// state, goes to another node of a cluster, where the blob is too.
func (c *Client) sendBlob(req *http.Request) (*http.Response, error) {
	if c.cred != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	}
	resp, err := c.bc.Do(req)
	if err != nil {
		if req.Context().Err() == nil && !errors.As(err, new(*CertificateError)) {
			c.Skip(req.URL.Scheme + "://" + req.URL.Host)
		}
		return nil, err
	}
	if nodeDown(resp.StatusCode) {
		c.Skip(req.URL.Scheme + "://" + req.URL.Host)
	}
	return resp, nil
}

// doBlob sends a blob request (sendBlob) and decodes a JSON answer into
// out.
func (c *Client) doBlob(req *http.Request, out any) error {
	resp, err := c.sendBlob(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("apiclient: decoding %s %s answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// UploadOptions tune Upload.
type UploadOptions struct {
	// ChunkSize is the size of each PATCH; default DefaultChunkSize.
	ChunkSize int64
	// Progress, if set, is called after each chunk with the bytes the
	// server holds.
	Progress func(received int64)
}

// Upload sends blob id's bytes, read from r (size bytes, the size the
// blob was created with), starting where the server's upload stands: a
// blob uploaded partly before (by an Upload that failed, or a process
// that died) is resumed, not restarted. It returns the final state.
func (c *Client) Upload(ctx context.Context, id string, r io.ReaderAt, size int64, o UploadOptions) (api.BlobState, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	st, err := c.BlobState(ctx, id)
	if err != nil {
		return st, err
	}
	if st.Size != size {
		return st, fmt.Errorf("apiclient: blob %s is %d bytes, not %d", id, st.Size, size)
	}
	resyncs := 0
	for st.Received < st.Size {
		n := min(o.ChunkSize, st.Size-st.Received)
		next, err := c.UploadChunk(ctx, id, st.Received, io.NewSectionReader(r, st.Received, n), n)
		if IsCode(err, api.CodeBadOffset) && resyncs < 3 {
			// Another upload of the same blob moved it: continue from
			// where it stands.
			resyncs++
			if st, err = c.BlobState(ctx, id); err != nil {
				return st, err
			}
			continue
		}
		if err != nil {
			return st, err
		}
		st = next
		if o.Progress != nil {
			o.Progress(st.Received)
		}
	}
	return st, nil
}

// ErrBlobChanged says a resumed download met bytes that are not the
// blob's it started on (the server answered a range of something else).
var ErrBlobChanged = errors.New("apiclient: the blob changed between two parts of its download")

// DownloadBlob writes the blob's bytes from offset from (0 for all of
// them; more to resume a download cut short) to w, streaming, and returns
// how many it wrote: on an error, from+n is where to resume.
func (c *Client) DownloadBlob(ctx context.Context, id string, from int64, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Current()+"/v1/blobs/"+url.PathEscape(id), nil)
	if err != nil {
		return 0, err
	}
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
		// The blob's id is its ETag: a range of anything else is refused
		// (answered whole, 200, which is then an error).
		req.Header.Set("If-Range", `"`+id+`"`)
	}
	resp, err := c.sendBlob(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && from == 0, resp.StatusCode == http.StatusPartialContent && from > 0:
	case resp.StatusCode == http.StatusOK:
		return 0, ErrBlobChanged
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return 0, &Error{Status: resp.StatusCode, Code: api.CodeBadRequest, Message: "offset " + strconv.FormatInt(from, 10) + " is past the blob's end"}
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, answerError(resp.StatusCode, b)
	}
	return io.Copy(w, resp.Body)
}
