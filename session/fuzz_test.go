package session

import (
	"bytes"
	"testing"

	"github.com/hushmsg/hush/internal/testvec"
)

// recordSeeds returns serialized records: libsignal's (from the recordings)
// and ours.
func recordSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079} {
		var st testvec.PeerState
		testvec.JSON(f, dir, "alice.state.after-msg3.json", &st)
		seeds = append(seeds, st.Sessions["bob.1"])
	}
	alice, bob := establishedPair(f, PQOff, true)
	for _, p := range []*benchParty{alice, bob} {
		peer := bob.addr
		if p == bob {
			peer = alice.addr
		}
		p.st.mu.Lock()
		seeds = append(seeds, p.st.sessions[peer])
		p.st.mu.Unlock()
	}
	return seeds
}

// FuzzParseRecord: no panics; an accepted record re-encodes to bytes that
// parse again and encode to the same bytes (our encoding is canonical).
func FuzzParseRecord(f *testing.F) {
	for _, s := range recordSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		b1, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRecord(b1)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		b2, _ := r2.MarshalBinary()
		if !bytes.Equal(b1, b2) {
			t.Fatal("record encoding is not stable")
		}
		for i := range r.previous {
			_, _ = r.archived(i)
		}
	})
}

// FuzzBundleJSON: no panics; an accepted bundle round-trips.
func FuzzBundleJSON(f *testing.F) {
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079, testvec.SPQR0103} {
		f.Add(testvec.Read(f, dir, "bob.bundle.json"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var bundle Bundle
		if err := bundle.UnmarshalJSON(b); err != nil {
			return
		}
		j, err := bundle.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var again Bundle
		if err := again.UnmarshalJSON(j); err != nil {
			t.Fatalf("re-encoded bundle refused: %v", err)
		}
		if j2, _ := again.MarshalJSON(); !bytes.Equal(j, j2) {
			t.Fatal("bundle JSON not stable")
		}
		_ = bundle.Verify()
	})
}

// FuzzDecrypt feeds arbitrary messages to an established session: no
// panics, and a refused message changes nothing.
func FuzzDecrypt(f *testing.F) {
	ctx := f.Context()
	alice, bob := establishedPair(f, PQOff, true)
	ct, _ := alice.c.Encrypt(ctx, bob.addr, []byte("seed"))
	f.Add(ct.Type, ct.Body)
	ct, _ = bob.c.Encrypt(ctx, alice.addr, []byte("seed 2"))
	f.Add(ct.Type, ct.Body)
	for _, dir := range []string{testvec.X3DH072, testvec.PQXDH079, testvec.SPQR0103} {
		_, msgs := testvec.Messages(f, dir)
		for _, m := range msgs {
			f.Add(m.Type, m.Body)
		}
	}
	f.Fuzz(func(t *testing.T, typ int, body []byte) {
		if typ != TypeSignal && typ != TypePreKey {
			return
		}
		before := snapshotF(bob, alice.addr)
		if _, err := bob.c.Decrypt(t.Context(), alice.addr, typ, body); err != nil {
			if !bytes.Equal(before, snapshotF(bob, alice.addr)) {
				t.Fatal("a refused message changed the store")
			}
		}
	})
}

func snapshotF(p *benchParty, peer Address) []byte {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return bytes.Clone(p.st.sessions[peer])
}
