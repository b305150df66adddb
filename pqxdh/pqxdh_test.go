package pqxdh

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/hushmsg/hush/internal/testvec"
	"github.com/hushmsg/hush/key"
)

func pair(t *testing.T, priv string) key.ECKeyPair {
	t.Helper()
	kp, err := key.NewECKeyPair(testvec.Hex(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestX3DHVector is libsignal's test_ratcheting_session_as_bob/alice
// (rust/protocol/tests/ratchet.rs before v0.75): X3DH without a one-time
// prekey; the chain key is libsignal's, the root key and the third block were
// computed independently (signal-digest section 14.1).
func TestX3DHVector(t *testing.T) {
	aliceBase := pair(t, "10ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449")
	aliceID := pair(t, "9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58")
	bobID := pair(t, "4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e")
	bobSPK := pair(t, "583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253")
	for name, kp := range map[string]struct {
		kp  key.ECKeyPair
		pub string
	}{
		"alice base": {aliceBase, "05e2c05860f2ac6b2b57ba564b421ffe71e4b128c591e46e0491cc9b33dbf22a27"},
		"alice id":   {aliceID, "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a"},
		"bob id":     {bobID, "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626"},
		"bob spk":    {bobSPK, "05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67"},
	} {
		if !bytes.Equal(kp.kp.Public.Bytes(), testvec.Hex(t, kp.pub)) {
			t.Fatalf("%s public key %x", name, kp.kp.Public.Bytes())
		}
	}
	aliceIdentity := &key.IdentityKeyPair{Public: key.IdentityKey{ECPublic: aliceID.Public}, Private: aliceID.Private}
	bobIdentity := &key.IdentityKeyPair{Public: key.IdentityKey{ECPublic: bobID.Public}, Private: bobID.Private}

	a, ct, err := Initiate(&InitiatorParams{
		OurIdentity:       aliceIdentity,
		OurBaseKey:        aliceBase,
		TheirIdentity:     bobIdentity.Public,
		TheirSignedPreKey: bobSPK.Public,
	}, rand.Reader)
	if err != nil || ct != nil {
		t.Fatalf("Initiate: %v, ciphertext %x", err, ct)
	}
	b, err := Accept(&ResponderParams{
		OurIdentity:     bobIdentity,
		OurSignedPreKey: bobSPK,
		TheirIdentity:   aliceIdentity.Public,
		TheirBaseKey:    aliceBase.Public,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Keys{}
	copy(want.RootKey[:], testvec.Hex(t, "cdbd35392e300db7b28f9e8501eb21b224cd8ca0a009c8339fbe89614035bcb2"))
	copy(want.ChainKey[:], testvec.Hex(t, "ab9be50e5cb22a925446ab90ee5670545f4fd32902459ec274b6ad0ae5d6031a"))
	copy(want.PQRKey[:], testvec.Hex(t, "7451be6368128abdc193c90cc84b68e23fa834d5e885e09503f65425b06aca40"))
	if a != want || b != want {
		t.Fatalf("keys\nalice %x\nbob   %x\nwant  %x", a, b, want)
	}
}

func TestPQXDHAgrees(t *testing.T) {
	for _, withOPK := range []bool{false, true} {
		alice, _ := key.GenerateIdentityKeyPair(rand.Reader)
		bob, _ := key.GenerateIdentityKeyPair(rand.Reader)
		spk, _ := key.GenerateECKeyPair(rand.Reader)
		kyber, _ := key.GenerateKEMKeyPair(rand.Reader)
		base, _ := key.GenerateECKeyPair(rand.Reader)
		var opk *key.ECKeyPair
		var opkPub *key.ECPublic
		if withOPK {
			k, _ := key.GenerateECKeyPair(rand.Reader)
			opk, opkPub = &k, &k.Public
		}
		a, ct, err := Initiate(&InitiatorParams{
			OurIdentity: alice, OurBaseKey: base, TheirIdentity: bob.Public,
			TheirSignedPreKey: spk.Public, TheirOneTimePreKey: opkPub, TheirKyberPreKey: kyber.Public,
		}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		resp := &ResponderParams{
			OurIdentity: bob, OurSignedPreKey: spk, OurOneTimePreKey: opk, OurKyberPreKey: &kyber,
			TheirIdentity: alice.Public, TheirBaseKey: base.Public, TheirKyberCiphertext: ct,
		}
		b, err := Accept(resp)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatal("PQXDH keys differ")
		}
		// Every input matters: a wrong Kyber ciphertext, a missing one-time
		// key or another identity gives other keys.
		bad := *resp
		bad.TheirKyberCiphertext = append([]byte(nil), ct...)
		bad.TheirKyberCiphertext[10] ^= 1
		if k, err := Accept(&bad); err != nil || k == a {
			t.Fatalf("tampered Kyber ciphertext: same keys or error %v", err)
		}
		bad = *resp
		bad.TheirIdentity = bob.Public
		if k, err := Accept(&bad); err != nil || k == a {
			t.Fatalf("other identity: same keys or error %v", err)
		}
		if withOPK {
			bad = *resp
			bad.OurOneTimePreKey = nil
			if k, _ := Accept(&bad); k == a {
				t.Fatal("dropping the one-time prekey gives the same keys")
			}
		}
	}
}

func TestAcceptRejectsBadBaseKey(t *testing.T) {
	bob, _ := key.GenerateIdentityKeyPair(rand.Reader)
	alice, _ := key.GenerateIdentityKeyPair(rand.Reader)
	spk, _ := key.GenerateECKeyPair(rand.Reader)
	order8, _ := key.ECPublicFromRaw(testvec.Hex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"))
	if _, err := Accept(&ResponderParams{OurIdentity: bob, OurSignedPreKey: spk,
		TheirIdentity: alice.Public, TheirBaseKey: order8}); err != ErrInvalidBaseKey {
		t.Fatalf("small-order base key: %v", err)
	}
}
