// Package braid is the split ("incremental") ML-KEM-768 that SPQR's ML-KEM
// braid runs (Rust crate spqr, src/incremental_mlkem768.rs, over libcrux-ml-kem
// mlkem768::incremental).
//
// An ML-KEM-768 encapsulation key ek = pk2 || rho (FIPS 203 ByteEncode12(t̂)
// followed by the matrix seed) is sent in two parts: the 64-byte header
// hdr = rho || SHA3-256(ek), and the 1152-byte vector pk2. Encapsulation is
// split the same way: Encaps1 needs only the header and yields ct1 (the
// compressed u, 960 bytes) and the shared secret; Encaps2 needs pk2 as well
// and yields ct2 (the compressed v, 128 bytes). ct1 || ct2 is an ordinary
// FIPS 203 ciphertext, so key generation and decapsulation are plain
// crypto/mlkem.
//
// Encaps1 and Encaps2 run K-PKE.Encrypt from github.com/cloudflare/circl
// (pke/kyber/kyber768) with the coins r of ML-KEM.Encaps; u depends only on
// rho and r, and v additionally on t̂. No lattice arithmetic is written here.
package braid

import (
	"crypto/mlkem"
	"crypto/sha3"
	"crypto/subtle"
	"errors"

	"github.com/cloudflare/circl/pke/kyber/kyber768"
)

// Sizes of the objects (src/incremental_mlkem768.rs and spqr.md §2.7).
const (
	SeedSize     = mlkem.SeedSize // 64: d || z
	HeaderSize   = 64             // rho || H(ek)
	EKSize       = 1152           // ByteEncode12(t̂)
	Ct1Size      = 960            // ByteEncode10(Compress10(u))
	Ct2Size      = 128            // ByteEncode4(Compress4(v))
	MSize        = 32             // encapsulation randomness m
	SecretSize   = mlkem.SharedKeySize
	fullEKSize   = EKSize + 32
	fullCtSize   = Ct1Size + Ct2Size
	rhoSize      = 32
	ekHashOffset = 32
)

// ErrInvalidEK means an encapsulation key vector failed the FIPS 203
// modulus check or does not match its header.
var ErrInvalidEK = errors.New("braid: encapsulation key does not match header")

// KeyGen derives the key pair from a 64-byte seed (libcrux
// KeyPairCompressedBytes::from_seed = ML-KEM.KeyGen_internal(d, z)) and
// returns the header and the ek vector.
func KeyGen(seed []byte) (hdr [HeaderSize]byte, ek [EKSize]byte, err error) {
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return hdr, ek, err
	}
	full := dk.EncapsulationKey().Bytes()
	copy(ek[:], full[:EKSize])
	copy(hdr[:rhoSize], full[EKSize:])
	h := sha3.Sum256(full)
	copy(hdr[ekHashOffset:], h[:])
	return hdr, ek, nil
}

// ValidateEK reports whether ek completes hdr (libcrux validate_pk_bytes):
// pk2 || rho passes the FIPS 203 modulus check and SHA3-256(pk2 || rho)
// equals the hash in the header.
func ValidateEK(hdr *[HeaderSize]byte, ek *[EKSize]byte) bool {
	full := joinEK(hdr, ek)
	if _, err := mlkem.NewEncapsulationKey768(full[:]); err != nil {
		return false
	}
	h := sha3.Sum256(full[:])
	return subtle.ConstantTimeCompare(h[:], hdr[ekHashOffset:]) == 1
}

func joinEK(hdr *[HeaderSize]byte, ek *[EKSize]byte) [fullEKSize]byte {
	var full [fullEKSize]byte
	copy(full[:EKSize], ek[:])
	copy(full[EKSize:], hdr[:rhoSize])
	return full
}

// coins returns (K, r) = G(m || H(ek)) = SHA3-512(m || hdr[32:64]), FIPS 203
// ML-KEM.Encaps_internal line 1.
func coins(hdr *[HeaderSize]byte, m *[MSize]byte) (k, r [32]byte) {
	g := sha3.New512()
	g.Write(m[:])
	g.Write(hdr[ekHashOffset:])
	var out [64]byte
	g.Sum(out[:0])
	copy(k[:], out[:32])
	copy(r[:], out[32:])
	return k, r
}

// Encaps1 runs the header half of ML-KEM.Encaps with randomness m
// (libcrux incremental::encapsulate1): it returns ct1 and the shared secret.
// The matrix comes from rho alone, so t̂ is set to zero for this call and the
// (meaningless) v half of the ciphertext is discarded.
func Encaps1(hdr *[HeaderSize]byte, m *[MSize]byte) (ct1 [Ct1Size]byte, secret [SecretSize]byte) {
	k, r := coins(hdr, m)
	var fake [fullEKSize]byte
	copy(fake[EKSize:], hdr[:rhoSize])
	var pk kyber768.PublicKey
	pk.Unpack(fake[:])
	var ct [fullCtSize]byte
	pk.EncryptTo(ct[:], m[:], r[:])
	copy(ct1[:], ct[:Ct1Size])
	return ct1, k
}

// Encaps2 runs the second half of ML-KEM.Encaps (libcrux
// incremental::encapsulate2): with the same m and the now complete ek it
// returns ct2. It fails only if ek does not pass the modulus check.
func Encaps2(hdr *[HeaderSize]byte, ek *[EKSize]byte, m *[MSize]byte) (ct2 [Ct2Size]byte, err error) {
	_, r := coins(hdr, m)
	full := joinEK(hdr, ek)
	var pk kyber768.PublicKey
	if err := pk.UnpackMLKEM(full[:]); err != nil {
		return ct2, ErrInvalidEK
	}
	var ct [fullCtSize]byte
	pk.EncryptTo(ct[:], m[:], r[:])
	copy(ct2[:], ct[Ct1Size:])
	return ct2, nil
}

// Decaps is ML-KEM.Decaps (with implicit rejection) for the key derived from
// seed, on the ciphertext ct1 || ct2.
func Decaps(seed []byte, ct1 *[Ct1Size]byte, ct2 *[Ct2Size]byte) ([SecretSize]byte, error) {
	var out [SecretSize]byte
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return out, err
	}
	var ct [fullCtSize]byte
	copy(ct[:Ct1Size], ct1[:])
	copy(ct[Ct1Size:], ct2[:])
	ss, err := dk.Decapsulate(ct[:])
	if err != nil {
		return out, err
	}
	copy(out[:], ss)
	return out, nil
}
