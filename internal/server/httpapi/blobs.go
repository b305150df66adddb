package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// blobDeadline is how long a blob transfer may go without progress: the
// server's request deadlines (60 s for the whole request) are moved on
// as bytes flow, so that a 100 MiB download on a slow link is not cut,
// while a stalled one is.
const blobDeadline = 60 * time.Second

// blobRoutes serves the blob endpoints (docs/api.md "Blobs"). PATCH's body
// is the chunk's bytes, streamed to the blob store as they arrive: the
// JSON body limit does not apply to it; the server's chunk limit does.
func (h *Handler) blobRoutes(m *http.ServeMux) {
	srv := h.srv
	m.HandleFunc("POST /v1/blobs", h.authed(endpoint(201, func(r *http.Request, p server.Principal, req api.NewBlob) (api.BlobState, error) {
		return srv.CreateBlob(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/blobs/{id}/state", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.BlobState, error) {
		return srv.BlobState(r.Context(), p, r.PathValue("id"))
	})))
	m.HandleFunc("DELETE /v1/blobs/{id}", h.authed(endpoint(204, func(r *http.Request, p server.Principal, _ none) (none, error) {
		return none{}, srv.DeleteBlob(r.Context(), p, r.PathValue("id"))
	})))
	m.HandleFunc("PATCH /v1/blobs/{id}", h.authed(h.uploadBlob))
	m.HandleFunc("GET /v1/blobs/{id}", h.authed(h.downloadBlob))
}

// uploadBlob serves PATCH /v1/blobs/{id}: header Upload-Offset, body the
// chunk (Content-Length required).
func (h *Handler) uploadBlob(w http.ResponseWriter, r *http.Request, p server.Principal) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" && mt != "application/offset+octet-stream" {
			writeError(w, &statusError{415, badRequest("Content-Type must be application/octet-stream")})
			return
		}
	}
	off, err := parseOffset(r.Header.Get("Upload-Offset"))
	if err != nil {
		writeError(w, err)
		return
	}
	if r.ContentLength < 0 {
		writeError(w, &statusError{411, badRequest("Content-Length must be given")})
		return
	}
	if r.ContentLength > h.srv.MaxBlobChunk() {
		// Refused before a byte is read (server.UploadBlob would too).
		writeError(w, &server.Error{Code: api.CodeTooLarge, Message: "a chunk is at most " + strconv.FormatInt(h.srv.MaxBlobChunk(), 10) + " bytes"})
		return
	}
	rc := http.NewResponseController(w)
	body := &progressReader{r: r.Body, extend: func() { _ = rc.SetReadDeadline(time.Now().Add(blobDeadline)) }}
	st, err := h.srv.UploadBlob(r.Context(), p, r.PathValue("id"), off, r.ContentLength, body)
	if st.ID != "" {
		w.Header().Set("Upload-Offset", strconv.FormatInt(st.Received, 10))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, st)
}

// parseOffset reads Upload-Offset: a decimal number of bytes, from 0.
func parseOffset(s string) (int64, error) {
	if s == "" {
		return 0, badRequest("the Upload-Offset header must be given")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, badRequest("Upload-Offset must be a number of bytes")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("Upload-Offset must be a number of bytes")
	}
	return n, nil
}

// downloadBlob serves GET /v1/blobs/{id}: the bytes, with Range requests
// (http.ServeContent; the id is the ETag, a blob never changes once
// complete).
func (h *Handler) downloadBlob(w http.ResponseWriter, r *http.Request, p server.Principal) {
	rd, st, err := h.srv.OpenBlob(r.Context(), p, r.PathValue("id"), rangeStart(r.Header.Get("Range")))
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("ETag", `"`+st.ID+`"`)
	rc := http.NewResponseController(w)
	pw := &progressWriter{w: w, extend: func() { _ = rc.SetWriteDeadline(time.Now().Add(blobDeadline)) }}
	http.ServeContent(pw, r, "", time.Time{}, rd)
}

// rangeStart is where a "bytes=N-..." Range starts, for the download
// limit; 0 for anything else (the whole blob is charged).
func rangeStart(v string) int64 {
	s, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(s, ",") {
		return 0
	}
	start, _, _ := strings.Cut(s, "-")
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// progressReader moves a deadline on every few MiB read.
type progressReader struct {
	r      io.Reader
	extend func()
	n      int
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.n += n; p.n >= 1<<20 {
		p.n = 0
		p.extend()
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// progressWriter moves a deadline on every few MiB written. It keeps the
// header methods of the http.ResponseWriter it wraps.
type progressWriter struct {
	w      http.ResponseWriter
	extend func()
	n      int
}

func (p *progressWriter) Header() http.Header { return p.w.Header() }
func (p *progressWriter) WriteHeader(c int)   { p.w.WriteHeader(c) }
func (p *progressWriter) Write(b []byte) (int, error) {
	if p.n += len(b); p.n >= 1<<20 {
		p.n = 0
		p.extend()
	}
	return p.w.Write(b)
}
