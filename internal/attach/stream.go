package attach

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Format v2 (scheme [V2]): a chunked streaming AEAD, AES-256-GCM in
// chunks of ChunkSize bytes under the STREAM construction (Hoang,
// Reyhanitabar, Rogaway, Vizár, "Online authenticated-encryption and its
// nonce-reuse misuse-resistance", CRYPTO 2015, section 7), as age's
// payload (age-encryption.org/v1, "Payload") and Tink's
// AES-GCM-HKDF streaming AEAD lay it out:
//
//	salt (16 bytes) || commitment (32 bytes) || chunk 0 || chunk 1 || ... || chunk n-1
//	chunk i = AES-256-GCM(payload key, nonce i, plaintext i)   (plaintext i || 16-byte tag)
//	nonce i = i as 11 bytes big-endian || 0x01 for the last chunk, 0x00 before
//
//	prk        = HKDF-Extract(SHA-256, salt, key)      (RFC 5869; key is the 64-byte attachment key)
//	payload key = HKDF-Expand(prk, "hush attachment v2 payload key", 32)
//	commitment  = HKDF-Expand(prk, "hush attachment v2 key commitment", 32)
//
// Every chunk holds ChunkSize bytes of plaintext but the last, which holds
// 1 to ChunkSize. The plaintext is the file followed by zeros up to the
// padded size of [V2Layout], chosen so that the whole ciphertext is one of
// Signal's size buckets (PaddedSize): the stored size tells only roughly
// how big the file is, and the largest file fits the server's largest
// blob. The receiver knows the file's size (it travels with the key),
// hence the number of chunks and which one is last: a stream truncated at
// a chunk boundary, reordered, with a chunk repeated or one added fails
// (the counter and the last-chunk flag are in the nonce), and so does any
// altered byte (the chunk's tag).
//
// The commitment makes the scheme key-committing: GCM alone is not (one
// ciphertext can be made to open under two keys to two plaintexts, the
// "invisible salamanders" of Dodis, Grubbs, Ristenpart, Woodage,
// CRYPTO 2018, and Albertini et al., USENIX Security 2022); a second key
// passing the check would need two HKDF (HMAC-SHA256) outputs to collide.
// This is the "commit to the key with a hash" fix of Albertini et al.,
// section 5 (key commitment carried in the ciphertext, derived from the
// key by a collision-resistant PRF). The decrypter checks it, in
// constant time, against the one it derives and against the Digest the
// message carries before it opens a chunk. The commitment is the v2
// Digest: it costs one HKDF per attachment, not a pass over the bytes
// (docs/franking.md says why no ciphertext hash is needed).
//
// The salt is fresh per attachment; since the key is also fresh, the
// payload key is never used for two files, and the counter nonces never
// repeat under it. The same key, salt and plaintext give the same
// ciphertext byte for byte, which resumes an interrupted upload.

// Sizes of format v2.
const (
	SaltSize       = 16
	CommitmentSize = 32
	HeaderSize     = SaltSize + CommitmentSize
	ChunkSize      = 64 << 10
	TagSize        = 16
)

// The HKDF info labels of format v2 (domain separation).
const (
	labelPayload    = "hush attachment v2 payload key"
	labelCommitment = "hush attachment v2 key commitment"
)

// ErrUnsupported is the error of an attachment in a scheme this version
// does not know.
var ErrUnsupported = errors.New("attach: the attachment is in a format this version of hush does not read")

// Scheme is how an attachment is encrypted (the scheme field of the
// attachment pointer in the content).
type Scheme uint32

// Schemes.
const (
	// V1 is Signal's format: AES-256-CBC + HMAC-SHA256 ([Encrypter]).
	// A pointer without a scheme field is V1.
	V1 Scheme = 1
	// V2 is the chunked AES-256-GCM STREAM with a key commitment
	// ([StreamEncrypter]); new senders use it.
	V2 Scheme = 2
)

// Known reports whether this version reads s.
func (s Scheme) Known() bool { return s == V1 || s == V2 }

// CiphertextSize is the size of the encrypted form, in scheme s, of n
// plaintext bytes; 0 for an unknown scheme.
func (s Scheme) CiphertextSize(n int64) int64 {
	switch s {
	case V1:
		return CiphertextSize(n)
	case V2:
		total, _, _ := V2Layout(n)
		return total
	}
	return 0
}

