package attach

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// writeOdd writes p to w in writes of odd sizes, to cross block and
// chunk boundaries, and stops at the first error.
func writeOdd(w io.Writer, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), 1+len(p)%70001)
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// sealOdd encrypts pt in scheme s under k and iv (the v1 IV, the v2
// salt), in writes of odd sizes.
func sealOdd(t testing.TB, s Scheme, k Key, iv [IVSize]byte, pt []byte) ([]byte, Digest) {
	t.Helper()
	var out bytes.Buffer
	e, err := NewSealer(s, &out, k, iv, int64(len(pt)))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOdd(e, pt); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), e.Digest()
}

// openOdd streams ct through scheme s's decrypter in writes of odd sizes
// and returns the plaintext, or nothing and the error of Write or Close.
func openOdd(s Scheme, ct []byte, k Key, size int64, d Digest) ([]byte, error) {
	var out bytes.Buffer
	dec, err := NewOpener(s, &out, k, size, d)
	if err != nil {
		return nil, err
	}
	err = writeOdd(dec, ct)
	if cerr := dec.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// encrypt encrypts pt in format v1 under k and a random IV.
func encrypt(t testing.TB, k Key, pt []byte) ([]byte, Digest) {
	t.Helper()
	return sealOdd(t, V1, k, [IVSize]byte(random(IVSize)), pt)
}

// decrypt decrypts a format v1 attachment (openOdd).
func decrypt(ct []byte, k Key, size int64, d Digest) ([]byte, error) {
	return openOdd(V1, ct, k, size, d)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 540, 541, 542, 4096, 65535, 65536, 65537, 100_000, 1<<20 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			k, pt := NewKey(), random(n)
			ct, d := encrypt(t, k, pt)
			if int64(len(ct)) != CiphertextSize(int64(n)) {
				t.Fatalf("ciphertext %d bytes, CiphertextSize says %d", len(ct), CiphertextSize(int64(n)))
			}
			if !bytes.Equal(ct[len(ct)-DigestSize:], d[:]) {
				t.Fatal("the digest is not the tag at the end")
			}
			got, err := decrypt(ct, k, int64(n), d)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decrypt: %v (%d bytes back of %d)", err, len(got), n)
			}
		})
	}
}

// The format is Signal's: IV, AES-256-CBC with PKCS#7 over the zero-padded
// plaintext, HMAC-SHA256 over IV and ciphertext; checked here with the
// primitives directly.
func TestFormat(t *testing.T) {
	k, pt := NewKey(), []byte("a photo of a cat")
	ct, _ := encrypt(t, k, pt)
	iv, body, tag := ct[:16], ct[16:len(ct)-32], ct[len(ct)-32:]
	m := hmac.New(sha256.New, k[32:])
	m.Write(ct[:len(ct)-32])
	if !hmac.Equal(m.Sum(nil), tag) {
		t.Fatal("tag is not HMAC-SHA256(mac key, IV || ciphertext)")
	}
	b, _ := aes.NewCipher(k[:32])
	plain := make([]byte, len(body))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(plain, body)
	pad := int(plain[len(plain)-1])
	want := append(pt, make([]byte, PaddedSize(int64(len(pt)))-int64(len(pt)))...)
	if pad < 1 || pad > 16 || !bytes.Equal(plain[:len(plain)-pad], want) {
		t.Fatal("plaintext is not zero-padded to PaddedSize, then PKCS#7")
	}
}

func TestPaddedSize(t *testing.T) {
	prev := int64(0)
	for n := int64(0); n < 1<<21; n += 1 + n/97 {
		p := PaddedSize(n)
		if p < n || p < 541 || p < prev {
			t.Fatalf("PaddedSize(%d) = %d (previous %d)", n, p, prev)
		}
		if n > 541 && float64(p) > 1.0501*float64(n) {
			t.Fatalf("PaddedSize(%d) = %d: more than 5%% over", n, p)
		}
		prev = p
	}
}

// Every altered, truncated or extended ciphertext, and every wrong key,
// digest or size, fails with ErrCorrupt.
func TestTampering(t *testing.T) {
	k, pt := NewKey(), random(1000)
	ct, d := encrypt(t, k, pt)
	fail := func(what string, ct []byte, k Key, size int64, d Digest) {
		t.Helper()
		if _, err := decrypt(ct, k, size, d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: err %v", what, err)
		}
	}
	for i := range ct {
		for _, bit := range []byte{1, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= bit
			fail(fmt.Sprintf("byte %d ^ %#x", i, bit), bad, k, 1000, d)
		}
	}
	fail("truncated", ct[:len(ct)-1], k, 1000, d)
	fail("a block short", ct[:len(ct)-16], k, 1000, d)
	fail("extended", append(bytes.Clone(ct), 0), k, 1000, d)
	fail("empty", nil, k, 1000, d)
	// A wrong MAC key fails. (A wrong AES key under the right MAC key
	// cannot be told from a sender who encrypted noise: the tag covers the
	// ciphertext, and the key and digest come together from the sender's
	// authenticated message. It decrypts to noise, or fails on the
	// padding 15 times in 16: not a property to test.)
	other := k
	other[40] ^= 1
	fail("wrong MAC key", ct, other, 1000, d)
	bad := d
	bad[5] ^= 1
	fail("wrong digest", ct, k, 1000, bad)
	// A size in another bucket does not fit the ciphertext. (Within a
	// bucket the size is not in the ciphertext: it is authenticated by
	// the end-to-end message that carries it with the key and digest.)
	fail("size of the next bucket", ct, k, PaddedSize(1000)+1, d)
	fail("size of the bucket below", ct, k, 500, d)
	fail("negative size", ct, k, -1, d)

	// A sender who holds the key and writes bad PKCS#7 padding (the tag
	// made to match) gets ErrCorrupt too.
	b, _ := aes.NewCipher(k[:32])
	body := make([]byte, len(ct)-16-32)
	cipher.NewCBCDecrypter(b, ct[:16]).CryptBlocks(body, ct[16:len(ct)-32])
	body[len(body)-1] = 17
	cipher.NewCBCEncrypter(b, ct[:16]).CryptBlocks(body, body)
	forged := append(append(bytes.Clone(ct[:16]), body...), make([]byte, 32)...)
	m := hmac.New(sha256.New, k[32:])
	m.Write(forged[:len(forged)-32])
	copy(forged[len(forged)-32:], m.Sum(nil))
	var fd Digest
	copy(fd[:], forged[len(forged)-32:])
	fail("bad padding under a good tag", forged, k, 1000, fd)
}

