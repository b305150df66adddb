package attach

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"io"
)

// Decrypter decrypts an attachment as its ciphertext arrives, in one
// pass: it is an io.WriteCloser to which the whole ciphertext is written,
// from its start; the MAC is computed on a goroutine of its own while the
// ciphertext is decrypted, and the plaintext (size bytes, without the
// padding) goes to dst as it comes. Unlike Decrypt, that plaintext is
// not yet verified: only Close, once every byte is written, checks the
// length, the tag against digest and the padding. The caller must keep
// dst where nobody uses it (a private temporary file) until Close
// returns nil, and throw it away otherwise. Every failure of the
// attachment is ErrCorrupt; a failure of dst is returned as is.
type Decrypter struct {
	dst     io.Writer
	block   cipher.Block
	cbc     cipher.BlockMode
	mac     hash.Hash
	macw    io.Writer
	bg      *BackgroundWriter // macw, for a large attachment
	size    int64             // plaintext bytes announced
	total   int64             // ciphertext bytes expected, CiphertextSize(size)
	pos     int64             // ciphertext bytes written so far
	in      int64             // bytes of the ciphertext proper (after the IV) taken into buf
	keep    int64             // plaintext bytes still to hand out
	iv      [IVSize]byte
	tag     Digest
	digest  Digest
	buf     []byte
	held    int // bytes of buf not yet decrypted (< one block)
	lastPad int // the padding byte of the last block, once decrypted
	err     error
	closed  bool
}

// NewDecrypter starts decrypting an attachment of size bytes under k,
// whose tag must be digest, to dst.
func NewDecrypter(dst io.Writer, k Key, size int64, digest Digest) (*Decrypter, error) {
	if size < 0 || size > MaxSize {
		return nil, ErrCorrupt
	}
	block, err := aes.NewCipher(k[:32])
	if err != nil {
		return nil, err
	}
	d := &Decrypter{dst: dst, block: block, mac: hmac.New(sha256.New, k[32:]), size: size,
		total: CiphertextSize(size), keep: size, digest: digest, buf: make([]byte, chunk+aes.BlockSize)}
	d.macw, d.bg = background(d.mac, d.total)
	return d, nil
}

// Write takes the next bytes of the ciphertext. More than the
// ciphertext of the announced size is ErrCorrupt.
func (d *Decrypter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, errClosed
	}
	if int64(len(p)) > d.total-d.pos {
		d.err = ErrCorrupt
		return 0, d.err
	}
	n := len(p)
	body := d.total - DigestSize // IV || ciphertext
	// The IV.
	if d.pos < IVSize {
		k := copy(d.iv[d.pos:], p)
		d.pos += int64(k)
		if _, err := d.macw.Write(p[:k]); err != nil {
			d.err = err
			return 0, err
		}
		p = p[k:]
		if d.pos == IVSize {
			d.cbc = cipher.NewCBCDecrypter(d.block, d.iv[:])
		}
	}
	// The ciphertext.
	if d.pos >= IVSize && d.pos < body && len(p) > 0 {
		m := int(min(int64(len(p)), body-d.pos))
		if _, err := d.macw.Write(p[:m]); err != nil {
			d.err = err
			return 0, err
		}
		for q := p[:m]; len(q) > 0; {
			c := copy(d.buf[d.held:chunk], q)
			q, d.held, d.in = q[c:], d.held+c, d.in+int64(c)
			if err := d.decrypt(); err != nil {
				d.err = err
				return 0, err
			}
		}
		d.pos += int64(m)
		p = p[m:]
	}
	// The tag.
	if len(p) > 0 {
		copy(d.tag[d.pos-body:], p)
		d.pos += int64(len(p))
	}
	return n, nil
}

// decrypt decrypts the whole blocks held and hands out the plaintext
// that is not padding.
func (d *Decrypter) decrypt() error {
	whole := d.held - d.held%aes.BlockSize
	if whole == 0 {
		return nil
	}
	b := d.buf[:whole]
	d.cbc.CryptBlocks(b, b)
	// The last block of the ciphertext ends with the PKCS#7 padding.
	if d.in == d.total-DigestSize-IVSize && whole == d.held {
		d.lastPad = int(b[whole-1])
	}
	if out := b[:min(int64(whole), d.keep)]; len(out) > 0 {
		if _, err := d.dst.Write(out); err != nil {
			return err
		}
		d.keep -= int64(len(out))
	}
	d.held = copy(d.buf, d.buf[whole:d.held])
	return nil
}

// Close checks that the whole ciphertext was written, that its tag is
// digest and that its padding fits the size: ErrCorrupt otherwise. Only
// then is the plaintext written to dst the attachment. A Decrypter must
// be closed, also after an error (the MAC's goroutine ends then).
func (d *Decrypter) Close() error {
	if d.closed {
		return d.err
	}
	d.closed = true
	if d.bg != nil {
		if err := d.bg.Close(); d.err == nil {
			d.err = err
		}
	}
	if d.err != nil {
		return d.err
	}
	want := d.mac.Sum(nil)
	body := d.total - DigestSize
	switch {
	case d.pos != d.total, d.held != 0,
		subtle.ConstantTimeCompare(want, d.tag[:])&subtle.ConstantTimeCompare(want, d.digest[:]) != 1,
		d.lastPad < 1 || d.lastPad > aes.BlockSize || (body-IVSize)-int64(d.lastPad) < d.size,
		d.keep != 0:
		d.err = ErrCorrupt
	}
	return d.err
}
