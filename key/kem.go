package key

import (
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem/kyber/kyber1024"
)

// Kyber1024 sizes (round-3 CRYSTALS-Kyber, libsignal rust/protocol/src/kem.rs).
// Serialized public keys and ciphertexts carry the type byte 0x08 in front.
const (
	KEMPublicSize     = 1 + kyber1024.PublicKeySize  // 1569
	KEMSecretSize     = 1 + kyber1024.PrivateKeySize // 3169
	KEMCiphertextSize = 1 + kyber1024.CiphertextSize // 1569
	KEMSharedSize     = kyber1024.SharedKeySize      // 32
)

var errKEM = errors.New("key: invalid KEM ciphertext")

// KEMPublic is a Kyber1024 public key. libsignal uses round-3 Kyber here, not
// FIPS 203 ML-KEM: the two differ in their key derivation, so crypto/mlkem
// cannot stand in for it.
type KEMPublic struct {
	raw [kyber1024.PublicKeySize]byte
}

// ParseKEMPublic reads a serialized Kyber1024 public key (0x08 || 1568 bytes).
func ParseKEMPublic(b []byte) (*KEMPublic, error) {
	if len(b) == 0 {
		return nil, errBadKeyLength
	}
	if b[0] != TypeKyber1024 {
		return nil, fmt.Errorf("%w 0x%02x", errBadKeyType, b[0])
	}
	if len(b) != KEMPublicSize {
		return nil, fmt.Errorf("%w: %d bytes for a Kyber1024 public key", errBadKeyLength, len(b))
	}
	k := new(KEMPublic)
	copy(k.raw[:], b[1:])
	return k, nil
}

// Bytes returns the serialized form, 0x08 || key. XEdDSA signatures on
// Kyber prekeys are made over these bytes.
func (k *KEMPublic) Bytes() []byte {
	return append([]byte{TypeKyber1024}, k.raw[:]...)
}

// Equal reports whether k and o are the same key.
func (k *KEMPublic) Equal(o *KEMPublic) bool {
	return k != nil && o != nil && k.raw == o.raw
}

// String returns a short form for logs.
func (k *KEMPublic) String() string { return fmt.Sprintf("kyber1024:%x", k.raw[:8]) }

// Encapsulate draws 32 random bytes from rand and returns the serialized
// ciphertext (0x08 || 1568 bytes) and the 32-byte shared secret.
func (k *KEMPublic) Encapsulate(rand io.Reader) (ct []byte, shared [KEMSharedSize]byte, err error) {
	seed := make([]byte, kyber1024.EncapsulationSeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, shared, fmt.Errorf("key: reading randomness: %w", err)
	}
	var pk kyber1024.PublicKey
	pk.Unpack(k.raw[:])
	ct = make([]byte, KEMCiphertextSize)
	ct[0] = TypeKyber1024
	pk.EncapsulateTo(ct[1:], shared[:], seed)
	return ct, shared, nil
}

// KEMSecret is a Kyber1024 secret key (3168 bytes in the round-3 layout).
type KEMSecret struct {
	_   [0]func()
	raw [kyber1024.PrivateKeySize]byte
}

// String never prints the key.
func (k *KEMSecret) String() string { return "kyber1024-secret(redacted)" }

// ParseKEMSecret reads a serialized secret key (0x08 || 3168 bytes).
func ParseKEMSecret(b []byte) (*KEMSecret, error) {
	if len(b) == 0 {
		return nil, errBadKeyLength
	}
	if b[0] != TypeKyber1024 {
		return nil, fmt.Errorf("%w 0x%02x", errBadKeyType, b[0])
	}
	if len(b) != KEMSecretSize {
		return nil, fmt.Errorf("%w: %d bytes for a Kyber1024 secret key", errBadKeyLength, len(b))
	}
	k := new(KEMSecret)
	copy(k.raw[:], b[1:])
	return k, nil
}

// Bytes returns the serialized secret key. It is secret.
func (k *KEMSecret) Bytes() []byte {
	return append([]byte{TypeKyber1024}, k.raw[:]...)
}

// Public returns the public key embedded in the secret key.
func (k *KEMSecret) Public() *KEMPublic {
	var sk kyber1024.PrivateKey
	sk.Unpack(k.raw[:])
	pk := new(KEMPublic)
	sk.Public().(*kyber1024.PublicKey).Pack(pk.raw[:])
	return pk
}

// Decapsulate recovers the shared secret from a serialized ciphertext. A
// ciphertext of the wrong type or length is an error; a wrong ciphertext of
// the right shape yields an unrelated secret (Kyber's implicit rejection).
func (k *KEMSecret) Decapsulate(ct []byte) ([KEMSharedSize]byte, error) {
	var shared [KEMSharedSize]byte
	if len(ct) != KEMCiphertextSize || ct[0] != TypeKyber1024 {
		return shared, errKEM
	}
	var sk kyber1024.PrivateKey
	sk.Unpack(k.raw[:])
	sk.DecapsulateTo(shared[:], ct[1:])
	return shared, nil
}

// KEMKeyPair is a Kyber1024 key pair.
type KEMKeyPair struct {
	Public *KEMPublic
	Secret *KEMSecret
}

// GenerateKEMKeyPair draws a new Kyber1024 key pair from rand.
func GenerateKEMKeyPair(rand io.Reader) (KEMKeyPair, error) {
	seed := make([]byte, kyber1024.KeySeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return KEMKeyPair{}, fmt.Errorf("key: reading randomness: %w", err)
	}
	pk, sk := kyber1024.NewKeyFromSeed(seed)
	kp := KEMKeyPair{Public: new(KEMPublic), Secret: new(KEMSecret)}
	pk.Pack(kp.Public.raw[:])
	sk.Pack(kp.Secret.raw[:])
	return kp, nil
}
