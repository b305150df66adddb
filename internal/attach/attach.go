// Package attach encrypts and decrypts attachments (files and photos) in
// the format of Signal's attachments: a fresh 64-byte key per attachment
// (an AES-256 key and an HMAC-SHA256 key), and
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
// Decrypt checks the tag over the whole ciphertext before it decrypts
// anything: no byte of an altered attachment reaches its destination. The
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
	"crypto/subtle"
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
	size   int64 // plaintext bytes announced
	n      int64 // plaintext bytes written
	buf    []byte
	held   int // bytes of buf not yet encrypted (< one block)
	digest Digest
	err    error
	closed bool
}

const chunk = 64 << 10

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
	e.mac.Write(out)
	if _, err := e.w.Write(out); err != nil {
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
// tag. It fails if fewer bytes than announced were written.
func (e *Encrypter) Close() error {
	if e.err != nil || e.closed {
		return e.err
	}
	if e.n != e.size {
		e.err = fmt.Errorf("attach: %d bytes written of the announced %d", e.n, e.size)
		return e.err
	}
	e.closed = true
	// Zero padding up to the bucket, streamed in chunks.
	for zeros := PaddedSize(e.size) - e.size; zeros > 0; {
		m := int(min(zeros, int64(chunk-e.held)))
		clear(e.buf[e.held : e.held+m])
		e.held += m
		zeros -= int64(m)
		if err := e.flush(false); err != nil {
			return err
		}
	}
	if err := e.flush(true); err != nil {
		return err
	}
	e.mac.Sum(e.digest[:0])
	_, err := e.w.Write(e.digest[:])
	e.err = err
	return err
}

// Digest returns the tag, once Close succeeded.
func (e *Encrypter) Digest() Digest { return e.digest }

// Decrypt checks that src (the whole ciphertext, read from its start) has
// the tag digest under k and is the encrypted form of size bytes, and only
// then decrypts it to dst. Every failure of the attachment is ErrCorrupt,
// found before anything is written to dst; a failure of dst or of
// seeking src is returned as is.
func Decrypt(dst io.Writer, src io.ReadSeeker, k Key, size int64, digest Digest) error {
	if size < 0 || size > MaxSize {
		return ErrCorrupt
	}
	total := CiphertextSize(size)
	start, err := src.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	// First pass: the tag over IV || ciphertext, and the length.
	mac := hmac.New(sha256.New, k[32:])
	body := total - DigestSize
	if n, err := io.CopyN(mac, src, body); err != nil || n != body {
		return ErrCorrupt
	}
	var tag Digest
	if _, err := io.ReadFull(src, tag[:]); err != nil {
		return ErrCorrupt
	}
	if extra, _ := src.Read(make([]byte, 1)); extra != 0 {
		return ErrCorrupt
	}
	want := mac.Sum(nil)
	if subtle.ConstantTimeCompare(want, tag[:])&subtle.ConstantTimeCompare(want, digest[:]) != 1 {
		return ErrCorrupt
	}
	block, err := aes.NewCipher(k[:32])
	if err != nil {
		return err
	}
	// The padding, from the last block alone (CBC: the block before it is
	// its IV), so that a bad one fails before anything is written. It is
	// authenticated, but a sender's bug must not pass as data.
	if _, err := src.Seek(start+body-2*aes.BlockSize, io.SeekStart); err != nil {
		return err
	}
	var last [2 * aes.BlockSize]byte
	if _, err := io.ReadFull(src, last[:]); err != nil {
		return ErrCorrupt
	}
	block.Decrypt(last[aes.BlockSize:], last[aes.BlockSize:])
	subtle.XORBytes(last[aes.BlockSize:], last[aes.BlockSize:], last[:aes.BlockSize])
	pad := int(last[2*aes.BlockSize-1])
	if pad < 1 || pad > aes.BlockSize || (body-IVSize)-int64(pad) < size {
		return ErrCorrupt
	}
	// Second pass: decrypt, up to size bytes.
	if _, err := src.Seek(start, io.SeekStart); err != nil {
		return err
	}
	iv := make([]byte, IVSize)
	if _, err := io.ReadFull(src, iv); err != nil {
		return ErrCorrupt
	}
	cbc := cipher.NewCBCDecrypter(block, iv)
	remaining := body - IVSize // whole blocks
	keep := size               // plaintext bytes still to hand out
	buf := make([]byte, chunk)
	for remaining > 0 {
		m := int(min(remaining, chunk))
		if _, err := io.ReadFull(src, buf[:m]); err != nil {
			return ErrCorrupt
		}
		cbc.CryptBlocks(buf[:m], buf[:m])
		remaining -= int64(m)
		out := buf[:int(min(int64(m), keep))]
		if len(out) > 0 {
			if _, err := dst.Write(out); err != nil {
				return err
			}
		}
		keep -= int64(len(out))
		if keep == 0 {
			break // the rest is zero padding
		}
	}
	return nil
}
