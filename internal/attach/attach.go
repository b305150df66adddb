// Package attach encrypts and decrypts attachments (files and photos), in
// two formats (schemes), both under a fresh 64-byte key per attachment:
//
//   - v2 ([V2], stream.go; what hush sends since 2026-12-03): AES-256-GCM
//     in 64 KiB chunks under the STREAM construction, with a key derived
//     by HKDF-SHA256 from the key and a per-file salt, and a key
//     commitment in its header, which is the Digest that travels with the
//     key. [StreamEncrypter], [StreamDecrypter].
//   - v1 ([V1]; still received): Signal's attachments, below.
//     [Encrypter], [Decrypter].
//
// [NewSealer] and [NewOpener] choose by scheme. Format v1, in detail: the
// key is an AES-256 key and an HMAC-SHA256 key, and
//
//	IV (16 bytes) || AES-256-CBC(padded plaintext, PKCS#7) || HMAC-SHA256(mac key, IV || ciphertext)
//
// as Signal-Android's AttachmentCipherOutputStream writes it. Before
// encryption the plaintext is padded with zeros to a size bucket
// (PaddedSize, Signal's PaddingInputStream), so that the stored size tells
// only roughly how big the file is; the true size travels with the key,
// inside the end-to-end encrypted message.
//
// The Digest that travels with the key is the HMAC tag itself. HMAC-SHA256
// is collision resistant even under a known key, so a sender who knows the
// key still cannot make two ciphertexts with the same tag: the digest
// commits to the stored bytes, and through them (the key being fixed) to
// the plaintext, which is what a franked message that names an attachment
// needs. Signal adds a SHA-256 over the whole ciphertext for the same
// purpose; a second hash over every byte would cost 40% more here
// (docs/performance.md) and add no property.
//
// A Decrypter decrypts as the ciphertext arrives, in one pass, and checks
// the tag over the whole ciphertext at the end (Close): until then the
// plaintext it wrote is unverified, and the caller keeps it where nobody
// uses it (internal/client decrypts into a private temporary file, and
// only a file whose tag and SHA-256 match is given its name). The
// tag does not cover the AES half of the key: a key with the right MAC
// half and a wrong AES half decrypts to noise, as a sender could encrypt
// noise; the key, like the size and the digest, must come from the
// sender's authenticated message. The
// plaintext size is not in the ciphertext (only its bucket is): it must
// come, as the key and the digest do, from the authenticated message that
// names the attachment.
package attach

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
)

// Sizes.
const (
	KeySize    = 64 // AES-256 key || HMAC-SHA256 key
	IVSize     = aes.BlockSize
	DigestSize = sha256.Size
	// MaxSize is the largest plaintext this package encrypts.
	MaxSize = 1 << 40
)

// Key is an attachment's key: never reuse one for two attachments.
type Key [KeySize]byte

// NewKey draws a fresh key.
func NewKey() Key {
	var k Key
	rand.Read(k[:])
	return k
}

// String keeps the key out of logs.
func (Key) String() string { return "attach.Key(…)" }

// GoString keeps the key out of %#v.
func (k Key) GoString() string { return k.String() }

// Digest is the HMAC-SHA256 tag at the end of the ciphertext: it names
// the ciphertext and commits to it.
type Digest [DigestSize]byte

// ErrCorrupt is the error of every attachment that fails to decrypt: a
// wrong key, a wrong digest, a ciphertext altered, truncated or extended,
// or a size that does not fit.
var ErrCorrupt = errors.New("attach: the attachment is corrupt or not the one named")

// PaddedSize is the size a plaintext of n bytes is padded to with zeros
// before encryption: Signal's buckets, max(541, floor(1.05^ceil(log1.05 n))),
// so that sizes leak only within about 5%.
func PaddedSize(n int64) int64 {
	if n <= 541 {
		return 541
	}
	p := int64(math.Floor(math.Pow(1.05, math.Ceil(math.Log(float64(n))/math.Log(1.05)))))
	return max(p, n) // floating point must never round below n
}

// CiphertextSize is the size of the encrypted form of n plaintext bytes.
func CiphertextSize(n int64) int64 {
	p := PaddedSize(n)
	return IVSize + (p/aes.BlockSize+1)*aes.BlockSize + DigestSize
}

// Encrypter streams an attachment's ciphertext to a writer. It is an
// io.WriteCloser: write exactly the size given to NewEncrypter, then
// Close, which writes the padding and the tag.
type Encrypter struct {
	w      io.Writer
	cbc    cipher.BlockMode
	mac    hash.Hash
	size   int64             // plaintext bytes announced
	n      int64             // plaintext bytes written
	out    io.Writer         // the MAC and w
	bg     *BackgroundWriter // out, on a goroutine of its own, for a large attachment
	buf    []byte
	held   int // bytes of buf not yet encrypted (< one block)
	digest Digest
	err    error
	closed bool
}

