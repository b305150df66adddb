// Package fingerprint computes safety numbers, libsignal's
// NumericFingerprint (rust/protocol/src/fingerprint.rs): a 60-digit number
// that two people compare to check that their sessions are not
// intercepted, and its scannable form for a QR code.
//
// Each party's half is an iterated SHA-512 over its stable identifier and
// identity key; the displayable number puts the two 30-digit halves in
// sorted order, so that both see the same number. Signal uses 5200
// iterations ([Iterations]) and scannable version 2.
package fingerprint

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/pbwire"
	"github.com/hushmsg/hush/key"
)

// Iterations is the hash iteration count Signal uses.
const Iterations = 5200

// ScannableVersion is the version Signal puts in scannable fingerprints.
const ScannableVersion = 2

var (
	// ErrVersionMismatch: the scanned code is of another version.
	ErrVersionMismatch = errors.New("fingerprint: scanned code has another version")
	// ErrMalformed: the scanned code is not a fingerprint.
	ErrMalformed  = errors.New("fingerprint: malformed scanned code")
	errIterations = errors.New("fingerprint: iteration count must be in 2..1000000")
)

// Fingerprint is a safety number between a local and a remote identity.
type Fingerprint struct {
	version       uint32
	local, remote [64]byte
}

// New computes the safety number between us (localID, localKey) and them.
// The ids are stable identifiers of the two accounts (Signal uses the phone
// number or service id; hush uses the account name).
func New(version, iterations uint32, localID []byte, localKey key.IdentityKey, remoteID []byte, remoteKey key.IdentityKey) (*Fingerprint, error) {
	if iterations <= 1 || iterations > 1_000_000 {
		return nil, errIterations
	}
	return &Fingerprint{
		version: version,
		local:   digest(iterations, localID, localKey),
		remote:  digest(iterations, remoteID, remoteKey),
	}, nil
}

// digest is the per-party hash: SHA-512(0x0000 || key || id || key), then
// iterations-1 more rounds of SHA-512(previous || key).
func digest(iterations uint32, id []byte, k key.IdentityKey) [64]byte {
	kb := k.Bytes()
	h := sha512.New()
	h.Write([]byte{0, 0})
	h.Write(kb)
	h.Write(id)
	h.Write(kb)
	var buf [64]byte
	h.Sum(buf[:0])
	for i := uint32(1); i < iterations; i++ {
		h.Reset()
		h.Write(buf[:])
		h.Write(kb)
		h.Sum(buf[:0])
	}
	return buf
}

// encode30 turns the first 30 bytes of a digest into 30 digits: six 5-byte
// big-endian numbers, each mod 100000, zero-padded.
func encode30(d *[64]byte) string {
	s := make([]byte, 0, 30)
	for i := 0; i < 30; i += 5 {
		var x uint64
		for _, c := range d[i : i+5] {
			x = x<<8 | uint64(c)
		}
		s = fmt.Appendf(s, "%05d", x%100_000)
	}
	return string(s)
}

// Display returns the 60-digit safety number, the same on both sides.
func (f *Fingerprint) Display() string {
	l, r := encode30(&f.local), encode30(&f.remote)
	if l < r {
		return l + r
	}
	return r + l
}

// Scannable returns the bytes to put in a QR code: libsignal's
// CombinedFingerprints protobuf with the first 32 bytes of each digest.
//
//	CombinedFingerprints { optional uint32 version = 1;
//	  optional LogicalFingerprint local_fingerprint = 2;
//	  optional LogicalFingerprint remote_fingerprint = 3; }
//	LogicalFingerprint { optional bytes content = 1; }
func (f *Fingerprint) Scannable() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(f.version))
	b = pbwire.AppendMessage(b, 2, func(b []byte) []byte { return pbwire.AppendBytes(b, 1, f.local[:32]) })
	return pbwire.AppendMessage(b, 3, func(b []byte) []byte { return pbwire.AppendBytes(b, 1, f.remote[:32]) })
}

// Compare checks a code scanned from the other party's screen: its local
// half must be our remote half and the other way round. Compared in
// constant time.
func (f *Fingerprint) Compare(scanned []byte) (bool, error) {
	var version uint64
	var local, remote []byte
	content := func(dst *[]byte) func(protowire.Number, protowire.Type, uint64, []byte) bool {
		return func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) bool {
			if num == 1 {
				*dst = bs
				return typ == protowire.BytesType
			}
			return true
		}
	}
	ok := pbwire.Walk(scanned, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case 1:
			version = v
			return typ == protowire.VarintType
		case 2:
			return typ == protowire.BytesType && pbwire.Walk(bs, content(&local))
		case 3:
			return typ == protowire.BytesType && pbwire.Walk(bs, content(&remote))
		}
		return true
	})
	if !ok {
		return false, ErrMalformed
	}
	if uint32(version) != f.version {
		return false, fmt.Errorf("%w: %d, ours %d", ErrVersionMismatch, uint32(version), f.version)
	}
	if local == nil || remote == nil {
		return false, ErrMalformed
	}
	same1 := subtle.ConstantTimeCompare(local, f.remote[:32])
	same2 := subtle.ConstantTimeCompare(remote, f.local[:32])
	return same1&same2 == 1, nil
}