// V2Layout is the layout of the format v2 ciphertext of n plaintext
// bytes: its total size (a size bucket, PaddedSize of the unpadded
// ciphertext's size), the padded plaintext size and the number of chunks.
func V2Layout(n int64) (total, padded, chunks int64) {
	total = PaddedSize(n + HeaderSize + TagSize*max(1, ceilDiv(n, ChunkSize)))
	for {
		chunks = ceilDiv(total-HeaderSize, ChunkSize+TagSize)
		padded = total - HeaderSize - TagSize*chunks
		if padded >= n && padded > (chunks-1)*ChunkSize {
			return total, padded, chunks
		}
		total++ // a last chunk of its tag alone, or short of n: a byte more
	}
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// streamKeys derives the payload AEAD and the commitment from the key
// and the salt.
func streamKeys(k Key, salt []byte) (cipher.AEAD, Digest, error) {
	prk, err := hkdf.Extract(sha256.New, k[:], salt)
	if err != nil {
		return nil, Digest{}, err
	}
	pk, err := hkdf.Expand(sha256.New, prk, labelPayload, 32)
	if err != nil {
		return nil, Digest{}, err
	}
	c, err := hkdf.Expand(sha256.New, prk, labelCommitment, CommitmentSize)
	if err != nil {
		return nil, Digest{}, err
	}
	var commit Digest
	copy(commit[:], c)
	block, err := aes.NewCipher(pk)
	if err != nil {
		return nil, Digest{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, Digest{}, err
	}
	return aead, commit, nil
}

// streamNonce is the nonce of chunk i: i as 11 bytes big-endian, then
// the last-chunk flag (STREAM's nonce-based encoding, as age's).
func streamNonce(n *[12]byte, i int64, last bool) {
	for j := 10; j >= 0; j-- {
		n[j] = byte(i)
		i >>= 8
	}
	n[11] = 0
	if last {
		n[11] = 1
	}
}

// StreamEncrypter streams an attachment's format v2 ciphertext to a
// writer. It is an io.WriteCloser: write exactly the size given to
// NewStreamEncrypter, then Close, which writes the padding and the last
// chunk. Each chunk is sealed and written as soon as it is full: GCM
// runs at several GB/s on one core, so no goroutine of its own.
type StreamEncrypter struct {
	w      io.Writer
	aead   cipher.AEAD
	size   int64 // plaintext bytes announced
	n      int64 // plaintext bytes written
	padded int64
	chunks int64
	ctr    int64 // chunks written
	nonce  [12]byte
	buf    []byte // one chunk and its tag
	held   int
	commit Digest
	err    error
	closed bool
}

// NewStreamEncrypter starts encrypting an attachment of size bytes to w
// in format v2, under k and a fresh salt: it writes the header at once.
func NewStreamEncrypter(w io.Writer, k Key, size int64) (*StreamEncrypter, error) {
	var salt [SaltSize]byte
	rand.Read(salt[:])
	return NewStreamEncrypterSalt(w, k, salt, size)
}

// NewStreamEncrypterSalt is NewStreamEncrypter with the salt given by the
// caller, so that an interrupted upload can be resumed (the same file,
// key and salt give the same ciphertext again) and for known-answer
// tests. Never use a key for two different plaintexts (a fresh key per
// attachment sees to it).
func NewStreamEncrypterSalt(w io.Writer, k Key, salt [SaltSize]byte, size int64) (*StreamEncrypter, error) {
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("attach: size %d out of range", size)
	}
	aead, commit, err := streamKeys(k, salt[:])
	if err != nil {
		return nil, err
	}
	_, padded, chunks := V2Layout(size)
	e := &StreamEncrypter{w: w, aead: aead, size: size, padded: padded, chunks: chunks, commit: commit,
		buf: make([]byte, ChunkSize+TagSize)}
	var hdr [HeaderSize]byte
	copy(hdr[:], salt[:])
	copy(hdr[SaltSize:], commit[:])
	if _, err := w.Write(hdr[:]); err != nil {
		return nil, err
	}
	return e, nil
}

// Write encrypts p. Writing more than the announced size is an error.
func (e *StreamEncrypter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errClosed
	}
	if int64(len(p)) > e.size-e.n {
		return 0, fmt.Errorf("attach: more than the announced %d bytes", e.size)
	}
	written := 0
	for len(p) > 0 {
		if e.held == 0 && len(p) >= ChunkSize && e.ctr < e.chunks-1 {
			// A whole chunk of p, not the last: sealed from p into buf,
			// without copying it first.
			if err := e.sealFrom(p[:ChunkSize], false); err != nil {
				return written, err
			}
			p, written = p[ChunkSize:], written+ChunkSize
			e.n += ChunkSize
			continue
		}
		m := copy(e.buf[e.held:ChunkSize], p)
		p, e.held, written = p[m:], e.held+m, written+m
		e.n += int64(m)
		if err := e.flush(); err != nil {
			return written, err
		}
	}
	return written, nil
}

