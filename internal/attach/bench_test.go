package attach

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"testing"
)

// The floor (issue 11): AES-256-CBC and HMAC-SHA256 over the same bytes,
// with the standard library, on one core, and nothing else.
const benchSize = 16 << 20

func BenchmarkEncrypt(b *testing.B) {
	k := NewKey()
	src := make([]byte, benchSize)
	buf := make([]byte, chunk)
	b.Run("impl=attach", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			e, _ := NewEncrypter(io.Discard, k, benchSize)
			r := bytes.NewReader(src)
			io.CopyBuffer(e, r, buf)
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		b.SetBytes(benchSize)
		blk, _ := aes.NewCipher(k[:32])
		iv := make([]byte, 16)
		out := make([]byte, chunk)
		for b.Loop() {
			cbc := cipher.NewCBCEncrypter(blk, iv)
			m := hmac.New(sha256.New, k[32:])
			for p := src; len(p) > 0; p = p[chunk:] {
				cbc.CryptBlocks(out, p[:chunk])
				m.Write(out)
			}
			m.Sum(nil)
		}
	})
	// Format v2, and its floor: AES-256-GCM over the same bytes in
	// chunks of ChunkSize, one core, nothing else.
	b.Run("impl=v2", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			e, _ := NewStreamEncrypter(io.Discard, k, benchSize)
			io.CopyBuffer(e, bytes.NewReader(src), buf)
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=v2floor", func(b *testing.B) {
		b.SetBytes(benchSize)
		g := gcmFloor(k)
		out := make([]byte, ChunkSize+TagSize)
		nonce := make([]byte, 12)
		for b.Loop() {
			for p := src; len(p) > 0; p = p[ChunkSize:] {
				g.Seal(out[:0], nonce, p[:ChunkSize], nil)
			}
		}
	})
}

func gcmFloor(k Key) cipher.AEAD {
	blk, _ := aes.NewCipher(k[:32])
	g, _ := cipher.NewGCM(blk)
	return g
}

func BenchmarkDecrypt(b *testing.B) {
	k := NewKey()
	var ct bytes.Buffer
	e, _ := NewEncrypter(&ct, k, benchSize)
	e.Write(make([]byte, benchSize))
	e.Close()
	d := e.Digest()
	buf := make([]byte, chunk)
	b.Run("impl=attach", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			dec, _ := NewDecrypter(io.Discard, k, benchSize, d)
			io.CopyBuffer(dec, bytes.NewReader(ct.Bytes()), buf)
			if err := dec.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=floor", func(b *testing.B) {
		b.SetBytes(benchSize)
		blk, _ := aes.NewCipher(k[:32])
		src := ct.Bytes()[16 : 16+benchSize]
		out := make([]byte, chunk)
		for b.Loop() {
			m := hmac.New(sha256.New, k[32:])
			m.Write(src)
			m.Sum(nil)
			cbc := cipher.NewCBCDecrypter(blk, ct.Bytes()[:16])
			for p := src; len(p) > 0; p = p[chunk:] {
				cbc.CryptBlocks(out, p[:chunk])
			}
		}
	})
	var ct2 bytes.Buffer
	e2, _ := NewStreamEncrypter(&ct2, k, benchSize)
	e2.Write(make([]byte, benchSize))
	e2.Close()
	d2 := e2.Digest()
	b.Run("impl=v2", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			dec, _ := NewStreamDecrypter(io.Discard, k, benchSize, d2)
			io.CopyBuffer(dec, bytes.NewReader(ct2.Bytes()), buf)
			if err := dec.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=v2floor", func(b *testing.B) {
		b.SetBytes(benchSize)
		g := gcmFloor(k)
		nonce := make([]byte, 12)
		// The chunks one after the other in one buffer, as the
		// ciphertext comes.
		var sealed []byte
		for p := make([]byte, benchSize); len(p) > 0; p = p[ChunkSize:] {
			sealed = g.Seal(sealed, nonce, p[:ChunkSize], nil)
		}
		out := make([]byte, ChunkSize)
		for b.Loop() {
			for c := sealed; len(c) > 0; c = c[ChunkSize+TagSize:] {
				if _, err := g.Open(out[:0], nonce, c[:ChunkSize+TagSize], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
