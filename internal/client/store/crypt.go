package store

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// At-rest encryption. Every secret column is sealed with XChaCha20-Poly1305
// under the data key, a random 32-byte key. The additional data names the
// table, the column and the row, so that a sealed value cannot be moved to
// another place (a session record of one peer under another, a message
// body into another message) without failing to open.
//
// The data key lives either in the key file (KeyFile, mode 0600, beside
// the database) or, once the user sets a passphrase, wrapped in the meta
// table under a key derived from the passphrase with Argon2id; the key
// file is then removed. Changing the passphrase rewraps the data key and
// re-encrypts nothing.

// KeyFile is the name of the key file in the home folder.
const KeyFile = "key"

const (
	dataKeySize = chacha20poly1305.KeySize
	nonceSize   = chacha20poly1305.NonceSizeX
	adPrefix    = "hush-store-v1\x00"
	keyCheck    = "hush data key check"
)

// Argon2id parameters for passphrases (RFC 9106's second recommended
// option, lighter on memory: t=3, 64 MiB).
var (
	argonTime    uint32 = 3
	argonMemory  uint32 = 64 * 1024
	argonThreads uint8  = 4
)

// ErrWrongKey means the passphrase or key file does not open this store.
var ErrWrongKey = errors.New("store: wrong passphrase or key file")

// ErrNeedPassphrase means the store is protected by a passphrase and none
// was given.
var ErrNeedPassphrase = errors.New("store: a passphrase is needed to open this store")

// sealer seals and opens values bound to their place.
type sealer struct {
	aead cipher.AEAD
	key  []byte // the data key, for rewrapping under a new passphrase
}

func newSealer(dk []byte) (*sealer, error) {
	a, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: a, key: dk}, nil
}

// ad builds the additional data: prefix, table, column and row, each
// length-prefixed so that no two places share one.
func ad(table, column, row string) []byte {
	b := make([]byte, 0, len(adPrefix)+len(table)+len(column)+len(row)+6)
	b = append(b, adPrefix...)
	for _, s := range []string{table, column, row} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

func (s *sealer) seal(pt []byte, table, column, row string) []byte {
	out := make([]byte, nonceSize, nonceSize+len(pt)+s.aead.Overhead())
	rand.Read(out)
	return s.aead.Seal(out, out[:nonceSize], pt, ad(table, column, row))
}

func (s *sealer) open(ct []byte, table, column, row string) ([]byte, error) {
	if len(ct) < nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("store: sealed %s.%s of %q is too short", table, column, row)
	}
	pt, err := s.aead.Open(nil, ct[:nonceSize], ct[nonceSize:], ad(table, column, row))
	if err != nil {
		return nil, fmt.Errorf("store: sealed %s.%s of %q does not open (damaged or moved)", table, column, row)
	}
	return pt, nil
}

func rowID(id int64) string { return strconv.FormatInt(id, 10) }

// readKeyFile reads the data key from the key file, refusing a file that
// others may read.
func readKeyFile(home string) ([]byte, error) {
	p := filepath.Join(home, KeyFile)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("store: key file %s is readable by others (mode %v); chmod 600 it", p, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(b) != dataKeySize {
		return nil, fmt.Errorf("store: key file %s has %d bytes, not %d", p, len(b), dataKeySize)
	}
	return b, nil
}

// writeKeyFile writes the data key, 0600, durably.
func writeKeyFile(home string, dk []byte) error {
	p := filepath.Join(home, KeyFile)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(dk); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(home)
}

// removeKeyFile overwrites the key file with zeros before removing it.
func removeKeyFile(home string) error {
	p := filepath.Join(home, KeyFile)
	if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
		f.Write(make([]byte, dataKeySize))
		f.Sync()
		f.Close()
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(home)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// wrapped is the data key sealed under a passphrase.
type wrapped struct {
	salt    []byte
	time    uint32
	memory  uint32
	threads uint8
	sealed  []byte
}

func passphraseKey(pass []byte, w *wrapped) []byte {
	return argon2.IDKey(pass, w.salt, w.time, w.memory, w.threads, dataKeySize)
}

func wrapKey(dk, pass []byte) (*wrapped, error) {
	w := &wrapped{salt: make([]byte, 16), time: argonTime, memory: argonMemory, threads: argonThreads}
	rand.Read(w.salt)
	s, err := newSealer(passphraseKey(pass, w))
	if err != nil {
		return nil, err
	}
	w.sealed = s.seal(dk, "meta", "data_key", "passphrase")
	return w, nil
}

func unwrapKey(w *wrapped, pass []byte) ([]byte, error) {
	s, err := newSealer(passphraseKey(pass, w))
	if err != nil {
		return nil, err
	}
	dk, err := s.open(w.sealed, "meta", "data_key", "passphrase")
	if err != nil {
		return nil, ErrWrongKey
	}
	return dk, nil
}

func (w *wrapped) marshal() []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint32(b, w.time)
	b = binary.BigEndian.AppendUint32(b, w.memory)
	b = append(b, w.threads, byte(len(w.salt)))
	b = append(b, w.salt...)
	return append(b, w.sealed...)
}

// Bounds on the stored Argon2id parameters. The store is not trusted to
// hold sane ones: zero passes or lanes make argon2 panic, and an absurd
// memory or pass count would exhaust memory or never end. The upper
// bounds leave room for stronger settings than today's (3 passes, 64 MiB,
// 4 lanes).
const (
	maxArgonTime    = 16
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonThreads = 16
	minSalt         = 16
)

// errBadKDF says the stored passphrase parameters are out of bounds.
var errBadKDF = errors.New("store: the passphrase settings stored in this home are invalid (damaged or tampered with); the store cannot be opened")

func parseWrapped(b []byte) (*wrapped, error) {
	if len(b) < 11 || b[0] != 1 || len(b) < 11+int(b[10]) {
		return nil, errors.New("store: malformed wrapped data key")
	}
	w := &wrapped{time: binary.BigEndian.Uint32(b[1:]), memory: binary.BigEndian.Uint32(b[5:]), threads: b[9]}
	n := int(b[10])
	w.salt = b[11 : 11+n]
	w.sealed = b[11+n:]
	switch {
	case w.time < 1 || w.time > maxArgonTime,
		w.threads < 1 || w.threads > maxArgonThreads,
		w.memory < 8*uint32(w.threads) || w.memory > maxArgonMemory,
		len(w.salt) < minSalt:
		return nil, fmt.Errorf("%w (Argon2id passes %d, memory %d KiB, lanes %d, salt %d bytes)",
			errBadKDF, w.time, w.memory, w.threads, len(w.salt))
	}
	return w, nil
}

// checkValue is what the meta key_check holds: a known text sealed under
// the data key, to tell a wrong key from a damaged store at once.
func checkKey(s *sealer, sealed []byte) error {
	pt, err := s.open(sealed, "meta", "key_check", "")
	if err != nil || subtle.ConstantTimeCompare(pt, []byte(keyCheck)) != 1 {
		return ErrWrongKey
	}
	return nil
}
