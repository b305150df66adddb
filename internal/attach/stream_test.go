package attach

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

var updateVectors = flag.Bool("update-vectors", false, "write testdata/v2-vectors.json (once: the vectors must never change)")

// encryptV2 encrypts pt in format v2 under k and salt (sealOdd).
func encryptV2(t testing.TB, k Key, salt [SaltSize]byte, pt []byte) ([]byte, Digest) {
	t.Helper()
	return sealOdd(t, V2, k, salt, pt)
}

// decryptV2 decrypts a format v2 attachment (openOdd).
func decryptV2(ct []byte, k Key, size int64, d Digest) ([]byte, error) {
	return openOdd(V2, ct, k, size, d)
}

func randomSalt() (s [SaltSize]byte) {
	copy(s[:], random(SaltSize))
	return s
}

func TestV2RoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 541, 4096, ChunkSize - 100, ChunkSize, ChunkSize + 1, 3*ChunkSize - 60, 3 * ChunkSize, 1<<20 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			k, pt := NewKey(), random(n)
			ct, d := encryptV2(t, k, randomSalt(), pt)
			if int64(len(ct)) != V2.CiphertextSize(int64(n)) {
				t.Fatalf("ciphertext %d bytes, CiphertextSize says %d", len(ct), V2.CiphertextSize(int64(n)))
			}
			if !bytes.Equal(ct[SaltSize:HeaderSize], d[:]) {
				t.Fatal("the digest is not the header's commitment")
			}
			got, err := decryptV2(ct, k, int64(n), d)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decrypt: %v (%d bytes back of %d)", err, len(got), n)
			}
		})
	}
}

// The layout: the ciphertext is a size bucket (within 5%, like v1), the
// padded plaintext holds the file, the last chunk is not empty, and the
// largest file fits the server's largest blob (api.MaxBlobBytes, which
// was sized for v1).
func TestV2Layout(t *testing.T) {
	for n := int64(0); n < 1<<24; n += 1 + n/53 {
		total, padded, chunks := V2Layout(n)
		switch {
		case padded < n, chunks < 1, padded <= (chunks-1)*ChunkSize, padded > chunks*ChunkSize,
			total != HeaderSize+padded+TagSize*chunks:
			t.Fatalf("V2Layout(%d) = %d, %d, %d", n, total, padded, chunks)
		case n > 541 && float64(total) > 1.0501*float64(n+HeaderSize+TagSize*ceilDiv(n, ChunkSize)):
			t.Fatalf("V2Layout(%d): %d bytes, more than 5%% over", n, total)
		}
	}
	if total, _, _ := V2Layout(100 << 20); total > 107_335_792 {
		t.Fatalf("a 100 MiB file is %d bytes in v2: over the largest blob", total)
	}
}

// The format, checked with the primitives directly: HKDF-SHA256 from the
// key and the salt, AES-256-GCM per chunk with counter nonces and the
// last-chunk flag, zero padding.
func TestV2Format(t *testing.T) {
	k, pt, salt := NewKey(), random(2*ChunkSize+5000), randomSalt()
	ct, d := encryptV2(t, k, salt, pt)
	pk, _ := hkdf.Key(sha256.New, k[:], salt[:], "hush attachment v2 payload key", 32)
	commit, _ := hkdf.Key(sha256.New, k[:], salt[:], "hush attachment v2 key commitment", 32)
	if !bytes.Equal(ct[:SaltSize], salt[:]) || !bytes.Equal(ct[SaltSize:HeaderSize], commit) || !bytes.Equal(d[:], commit) {
		t.Fatal("header is not salt || HKDF commitment")
	}
	b, _ := aes.NewCipher(pk)
	g, _ := cipher.NewGCM(b)
	var plain []byte
	body := ct[HeaderSize:]
	for i := 0; len(body) > 0; i++ {
		m := min(len(body), ChunkSize+TagSize)
		nonce := make([]byte, 12)
		nonce[10] = byte(i)
		if m == len(body) {
			nonce[11] = 1
		}
		p, err := g.Open(nil, nonce, body[:m], nil)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		plain, body = append(plain, p...), body[m:]
	}
	_, padded, _ := V2Layout(int64(len(pt)))
	if want := append(pt, make([]byte, padded-int64(len(pt)))...); !bytes.Equal(plain, want) {
		t.Fatal("plaintext is not the file zero-padded to the layout's size")
	}
}

// vector is a known answer of format v2: deterministic given the key,
// the salt and the plaintext (byte i is i*7+3 mod 256).
type vector struct {
	Name       string `json:"name"`
	Key        string `json:"key"`
	Salt       string `json:"salt"`
	Size       int64  `json:"size"`
	Digest     string `json:"digest"`
	CTSHA256   string `json:"ciphertext_sha256"`
	Ciphertext string `json:"ciphertext,omitempty"` // hex, for the small ones
}

