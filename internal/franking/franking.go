// Package franking is hush's message franking (docs/franking.md): the
// commitment a sender makes to a message's content, the reporting tag the
// server binds to it, and the server's keyring of tag keys.
//
// It follows Messenger's secret conversations (spec/signal-digest.md
// section 11.3) and the "commit-then-encrypt" scheme that Grubbs, Lu and
// Ristenpart prove secure (CRYPTO 2017, eprint 2017/664):
//
//   - the sender draws a fresh 32-byte franking key K per message, puts it
//     in the content (field 8, franking_key) and sends
//     commitment = HMAC-SHA256(K, P) beside the ciphertext, where P is the
//     whole content plaintext as encrypted, franking key field included
//     ([Commit]);
//   - the server answers with tag = HMAC-SHA256(K_server, "hush franking
//     tag v1" || commitment || sender || recipient || timestamp) ([Tag]),
//     delivered with the message;
//   - the recipient decrypts, finds K in P, and drops the message unless
//     HMAC-SHA256(K, P) equals the commitment it was delivered with
//     ([Verify], constant time);
//   - a report opens (P, K); the server recomputes both HMACs.
//
// Both sides of it (client and server) import this package; it uses
// crypto/hmac and crypto/sha256 only.
package franking

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Sizes, in bytes.
const (
	KeySize        = 32 // a message's franking key
	CommitmentSize = 32 // api.FrankingCommitmentSize
	TagSize        = 32 // api.FrankingTagSize
	ServerKeySize  = 32 // a server tag key
)

// tagLabel separates reporting tags from any other HMAC under the same key.
const tagLabel = "hush franking tag v1"

// NewKey draws a fresh franking key.
func NewKey() [KeySize]byte {
	var k [KeySize]byte
	rand.Read(k[:])
	return k
}

// Commit returns HMAC-SHA256(key, content): the commitment to the content
// plaintext under its franking key. The key must be KeySize bytes: HMAC
// pads shorter keys with zeros, which would let two keys commit alike.
func Commit(key, content []byte) [CommitmentSize]byte {
	if len(key) != KeySize {
		panic("franking: internal error: key of the wrong size")
	}
	h := hmac.New(sha256.New, key)
	h.Write(content)
	var c [CommitmentSize]byte
	h.Sum(c[:0])
	return c
}

// Verify reports whether commitment is the commitment to content under
// key, in constant time. A key or commitment of the wrong size does not
// verify.
func Verify(key, content, commitment []byte) bool {
	if len(key) != KeySize || len(commitment) != CommitmentSize {
		return false
	}
	c := Commit(key, content)
	return hmac.Equal(c[:], commitment)
}

// Context is what a reporting tag binds besides the commitment: who sent
// the message from which device, to which device of whom, and when the
// server accepted it.
type Context struct {
	Sender          string // username
	SenderDevice    uint32
	Recipient       string // username
	RecipientDevice uint32
	Timestamp       int64 // the server's, Unix milliseconds
}

// ErrContext refuses a Context that cannot be encoded unambiguously.
var ErrContext = errors.New("franking: username too long for a tag")

// tagInput is the exact input of the tag's HMAC (docs/franking.md):
//
//	"hush franking tag v1" || commitment (32) ||
//	u8 len || sender || u32 sender device ||
//	u8 len || recipient || u32 recipient device ||
//	u64 timestamp, all integers big-endian.
func tagInput(buf []byte, commitment []byte, c Context) ([]byte, error) {
	if len(c.Sender) > 255 || len(c.Recipient) > 255 {
		return nil, ErrContext
	}
	b := append(buf, tagLabel...)
	b = append(b, commitment...)
	b = append(b, byte(len(c.Sender)))
	b = append(b, c.Sender...)
	b = binary.BigEndian.AppendUint32(b, c.SenderDevice)
	b = append(b, byte(len(c.Recipient)))
	b = append(b, c.Recipient...)
	b = binary.BigEndian.AppendUint32(b, c.RecipientDevice)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Timestamp))
	return b, nil
}

// Tag computes the reporting tag of a commitment in its context under a
// server tag key.
func Tag(serverKey, commitment []byte, c Context) ([TagSize]byte, error) {
	var t [TagSize]byte
	if len(commitment) != CommitmentSize {
		return t, errors.New("franking: commitment of the wrong size")
	}
	var buf [len(tagLabel) + CommitmentSize + 2*(1+255+4) + 8]byte
	in, err := tagInput(buf[:0], commitment, c)
	if err != nil {
		return t, err
	}
	h := hmac.New(sha256.New, serverKey)
	h.Write(in)
	h.Sum(t[:0])
	return t, nil
}

// CheckTag reports whether tag is the reporting tag of commitment in c
// under serverKey, in constant time.
func CheckTag(serverKey, commitment []byte, c Context, tag []byte) bool {
	t, err := Tag(serverKey, commitment, c)
	return err == nil && hmac.Equal(t[:], tag)
}
