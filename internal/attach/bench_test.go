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
}
