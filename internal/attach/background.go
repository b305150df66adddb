package attach

import (
	"errors"
	"io"
	"sync/atomic"
)

// BackgroundWriter writes to another writer on a goroutine of its own, so
// that what makes the bytes and what takes them (a hash, a file, an
// upload) run on two cores at once. Write copies into one of a few
// buffers and hands each full one over; Close hands over the rest and
// waits until every byte is written. An error of the writer is returned
// by a later Write or by Close, and from then on nothing more is written
// to it. Memory: the buffers, fixed when it is made. One goroutine may
// use it; Close must be called, also after an error (it ends the
// goroutine).
type BackgroundWriter struct {
	size   int // of a buffer
	spare  int // buffers not made yet
	buf    []byte
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	err    atomic.Pointer[error]
	closed bool
}

// NewBackgroundWriter starts writing to w in the background, through at
// most n buffers (at least 2) of size bytes, made as they are needed (a
// few bytes written take a few bytes).
func NewBackgroundWriter(w io.Writer, size, n int) *BackgroundWriter {
	n = max(n, 2)
	b := &BackgroundWriter{size: size, spare: n - 1, full: make(chan []byte, n), free: make(chan []byte, n), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for p := range b.full {
			if b.err.Load() == nil {
				if _, err := w.Write(p); err != nil {
					b.err.Store(&err)
				}
			}
			b.free <- p[:0]
		}
	}()
	return b
}

var errClosed = errors.New("attach: write after close")

func (b *BackgroundWriter) failed() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Write copies p and returns; the bytes are written in the background.
func (b *BackgroundWriter) Write(p []byte) (int, error) {
	if b.closed {
		return 0, errClosed
	}
	if err := b.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if want := min(b.size, len(b.buf)+len(p)); cap(b.buf) < want {
			// A buffer growing to its size, as the first writes come.
			nb := make([]byte, len(b.buf), min(b.size, max(want, 2*cap(b.buf))))
			copy(nb, b.buf)
			b.buf = nb
		}
		k := copy(b.buf[len(b.buf):cap(b.buf)], p)
		b.buf, p = b.buf[:len(b.buf)+k], p[k:]
		if len(b.buf) == b.size {
			b.full <- b.buf
			b.buf = nil
			if b.spare > 0 {
				b.spare-- // a new one, made as it fills
			} else {
				b.buf = <-b.free
			}
		}
	}
	return n, nil
}

// Close writes what is left, waits until all is written and returns the
// writer's first error.
func (b *BackgroundWriter) Close() error {
	if !b.closed {
		b.closed = true
		if len(b.buf) > 0 {
			b.full <- b.buf
		}
		b.buf = nil
		close(b.full)
	}
	<-b.done
	return b.failed()
}