func TestEncrypterSizes(t *testing.T) {
	k := NewKey()
	e, err := NewEncrypter(io.Discard, k, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Write(make([]byte, 11)); err == nil {
		t.Fatal("wrote more than announced")
	}
	if _, err := e.Write(make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err == nil || !strings.Contains(err.Error(), "9 bytes written") {
		t.Fatalf("closed short: %v", err)
	}
	if _, err := NewEncrypter(io.Discard, k, -1); err == nil {
		t.Fatal("negative size accepted")
	}
	if s := fmt.Sprintf("%v %s %#v", k, k, k); strings.Contains(s, fmt.Sprintf("%x", k[:4])) {
		t.Fatalf("a key prints its bytes: %s", s)
	}
}

// Memory stays flat: encrypting and decrypting 64 MiB allocates a few
// buffers, not the file.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	const size = 64 << 20
	k := NewKey()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	e, err := NewEncrypter(io.Discard, k, size)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for range size / len(buf) {
		if _, err := e.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 4<<20 {
		t.Fatalf("encrypting 64 MiB allocated %d bytes", a)
	}
}

func FuzzDecrypt(f *testing.F) {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	for _, n := range []int{0, 5, 600} {
		var out bytes.Buffer
		e, _ := NewEncrypter(&out, k, int64(n))
		e.Write(make([]byte, n))
		e.Close()
		f.Add(out.Bytes(), int64(n))
	}
	f.Fuzz(func(t *testing.T, ct []byte, size int64) {
		var d Digest
		if len(ct) >= DigestSize {
			copy(d[:], ct[len(ct)-DigestSize:])
		}
		got, err := decrypt(ct, k, size, d)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v", err)
			}
			return
		}
		if int64(len(got)) != size {
			t.Fatalf("%d bytes for size %d", len(got), size)
		}
	})
}

// TestEncrypterIV: the same key, IV and plaintext give the same bytes
// (what resuming an upload relies on), another IV other bytes, and both
// decrypt.
func TestEncrypterIV(t *testing.T) {
	k := NewKey()
	pt := make([]byte, 200_000)
	rand.Read(pt)
	enc := func(iv [IVSize]byte) ([]byte, Digest) {
		var out bytes.Buffer
		e, err := NewEncrypterIV(&out, k, iv, int64(len(pt)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Write(pt); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes(), e.Digest()
	}
	iv1, iv2 := [IVSize]byte{1}, [IVSize]byte{2}
	a, da := enc(iv1)
	b, db := enc(iv1)
	c, dc := enc(iv2)
	if !bytes.Equal(a, b) || da != db || !bytes.HasPrefix(a, iv1[:]) {
		t.Fatal("the same key and IV gave other bytes")
	}
	if bytes.Equal(a[IVSize:], c[IVSize:]) || da == dc {
		t.Fatal("another IV gave the same ciphertext")
	}
	for _, x := range []struct {
		ct []byte
		d  Digest
	}{{a, da}, {c, dc}} {
		if got, err := decrypt(x.ct, k, int64(len(pt)), x.d); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("decrypt: %v", err)
		}
	}
}

// A large attachment, whose MAC runs on a goroutine of its own: a byte
// flipped anywhere, or one missing, fails as for a small one.
func TestTamperingLarge(t *testing.T) {
	k, pt := NewKey(), random(3<<20+5)
	ct, d := encrypt(t, k, pt)
	for _, i := range []int{0, 20, len(ct) / 2, len(ct) - 40, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := decrypt(bad, k, int64(len(pt)), d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := decrypt(ct[:len(ct)-1], k, int64(len(pt)), d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
}

// failAfter fails every write once n bytes were written.
type failAfter struct{ n int }

var errFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		f.n = 0
		return 0, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

// A BackgroundWriter's writer that fails: a later Write or Close says
// so, and the bytes written before it arrive in order.
func TestBackgroundWriter(t *testing.T) {
	src := random(5<<20 + 7)
	var out bytes.Buffer
	b := NewBackgroundWriter(&out, 64<<10, 3)
	for p := src; len(p) > 0; {
		n := min(len(p), 1+len(p)%100003)
		if _, err := b.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := b.Close(); err != nil || !bytes.Equal(out.Bytes(), src) {
		t.Fatalf("close: %v, %d bytes of %d, equal %v", err, out.Len(), len(src), bytes.Equal(out.Bytes(), src))
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("a write after Close succeeded")
	}

	b = NewBackgroundWriter(&failAfter{n: 100 << 10}, 64<<10, 2)
	var werr error
	for range 100 {
		if _, werr = b.Write(make([]byte, 32<<10)); werr != nil {
			break
		}
	}
	if err := b.Close(); !errors.Is(err, errFull) || (werr != nil && !errors.Is(werr, errFull)) {
		t.Fatalf("close: %v, write: %v", err, werr)
	}
}
