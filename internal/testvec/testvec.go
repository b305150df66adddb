// Package testvec loads the known-answer data recorded from libsignal runs
// (testdata/, see its README) for the tests of the protocol packages. Only
// tests import it.
package testvec

import (
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"path"
	"strings"
	"testing"
)

//go:embed testdata
var files embed.FS

// Recordings, by the libsignal release that made them.
const (
	X3DH072  = "libsignal-0.72.1-x3dh-v3"  // X3DH, session version 3
	PQXDH079 = "libsignal-0.79.0-pqxdh-v4" // PQXDH, version 4, no SPQR
	SPQR0103 = "libsignal-0.103.0"         // PQXDH + SPQR
)

// Bundle is a published prekey bundle in the interop contract's JSON form.
type Bundle struct {
	RegistrationID        uint32  `json:"registrationId"`
	DeviceID              uint32  `json:"deviceId"`
	IdentityKey           []byte  `json:"identityKey"`
	SignedPreKeyID        uint32  `json:"signedPreKeyId"`
	SignedPreKey          []byte  `json:"signedPreKey"`
	SignedPreKeySignature []byte  `json:"signedPreKeySignature"`
	PreKeyID              *uint32 `json:"preKeyId"`
	PreKey                []byte  `json:"preKey"`
	KyberPreKeyID         *uint32 `json:"kyberPreKeyId"`
	KyberPreKey           []byte  `json:"kyberPreKey"`
	KyberPreKeySignature  []byte  `json:"kyberPreKeySignature"`
}

// Pair is a recorded key pair.
type Pair struct {
	Public    []byte `json:"public"`
	Private   []byte `json:"private"`
	Secret    []byte `json:"secret"` // Kyber secret key
	Signature []byte `json:"signature"`
}

// Keys is a party's private key material as the libsignal peer's keys call prints it.
type Keys struct {
	Name           string          `json:"name"`
	DeviceID       uint32          `json:"deviceId"`
	RegistrationID uint32          `json:"registrationId"`
	Identity       Pair            `json:"identity"`
	SignedPreKeys  map[string]Pair `json:"signedPreKeys"`
	PreKeys        map[string]Pair `json:"preKeys"`
	KyberPreKeys   map[string]Pair `json:"kyberPreKeys"`
}

// PeerState is the libsignal peer's state file; records are base64 protobufs.
type PeerState struct {
	Name            string            `json:"name"`
	RegistrationID  uint32            `json:"registrationId"`
	IdentityKeyPair []byte            `json:"identityKeyPair"`
	PreKeys         map[string][]byte `json:"preKeys"`
	SignedPreKeys   map[string][]byte `json:"signedPreKeys"`
	KyberPreKeys    map[string][]byte `json:"kyberPreKeys"`
	Identities      map[string][]byte `json:"identities"`
	Sessions        map[string][]byte `json:"sessions"`
}

// Message is one recorded ciphertext: type 2 (SignalMessage) or 3 (PreKeySignalMessage).
type Message struct {
	Type int    `json:"type"`
	Body []byte `json:"body"`
}

// Read returns the bytes of testdata/dir/name.
func Read(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := files.ReadFile(path.Join("testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JSON decodes testdata/dir/name into v.
func JSON(t testing.TB, dir, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(Read(t, dir, name), v); err != nil {
		t.Fatalf("%s/%s: %v", dir, name, err)
	}
}

// Messages returns the recorded messages of dir in the order they were made,
// with their file names.
func Messages(t testing.TB, dir string) (names []string, msgs []Message) {
	t.Helper()
	ents, err := files.ReadDir(path.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "msg") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var m Message
		JSON(t, dir, e.Name(), &m)
		names = append(names, e.Name())
		msgs = append(msgs, m)
	}
	return names, msgs
}

// Hex decodes a hexadecimal string (spaces and newlines ignored) or fails t.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// B64 decodes standard base64 or fails t.
func B64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