func vectorPlaintext(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func (v vector) params(t testing.TB) (Key, [SaltSize]byte) {
	var k Key
	var s [SaltSize]byte
	kb, err1 := hex.DecodeString(v.Key)
	sb, err2 := hex.DecodeString(v.Salt)
	if err1 != nil || err2 != nil || len(kb) != KeySize || len(sb) != SaltSize {
		t.Fatalf("vector %s: bad key or salt", v.Name)
	}
	copy(k[:], kb)
	copy(s[:], sb)
	return k, s
}

const vectorsFile = "testdata/v2-vectors.json"

func loadVectors(t testing.TB) []vector {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestV2Vectors checks the committed known answers (made once with
// -update-vectors from fixed keys and salts: a change of the format
// breaks them).
func TestV2Vectors(t *testing.T) {
	if *updateVectors {
		var vs []vector
		for i, n := range []int64{0, 1, 600, 3 * ChunkSize, 200_000} {
			var k Key
			var s [SaltSize]byte
			for j := range k {
				k[j] = byte(i*64 + j)
			}
			for j := range s {
				s[j] = byte(0xa0 + i*16 + j)
			}
			ct, d := encryptV2(t, k, s, vectorPlaintext(n))
			sum := sha256.Sum256(ct)
			v := vector{Name: fmt.Sprintf("%d bytes", n), Key: hex.EncodeToString(k[:]), Salt: hex.EncodeToString(s[:]),
				Size: n, Digest: hex.EncodeToString(d[:]), CTSHA256: hex.EncodeToString(sum[:])}
			if len(ct) <= 2048 {
				v.Ciphertext = hex.EncodeToString(ct)
			}
			vs = append(vs, v)
		}
		b, _ := json.MarshalIndent(vs, "", "  ")
		os.MkdirAll(filepath.Dir(vectorsFile), 0o755)
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range loadVectors(t) {
		k, s := v.params(t)
		pt := vectorPlaintext(v.Size)
		ct, d := encryptV2(t, k, s, pt)
		sum := sha256.Sum256(ct)
		if hex.EncodeToString(d[:]) != v.Digest || hex.EncodeToString(sum[:]) != v.CTSHA256 ||
			v.Ciphertext != "" && hex.EncodeToString(ct) != v.Ciphertext {
			t.Errorf("vector %s: another ciphertext", v.Name)
		}
		if got, err := decryptV2(ct, k, v.Size, d); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("vector %s: decrypt: %v", v.Name, err)
		}
	}
}

// Every tampering fails with ErrCorrupt, and nothing of an altered
// chunk, nor anything after the header of a wrong key, reaches dst.
func TestV2Tampering(t *testing.T) {
	const n = 3*ChunkSize + 1000 // four chunks
	k, pt, salt := NewKey(), random(n), randomSalt()
	ct, d := encryptV2(t, k, salt, pt)
	_, _, chunks := V2Layout(n)
	if chunks != 4 {
		t.Fatalf("%d chunks", chunks)
	}
	cl := ChunkSize + TagSize
	chunk := func(i int) []byte { // chunk i of ct (the last runs to the end)
		end := min(len(ct), HeaderSize+(i+1)*cl)
		return ct[HeaderSize+i*cl : end]
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	fail := func(what string, ct []byte, k Key, size int64, d Digest) {
		t.Helper()
		var out bytes.Buffer
		dec, err := NewStreamDecrypter(&out, k, size, d)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := dec.Write(ct)
		cerr := dec.Close()
		if !errors.Is(cerr, ErrCorrupt) || werr != nil && !errors.Is(werr, ErrCorrupt) {
			t.Fatalf("%s: write %v, close %v", what, werr, cerr)
		}
	}
	// A flipped byte in the header, and at the start, middle and end
	// (tag) of each chunk.
	for _, at := range []int{0, SaltSize - 1, SaltSize, HeaderSize - 1} {
		b := bytes.Clone(ct)
		b[at] ^= 1
		fail(fmt.Sprintf("header byte %d", at), b, k, n, d)
	}
	for i := range int(chunks) {
		start, end := HeaderSize+i*cl, min(len(ct), HeaderSize+(i+1)*cl)
		for _, at := range []int{start, (start + end) / 2, end - 1} {
			b := bytes.Clone(ct)
			b[at] ^= 0x80
			// Only the chunks before the altered one may reach dst.
			var out bytes.Buffer
			dec, _ := NewStreamDecrypter(&out, k, n, d)
			dec.Write(b)
			if err := dec.Close(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("chunk %d byte %d: %v", i, at, err)
			}
			if out.Len() > i*ChunkSize {
				t.Fatalf("chunk %d altered: %d bytes of plaintext released", i, out.Len())
			}
		}
	}
	hdr := ct[:HeaderSize]
	fail("truncated at each chunk boundary", ct[:HeaderSize+cl], k, n, d)
	fail("truncated after three chunks", ct[:HeaderSize+3*cl], k, n, d)
	fail("header only", hdr, k, n, d)
	fail("truncated by one byte", ct[:len(ct)-1], k, n, d)
	fail("chunks 0 and 1 swapped", cat(hdr, chunk(1), chunk(0), chunk(2), chunk(3)), k, n, d)
	fail("chunk 1 twice", cat(hdr, chunk(0), chunk(1), chunk(1), chunk(3)), k, n, d)
	fail("an extra chunk", cat(ct, chunk(1)), k, n, d)
	fail("an extra byte", cat(ct, []byte{0}), k, n, d)
	// The last chunk moved earlier: its flag does not match the counter.
	last := chunk(3)
	fail("the last chunk first", cat(hdr, last, chunk(1), chunk(2), chunk(0)), k, n, d)
	bad := NewKey()
	fail("wrong key", ct, bad, n, d)
	var d2 Digest
	copy(d2[:], d[:])
	d2[0] ^= 1
	fail("wrong digest", ct, k, n, d2)
	// A wrong commitment in the header, with the digest to match: the
	// derived commitment still refuses it.
	b := bytes.Clone(ct)
	b[SaltSize] ^= 1
	var d3 Digest
	copy(d3[:], b[SaltSize:HeaderSize])
	fail("wrong commitment", b, k, n, d3)
	// Another key's header (a commitment that is right for that key)
	// before this key's chunks.
	ct2, d4 := encryptV2(t, bad, salt, pt)
	fail("another key's header", cat(ct2[:HeaderSize], ct[HeaderSize:]), k, n, d4)
	fail("another key's header and digest, this key", cat(ct2[:HeaderSize], ct[HeaderSize:]), k, n, d4)
	fail("wrong size", ct, k, n-1, d)
	fail("wrong size, one chunk less", ct, k, 2*ChunkSize, d)
	// A wrong key fails at the header: no chunk is opened.
	var out bytes.Buffer
	dec, _ := NewStreamDecrypter(&out, bad, n, d)
	if _, err := dec.Write(ct[:HeaderSize]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong key: the header passed (%v)", err)
	}
	dec.Close()
}

// Non-zero padding, sealed properly by a sender who knows the key, is
// refused: one ciphertext, one file.
func TestV2Padding(t *testing.T) {
	k, salt := NewKey(), randomSalt()
	_, padded, _ := V2Layout(10)
	// The plaintext is 10 bytes and the padding, one of which is not zero.
	full := make([]byte, padded)
	full[20] = 1
	ct, d := encryptV2(t, k, salt, full)
	if _, err := decryptV2(ct, k, 10, d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("non-zero padding: %v", err)
	}
	// Zero padding passes.
	full[20] = 0
	ct, d = encryptV2(t, k, salt, full)
	if _, err := decryptV2(ct, k, 10, d); err != nil {
		t.Fatal(err)
	}
}

func TestV2EncrypterSizes(t *testing.T) {
	k := NewKey()
	e, _ := NewStreamEncrypter(io.Discard, k, 10)
	if _, err := e.Write(make([]byte, 11)); err == nil {
		t.Fatal("wrote past the announced size")
	}
	e.Write(make([]byte, 9))
	if err := e.Close(); err == nil {
		t.Fatal("closed short of the announced size")
	}
	if _, err := NewStreamEncrypter(io.Discard, k, -1); err == nil {
		t.Fatal("negative size")
	}
	if _, err := NewOpener(Scheme(3), io.Discard, k, 1, Digest{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("scheme 3: %v", err)
	}
}

// Memory stays flat: encrypting and decrypting 64 MiB allocates one
// chunk's buffer each, not the file.
func TestV2StreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	const size = 64 << 20
	k := NewKey()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var salt [SaltSize]byte
	_, commit, _ := streamKeys(k, salt[:])
	dec, _ := NewStreamDecrypter(io.Discard, k, size, commit)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(dec, pr)
		done <- err
	}()
	e, err := NewStreamEncrypterSalt(pw, k, salt, size)
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
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 4<<20 {
		t.Fatalf("encrypting and decrypting 64 MiB allocated %d bytes", a)
	}
}

// FuzzDecryptV2: any ciphertext and size under a vector's key either
// fails with ErrCorrupt or decrypts, and then it is exactly what the
// encrypter makes of that plaintext under the header's salt (one
// ciphertext, one plaintext). Seeded from the known answers.
func FuzzDecryptV2(f *testing.F) {
	vs := loadVectors(f)
	k, _ := vs[0].params(f)
	for _, v := range vs {
		vk, s := v.params(f)
		if vk != k {
			// The fuzz key is the first vector's: re-encrypt the
			// vector's plaintext under it.
			ct, _ := encryptV2(f, k, s, vectorPlaintext(v.Size))
			f.Add(ct, v.Size)
			continue
		}
		ct, _ := hex.DecodeString(v.Ciphertext)
		f.Add(ct, v.Size)
	}
	f.Fuzz(func(t *testing.T, ct []byte, size int64) {
		if size > 1<<20 {
			return
		}
		var d Digest
		if len(ct) >= HeaderSize {
			copy(d[:], ct[SaltSize:HeaderSize])
		}
		got, err := decryptV2(ct, k, size, d)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v", err)
			}
			return
		}
		var salt [SaltSize]byte
		copy(salt[:], ct)
		if again, _ := encryptV2(t, k, salt, got); !bytes.Equal(again, ct) {
			t.Fatal("a ciphertext that decrypts is not the one its plaintext encrypts to")
		}
	})
}