// flush seals and writes the chunk held if it is full and not the last
// (the last is sealed by Close, once the padding is in).
func (e *StreamEncrypter) flush() error {
	if e.held < ChunkSize || e.ctr == e.chunks-1 {
		return nil
	}
	return e.seal(false)
}

func (e *StreamEncrypter) seal(last bool) error {
	return e.sealFrom(e.buf[:e.held], last)
}

// sealFrom seals the chunk pt (buf's or the caller's) into buf and
// writes it.
func (e *StreamEncrypter) sealFrom(pt []byte, last bool) error {
	streamNonce(&e.nonce, e.ctr, last)
	out := e.aead.Seal(e.buf[:0], e.nonce[:], pt, nil)
	if _, err := e.w.Write(out); err != nil {
		e.err = err
		return err
	}
	e.ctr++
	e.held = 0
	return nil
}

// Close writes the zero padding and the last chunk. It fails if fewer
// bytes than announced were written.
func (e *StreamEncrypter) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err == nil && e.n != e.size {
		e.err = fmt.Errorf("attach: %d bytes written of the announced %d", e.n, e.size)
	}
	for zeros := e.padded - e.size; e.err == nil && zeros > 0; {
		m := int(min(zeros, int64(ChunkSize-e.held)))
		clear(e.buf[e.held : e.held+m])
		e.held += m
		zeros -= int64(m)
		e.err = e.flush()
	}
	if e.err == nil {
		e.err = e.seal(true)
	}
	return e.err
}

// Digest returns the commitment, the Digest of a format v2 attachment.
func (e *StreamEncrypter) Digest() Digest { return e.commit }

// StreamDecrypter decrypts a format v2 attachment as its ciphertext
// arrives: an io.WriteCloser to which the whole ciphertext is written,
// from its start. The header's commitment is checked (in constant time,
// against the one derived from the key and against the digest the
// message carries) before any chunk is opened, and each chunk is
// authenticated before its plaintext goes to dst; only Close, once every
// byte is written, knows that the stream was not cut short, so the
// caller must still keep dst private until Close returns nil. Every
// failure of the attachment is ErrCorrupt; a failure of dst is returned
// as is.
type StreamDecrypter struct {
	dst    io.Writer
	key    Key
	digest Digest
	aead   cipher.AEAD
	size   int64 // plaintext bytes announced
	total  int64 // ciphertext bytes expected
	padded int64
	chunks int64
	pos    int64 // ciphertext bytes written so far
	ctr    int64 // chunks opened
	keep   int64 // plaintext bytes still to hand out
	hdr    [HeaderSize]byte
	nonce  [12]byte
	buf    []byte
	held   int
	err    error
	closed bool
}

// NewStreamDecrypter starts decrypting a format v2 attachment of size
// bytes under k, whose commitment must be digest, to dst.
func NewStreamDecrypter(dst io.Writer, k Key, size int64, digest Digest) (*StreamDecrypter, error) {
	if size < 0 || size > MaxSize {
		return nil, ErrCorrupt
	}
	total, padded, chunks := V2Layout(size)
	return &StreamDecrypter{dst: dst, key: k, digest: digest, size: size, total: total, padded: padded,
		chunks: chunks, keep: size, buf: make([]byte, ChunkSize+TagSize)}, nil
}

// chunkLen is the ciphertext length of the chunk being read.
func (d *StreamDecrypter) chunkLen() int {
	if d.ctr == d.chunks-1 {
		return int(d.padded-d.ctr*ChunkSize) + TagSize
	}
	return ChunkSize + TagSize
}

