package session

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/hushmsg/hush/internal/testvec"
	"github.com/hushmsg/hush/key"
)

// storeFromKeys builds a MemoryStore holding a recorded party's keys.
func storeFromKeys(t *testing.T, k *testvec.Keys) *MemoryStore {
	t.Helper()
	idPair, err := key.NewECKeyPair(k.Identity.Private)
	if err != nil {
		t.Fatal(err)
	}
	id := &key.IdentityKeyPair{Public: key.IdentityKey{ECPublic: idPair.Public}, Private: idPair.Private}
	st := NewMemoryStore(id, key.RegistrationID(k.RegistrationID))
	for sid, p := range k.SignedPreKeys {
		n, _ := strconv.Atoi(sid)
		kp, err := key.NewECKeyPair(p.Private)
		if err != nil {
			t.Fatal(err)
		}
		st.StoreSignedPreKey(&key.SignedPreKey{ID: key.SignedPreKeyID(n), KeyPair: kp, Signature: p.Signature})
	}
	for sid, p := range k.PreKeys {
		n, _ := strconv.Atoi(sid)
		kp, err := key.NewECKeyPair(p.Private)
		if err != nil {
			t.Fatal(err)
		}
		st.StorePreKey(&key.PreKey{ID: key.PreKeyID(n), KeyPair: kp})
	}
	for sid, p := range k.KyberPreKeys {
		n, _ := strconv.Atoi(sid)
		sec, err := key.ParseKEMSecret(p.Secret)
		if err != nil {
			t.Fatal(err)
		}
		st.StoreKyberPreKey(&key.KyberPreKey{ID: key.KyberPreKeyID(n), KeyPair: key.KEMKeyPair{Public: sec.Public(), Secret: sec}, Signature: p.Signature}, true)
	}
	return st
}

// TestRecordedConversations decrypts what libsignal recorded: Bob, from his
// keys alone, reads Alice's three PreKey messages; Alice, from her
// libsignal SessionRecord as it stood after she sent them, reads Bob's two
// replies in the order she received them (msg5, then msg4).
func TestRecordedConversations(t *testing.T) {
	ctx := t.Context()
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079} {
		t.Run(dir, func(t *testing.T) {
			var bobKeys testvec.Keys
			testvec.JSON(t, dir, "bob.keys.json", &bobKeys)
			bob := &Cipher{Store: storeFromKeys(t, &bobKeys), Local: Address{"bob", 1}, PQRatchet: PQOff, AllowX3DH: true}
			alice := Address{"alice", 1}
			for i := 1; i <= 3; i++ {
				var m testvec.Message
				testvec.JSON(t, dir, fmt.Sprintf("msg%d.alice-to-bob.json", i), &m)
				pt, err := bob.Decrypt(ctx, alice, m.Type, m.Body)
				if err != nil {
					t.Fatalf("msg%d: %v", i, err)
				}
				if want := fmt.Sprintf("message %d from alice", i); string(pt) != want {
					t.Fatalf("msg%d = %q, want %q", i, pt, want)
				}
				// Every repeat is refused as a duplicate.
				if _, err := bob.Decrypt(ctx, alice, m.Type, m.Body); !isDuplicate(err) {
					t.Fatalf("msg%d again: %v", i, err)
				}
			}
			// The one-time prekey was used up.
			if _, err := bob.Store.LoadPreKey(ctx, 1); err == nil {
				t.Error("one-time prekey still there after use")
			}

			// Alice's side from her recorded libsignal state.
			var st testvec.PeerState
			testvec.JSON(t, dir, "alice.state.after-msg3.json", &st)
			idPair, err := key.ParseIdentityKeyPair(st.IdentityKeyPair)
			if err != nil {
				t.Fatal(err)
			}
			store := NewMemoryStore(idPair, key.RegistrationID(st.RegistrationID))
			rec, err := ParseRecord(st.Sessions["bob.1"])
			if err != nil {
				t.Fatal(err)
			}
			if rec.Current() == nil || rec.Current().Pending == nil {
				t.Fatal("recorded session has no pending PreKey state")
			}
			bobAddr := Address{"bob", 1}
			if err := store.StoreSession(ctx, bobAddr, rec); err != nil {
				t.Fatal(err)
			}
			aliceC := &Cipher{Store: store, Local: alice, PQRatchet: PQOff, AllowX3DH: true}
			for _, i := range []int{5, 4} {
				var m testvec.Message
				testvec.JSON(t, dir, fmt.Sprintf("msg%d.bob-to-alice.json", i), &m)
				pt, err := aliceC.Decrypt(ctx, bobAddr, m.Type, m.Body)
				if err != nil {
					t.Fatalf("msg%d: %v", i, err)
				}
				if want := fmt.Sprintf("message %d from bob", i); string(pt) != want {
					t.Fatalf("msg%d = %q, want %q", i, pt, want)
				}
			}
			// Bob answered, so Alice's next message is a plain SignalMessage.
			ct, err := aliceC.Encrypt(ctx, bobAddr, []byte("message 6 from alice"))
			if err != nil {
				t.Fatal(err)
			}
			if ct.Type != TypeSignal {
				t.Fatalf("after an answer, message type %d", ct.Type)
			}
		})
	}
}

// TestRecordedSPQR decrypts libsignal 0.103.0's first message, a PQXDH
// PreKey message carrying SPQR's first header chunk: its message key is
// salted with the SPQR key of chain epoch 0, index 1.
func TestRecordedSPQR(t *testing.T) {
	var bobKeys testvec.Keys
	testvec.JSON(t, testvec.SPQR0103, "bob.keys.json", &bobKeys)
	for _, mode := range []PQRatchetMode{PQRequired, PQOffered} {
		bob := &Cipher{Store: storeFromKeys(t, &bobKeys), Local: Address{"bob", 1}, PQRatchet: mode}
		var m testvec.Message
		testvec.JSON(t, testvec.SPQR0103, "msg1.prekey.json", &m)
		pt, err := bob.Decrypt(t.Context(), Address{"alice", 1}, m.Type, m.Body)
		if err != nil {
			t.Fatalf("%s: %v", modeName(mode), err)
		}
		if string(pt) != "hello" {
			t.Fatalf("%s: got %q", modeName(mode), pt)
		}
	}
	// Without SPQR the message key has no salt: the MAC fails.
	bob := &Cipher{Store: storeFromKeys(t, &bobKeys), Local: Address{"bob", 1}, PQRatchet: PQOff}
	var m testvec.Message
	testvec.JSON(t, testvec.SPQR0103, "msg1.prekey.json", &m)
	if _, err := bob.Decrypt(t.Context(), Address{"alice", 1}, m.Type, m.Body); err == nil {
		t.Fatal("an SPQR message decrypted without SPQR")
	}
}