const chunk = 64 << 10

// pipeBuf and pipeBufs size the buffers between the encryption and the
// MAC (and the writer after it), which run on two goroutines for an
// attachment larger than a buffer.
const (
	pipeBuf  = 512 << 10
	pipeBufs = 3
)

// background is w itself for n bytes that fit a buffer (the goroutine
// would cost more than it saves), or w on a goroutine of its own.
func background(w io.Writer, n int64) (io.Writer, *BackgroundWriter) {
	if n <= pipeBuf {
		return w, nil
	}
	bg := NewBackgroundWriter(w, pipeBuf, pipeBufs)
	return bg, bg
}

// NewEncrypter starts encrypting an attachment of size bytes to w: it
// writes the IV at once.
func NewEncrypter(w io.Writer, k Key, size int64) (*Encrypter, error) {
	var iv [IVSize]byte
	rand.Read(iv[:])
	return NewEncrypterIV(w, k, iv, size)
}

// NewEncrypterIV is NewEncrypter with the IV given by the caller, so that
// an interrupted upload can be resumed: the same file under the same key
// and IV gives the same ciphertext again, byte for byte, and the upload
// goes on where the server's copy stops. Never use a key and IV for two
// different plaintexts (a fresh key per attachment sees to it).
func NewEncrypterIV(w io.Writer, k Key, ivb [IVSize]byte, size int64) (*Encrypter, error) {
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("attach: size %d out of range", size)
	}
	block, err := aes.NewCipher(k[:32])
	if err != nil {
		return nil, err
	}
	iv := ivb[:]
	e := &Encrypter{w: w, cbc: cipher.NewCBCEncrypter(block, iv), mac: hmac.New(sha256.New, k[32:]),
		size: size, buf: make([]byte, chunk+aes.BlockSize)}
	e.mac.Write(iv)
	if _, err := w.Write(iv); err != nil {
		return nil, err
	}
	e.out, e.bg = background(io.MultiWriter(e.mac, w), CiphertextSize(size))
	return e, nil
}

// Write encrypts p. Writing more than the announced size is an error.
func (e *Encrypter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errors.New("attach: write after close")
	}
	if int64(len(p)) > e.size-e.n {
		return 0, fmt.Errorf("attach: more than the announced %d bytes", e.size)
	}
	written := 0
	for len(p) > 0 {
		m := copy(e.buf[e.held:chunk], p)
		p, e.held, written = p[m:], e.held+m, written+m
		if err := e.flush(false); err != nil {
			return written, err
		}
	}
	e.n += int64(written)
	return written, nil
}

// flush encrypts and writes the whole blocks held (all of them, padded,
// when last).
func (e *Encrypter) flush(last bool) error {
	whole := e.held - e.held%aes.BlockSize
	if last {
		pad := aes.BlockSize - e.held%aes.BlockSize // PKCS#7: 1..16
		for i := range pad {
			e.buf[e.held+i] = byte(pad)
		}
		whole = e.held + pad
	}
	if whole == 0 {
		return nil
	}
	out := e.buf[:whole]
	e.cbc.CryptBlocks(out, out)
	if _, err := e.out.Write(out); err != nil {
		e.err = err
		return err
	}
	if last {
		e.held = 0
	} else {
		e.held = copy(e.buf, e.buf[whole:e.held])
	}
	return nil
}

// Close pads the plaintext to PaddedSize, writes the last blocks and the
// tag. It fails if fewer bytes than announced were written. An Encrypter
// must be closed, also after an error: the MAC runs on a goroutine of its
// own, which Close ends (nothing is written to w after Close returns).
func (e *Encrypter) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err == nil && e.n != e.size {
		e.err = fmt.Errorf("attach: %d bytes written of the announced %d", e.n, e.size)
	}
	if e.err == nil {
		e.err = e.pad()
	}
	if e.bg != nil {
		if err := e.bg.Close(); e.err == nil {
			e.err = err
		}
	}
	if e.err != nil {
		return e.err
	}
	e.mac.Sum(e.digest[:0])
	_, e.err = e.w.Write(e.digest[:])
	return e.err
}

// pad writes the zero padding up to the bucket, streamed in chunks, and
// the last blocks.
func (e *Encrypter) pad() error {
	for zeros := PaddedSize(e.size) - e.size; zeros > 0; {
		m := int(min(zeros, int64(chunk-e.held)))
		clear(e.buf[e.held : e.held+m])
		e.held += m
		zeros -= int64(m)
		if err := e.flush(false); err != nil {
			return err
		}
	}
	return e.flush(true)
}

// Digest returns the tag, once Close succeeded.
func (e *Encrypter) Digest() Digest { return e.digest }