// Write takes the next bytes of the ciphertext. More than the
// ciphertext of the announced size is ErrCorrupt.
func (d *StreamDecrypter) Write(p []byte) (int, error) {
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
	if d.pos < HeaderSize {
		k := copy(d.hdr[d.pos:], p)
		d.pos += int64(k)
		p = p[k:]
		if d.pos == HeaderSize {
			if d.err = d.open(); d.err != nil {
				return 0, d.err
			}
		}
	}
	for len(p) > 0 {
		if cl := d.chunkLen(); d.held == 0 && len(p) >= cl {
			// A whole chunk in p: opened from p into buf, without
			// copying it first.
			d.pos += int64(cl)
			if d.err = d.openChunk(p[:cl]); d.err != nil {
				return 0, d.err
			}
			p = p[cl:]
			continue
		}
		k := copy(d.buf[d.held:d.chunkLen()], p)
		p, d.held, d.pos = p[k:], d.held+k, d.pos+int64(k)
		if d.held == d.chunkLen() {
			if d.err = d.openChunk(d.buf[:d.held]); d.err != nil {
				return 0, d.err
			}
		}
	}
	return n, nil
}

// open derives the keys from the header's salt and checks its
// commitment, before any plaintext.
func (d *StreamDecrypter) open() error {
	aead, commit, err := streamKeys(d.key, d.hdr[:SaltSize])
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(commit[:], d.hdr[SaltSize:])&subtle.ConstantTimeCompare(commit[:], d.digest[:]) != 1 {
		return ErrCorrupt
	}
	d.aead = aead
	return nil
}

// openChunk authenticates and decrypts the chunk ct (buf's or the
// caller's) into buf and hands out its plaintext that is not padding
// (which must be zeros).
func (d *StreamDecrypter) openChunk(ct []byte) error {
	streamNonce(&d.nonce, d.ctr, d.ctr == d.chunks-1)
	pt, err := d.aead.Open(d.buf[:0], d.nonce[:], ct, nil)
	if err != nil {
		return ErrCorrupt
	}
	d.ctr++
	d.held = 0
	out := pt[:min(int64(len(pt)), d.keep)]
	var pad byte
	for _, b := range pt[len(out):] {
		pad |= b
	}
	if pad != 0 {
		return ErrCorrupt
	}
	if len(out) > 0 {
		if _, err := d.dst.Write(out); err != nil {
			return err
		}
		d.keep -= int64(len(out))
	}
	return nil
}

// Close checks that the whole ciphertext was written, every chunk
// opened: ErrCorrupt otherwise. Only then is the plaintext written to dst
// the attachment.
func (d *StreamDecrypter) Close() error {
	if d.closed {
		return d.err
	}
	d.closed = true
	if d.err == nil && (d.pos != d.total || d.ctr != d.chunks || d.keep != 0) {
		d.err = ErrCorrupt
	}
	return d.err
}

// Sealer is an attachment encrypter of either scheme.
type Sealer interface {
	io.WriteCloser
	// Digest is what the message carries to check the ciphertext: the
	// v1 HMAC tag, the v2 commitment.
	Digest() Digest
}

var (
	_ Sealer = (*Encrypter)(nil)
	_ Sealer = (*StreamEncrypter)(nil)
)

// NewSealer starts encrypting size bytes in scheme s to w under k, with
// iv as the v1 IV or the v2 salt (both 16 bytes): the same arguments and
// plaintext give the same ciphertext.
func NewSealer(s Scheme, w io.Writer, k Key, iv [IVSize]byte, size int64) (Sealer, error) {
	switch s {
	case V1:
		return NewEncrypterIV(w, k, iv, size)
	case V2:
		return NewStreamEncrypterSalt(w, k, iv, size)
	}
	return nil, ErrUnsupported
}

// NewOpener starts decrypting an attachment of size bytes in scheme s
// under k, checked by digest, to dst: a [Decrypter] or a
// [StreamDecrypter]. An unknown scheme is ErrUnsupported.
func NewOpener(s Scheme, dst io.Writer, k Key, size int64, digest Digest) (io.WriteCloser, error) {
	switch s {
	case V1:
		return NewDecrypter(dst, k, size, digest)
	case V2:
		return NewStreamDecrypter(dst, k, size, digest)
	}
	return nil, ErrUnsupported
}
