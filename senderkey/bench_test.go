package senderkey

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/ratchet"
)

// Group messages beside their floors: the cryptography one message cannot
// avoid, done directly with the same primitives. Both go through a
// MemoryStore, which parses the record on every load and serializes it on
// every store, as a persistent store does. The sender's cost does not
// depend on the group's size: Encrypt has no notion of members, and one
// message serves all of them.
//
//	go test -run XXX -bench . -count 8 ./senderkey/ > out.txt && benchstat out.txt

var benchPlaintext = make([]byte, 100)

// BenchmarkEncrypt is one group message: load, chain step, message keys,
// AES-256-CBC, encode, XEdDSA signature, store.
func BenchmarkEncrypt(b *testing.B) {
	alice := newMember("alice")
	if _, err := alice.c.Distribution(b.Context(), testGroup); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpuTime(b)()
	for b.Loop() {
		if _, err := alice.c.Encrypt(b.Context(), testGroup, benchPlaintext); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptMembers is BenchmarkEncrypt in a group of 2 and of 1,000
// members: the sender's store holds the chains of every other member, as
// a member's store does (issue 10: the sender's CPU per message does not
// depend on the group's size). Each member has 16 devices at most, each
// with a chain of its own: 999 chains stand for them here.
func BenchmarkEncryptMembers(b *testing.B) {
	for _, n := range []int{2, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			alice := newMember("alice")
			for i := range n - 1 {
				other := newMember(fmt.Sprintf("m%d", i))
				d, err := other.c.Distribution(b.Context(), testGroup)
				if err != nil {
					b.Fatal(err)
				}
				if err := alice.c.Process(b.Context(), other.c.Local, d); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := alice.c.Distribution(b.Context(), testGroup); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer cpuTime(b)()
			for b.Loop() {
				if _, err := alice.c.Encrypt(b.Context(), testGroup, benchPlaintext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncryptFloor: the two HMACs of a chain step, the message-key
// HKDF, AES-256-CBC and one XEdDSA signature over a message-sized buffer.
func BenchmarkEncryptFloor(b *testing.B) {
	signing, err := key.GenerateECKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ck := ratchet.ChainKey{Key: [32]byte{1}}
	b.ReportAllocs()
	defer cpuTime(b)()
	for b.Loop() {
		seed, next := ck.Step()
		mk := messageKeys(&seed)
		ct := mk.Seal(benchPlaintext)
		if _, err := signing.Private.Sign(rand.Reader, ct); err != nil {
			b.Fatal(err)
		}
		ck = next
	}
}

// BenchmarkDecrypt is one group message received in order: parse, load,
// signature check, chain step, message keys, AES-256-CBC, store. The record
// is put back before each message, so every iteration reads iteration 0.
func BenchmarkDecrypt(b *testing.B) {
	alice, bob := newMember("alice"), newMember("bob")
	d, err := alice.c.Distribution(b.Context(), testGroup)
	if err != nil {
		b.Fatal(err)
	}
	if err := bob.c.Process(b.Context(), alice.c.Local, d); err != nil {
		b.Fatal(err)
	}
	m, err := alice.c.Encrypt(b.Context(), testGroup, benchPlaintext)
	if err != nil {
		b.Fatal(err)
	}
	k := memKey{alice.c.Local, testGroup}
	fresh := bob.st.Raw(alice.c.Local, testGroup)
	b.ReportAllocs()
	defer cpuTime(b)()
	for b.Loop() {
		bob.st.mu.Lock()
		bob.st.records[k] = fresh
		bob.st.mu.Unlock()
		if _, err := bob.c.Decrypt(b.Context(), alice.c.Local, m.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptFloor: one XEdDSA verification, the chain step, the
// message-key HKDF and AES-256-CBC decryption.
func BenchmarkDecryptFloor(b *testing.B) {
	alice := newMember("alice")
	d, err := alice.c.Distribution(b.Context(), testGroup)
	if err != nil {
		b.Fatal(err)
	}
	m, err := alice.c.Encrypt(b.Context(), testGroup, benchPlaintext)
	if err != nil {
		b.Fatal(err)
	}
	sig, signed := m.Bytes()[len(m.Bytes())-SignatureSize:], m.signedPart()
	ck := ratchet.ChainKey{Key: d.chainKey}
	b.ReportAllocs()
	defer cpuTime(b)()
	for b.Loop() {
		if !d.SigningKey().Verify(sig, signed) {
			b.Fatal("signature")
		}
		seed, _ := ck.Step()
		mk := messageKeys(&seed)
		if _, err := mk.Open(m.ciphertext); err != nil {
			b.Fatal(err)
		}
	}
}
