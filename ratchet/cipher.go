package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// errBadCiphertext is deliberately vague: padding errors must not be told
// apart from other failures. (They cannot be reached without a valid MAC.)
var errBadCiphertext = errors.New("ratchet: bad ciphertext")

// Seal encrypts plaintext with AES-256-CBC and PKCS#7 padding, as
// libsignal's aes_256_cbc_encrypt.
func (mk *MessageKeys) Seal(plaintext []byte) []byte {
	block, err := aes.NewCipher(mk.CipherKey[:])
	if err != nil {
		panic("ratchet: internal error: " + err.Error())
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, len(plaintext)+pad)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, mk.IV[:]).CryptBlocks(out, out)
	return out
}

// Open decrypts and unpads. The ciphertext must be a non-empty multiple of
// the block size.
func (mk *MessageKeys) Open(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, errBadCiphertext
	}
	block, err := aes.NewCipher(mk.CipherKey[:])
	if err != nil {
		panic("ratchet: internal error: " + err.Error())
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, mk.IV[:]).CryptBlocks(out, ciphertext)
	// Check the PKCS#7 padding without branching on its bytes.
	pad := int(out[len(out)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, pad)
		match := subtle.ConstantTimeByteEq(out[len(out)-i], byte(pad))
		good &= subtle.ConstantTimeSelect(inPad, match, 1)
	}
	if good != 1 {
		return nil, errBadCiphertext
	}
	return out[:len(out)-pad], nil
}
