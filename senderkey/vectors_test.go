package senderkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushmsg/hush/session"
)

// Known answers recorded from libsignal-client 0.103.0 (testdata/
// libsignal-0.103.0, made by its record.sh): Alice creates a chain, Bob
// processes her distribution, Alice sends msg1-5, Bob decrypts msg3, msg1
// and msg5 in that order, and Alice describes her chain again after msg5
// (distribution.late.json). Encryption is deterministic given the chain key;
// the signature is not (XEdDSA draws 64 random bytes), so encryption is
// compared up to the signature, which is checked with the signing key.

const katDir = "testdata/libsignal-0.103.0"

var (
	katGroup = mustID("3f0f0d5c-8f4b-4a43-9b2e-6a1c0e7d2b11")
	katAlice = session.Address{Name: "alice", Device: 1}
	katBob   = session.Address{Name: "bob", Device: 1}
	// katPlaintexts are what record.sh encrypted, in order.
	katPlaintexts = []string{
		"message 1 from alice",
		"",
		"sixteen bytes!!!",
		strings.Repeat("long message ", 40),
		"message 5 from alice",
	}
)

func mustID(s string) DistributionID {
	id, err := ParseDistributionID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func katJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(katDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// katRecord returns the sender key record that a recorded state file holds
// for Alice's chain.
func katRecord(t testing.TB, stateFile string) []byte {
	t.Helper()
	var st struct {
		SenderKeys map[string][]byte `json:"senderKeys"`
	}
	katJSON(t, stateFile, &st)
	r, ok := st.SenderKeys["alice.1/"+katGroup.String()]
	if !ok || len(st.SenderKeys) != 1 {
		t.Fatalf("%s: want one record for alice.1/%s, have %d", stateFile, katGroup, len(st.SenderKeys))
	}
	return r
}

func katDistribution(t testing.TB, name string) []byte {
	t.Helper()
	var d struct {
		Distribution []byte `json:"distribution"`
	}
	katJSON(t, name, &d)
	return d.Distribution
}

// katMessages returns msg1-5 as recorded.
func katMessages(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 1; i <= 5; i++ {
		var m struct {
			Type int    `json:"type"`
			Body []byte `json:"body"`
		}
		katJSON(t, "msg"+string(rune('0'+i))+".json", &m)
		if m.Type != TypeSenderKey {
			t.Fatalf("msg%d has type %d", i, m.Type)
		}
		out = append(out, m.Body)
	}
	return out
}

var katStateFiles = []string{
	"alice.state.after-distribution.json",
	"alice.state.after-msg5.json",
	"bob.state.after-process.json",
	"bob.state.after-msg3-1-5.json",
}

// TestLibsignalRecordsRoundTrip: every record libsignal wrote parses and
// encodes back to the same bytes.
func TestLibsignalRecordsRoundTrip(t *testing.T) {
	for _, f := range katStateFiles {
		raw := katRecord(t, f)
		r, err := ParseRecord(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, _ := r.MarshalBinary()
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: re-encoded record differs\n got %x\nwant %x", f, got, raw)
		}
	}
}

// TestLibsignalDistributionMessages: the recorded distributions parse, say
// what Alice's record says, and encode back byte for byte.
func TestLibsignalDistributionMessages(t *testing.T) {
	for _, c := range []struct {
		file      string
		iteration uint32
	}{{"distribution.json", 0}, {"distribution.late.json", 5}} {
		raw := katDistribution(t, c.file)
		m, err := ParseDistributionMessage(raw)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if m.DistributionID() != katGroup || m.Iteration() != c.iteration || m.version != MessageVersion || raw[0] != 0x33 {
			t.Fatalf("%s: parsed %v (version %d)", c.file, m, m.version)
		}
		again := newDistributionMessage(m.header, &m.chainKey, m.signingKey)
		if !bytes.Equal(again.Bytes(), raw) {
			t.Errorf("%s: re-encoded\n got %x\nwant %x", c.file, again.Bytes(), raw)
		}
		if strings.Contains(m.String(), "chainKey") || bytes.Contains([]byte(m.String()), m.chainKey[:4]) {
			t.Errorf("String shows the chain key: %s", m)
		}
	}
}

// TestLibsignalReceive: hush, as Bob, processes Alice's libsignal
// distribution and decrypts her libsignal messages in Bob's order; the
// record it stores is byte for byte the one libsignal stored at each step.
// Then it decrypts the two skipped messages and refuses replays.
func TestLibsignalReceive(t *testing.T) {
	ctx := t.Context()
	st := NewMemoryStore()
	bob := &Cipher{Store: st, Local: katBob}
	dm, err := ParseDistributionMessage(katDistribution(t, "distribution.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Process(ctx, katAlice, dm); err != nil {
		t.Fatal(err)
	}
	if got, want := st.Raw(katAlice, katGroup), katRecord(t, "bob.state.after-process.json"); !bytes.Equal(got, want) {
		t.Fatalf("record after process\n got %x\nwant %x", got, want)
	}
	msgs := katMessages(t)
	for _, i := range []int{2, 0, 4} {
		pt, err := bob.Decrypt(ctx, katAlice, msgs[i])
		if err != nil {
			t.Fatalf("msg%d: %v", i+1, err)
		}
		if string(pt) != katPlaintexts[i] {
			t.Fatalf("msg%d decrypted to %q", i+1, pt)
		}
	}
	if got, want := st.Raw(katAlice, katGroup), katRecord(t, "bob.state.after-msg3-1-5.json"); !bytes.Equal(got, want) {
		t.Fatalf("record after msg3, msg1, msg5\n got %x\nwant %x", got, want)
	}
	for _, i := range []int{3, 1} {
		pt, err := bob.Decrypt(ctx, katAlice, msgs[i])
		if err != nil || string(pt) != katPlaintexts[i] {
			t.Fatalf("msg%d: %q, %v", i+1, pt, err)
		}
	}
	for i, m := range msgs {
		before := st.Raw(katAlice, katGroup)
		if _, err := bob.Decrypt(ctx, katAlice, m); !errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replayed msg%d: %v", i+1, err)
		}
		if !bytes.Equal(before, st.Raw(katAlice, katGroup)) {
			t.Fatalf("a refused replay of msg%d changed the record", i+1)
		}
	}
}

// TestLibsignalSend: hush, from Alice's libsignal record as it stood after
// her distribution, encrypts the same plaintexts. Each message equals
// libsignal's up to the signature, which verifies; the record after msg5 is
// libsignal's byte for byte, and so is the distribution taken then.
func TestLibsignalSend(t *testing.T) {
	ctx := t.Context()
	st := NewMemoryStore()
	r, err := ParseRecord(katRecord(t, "alice.state.after-distribution.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StoreSenderKey(ctx, katAlice, katGroup, r); err != nil {
		t.Fatal(err)
	}
	alice := &Cipher{Store: st, Local: katAlice}
	d, err := alice.Distribution(ctx, katGroup)
	if err != nil {
		t.Fatal(err)
	}
	if want := katDistribution(t, "distribution.json"); !bytes.Equal(d.Bytes(), want) {
		t.Fatalf("distribution\n got %x\nwant %x", d.Bytes(), want)
	}
	for i, want := range katMessages(t) {
		m, err := alice.Encrypt(ctx, katGroup, []byte(katPlaintexts[i]))
		if err != nil {
			t.Fatal(err)
		}
		got := m.Bytes()
		if len(got) != len(want) || !bytes.Equal(got[:len(got)-SignatureSize], want[:len(want)-SignatureSize]) {
			t.Fatalf("msg%d differs before the signature\n got %x\nwant %x", i+1, got, want)
		}
		if !m.VerifySignature(d.SigningKey()) {
			t.Fatalf("msg%d: our signature does not verify", i+1)
		}
		lm, err := ParseMessage(want)
		if err != nil || !lm.VerifySignature(d.SigningKey()) {
			t.Fatalf("msg%d: libsignal's signature does not verify (%v)", i+1, err)
		}
	}
	if got, want := st.Raw(katAlice, katGroup), katRecord(t, "alice.state.after-msg5.json"); !bytes.Equal(got, want) {
		t.Fatalf("record after msg5\n got %x\nwant %x", got, want)
	}
	late, err := alice.Distribution(ctx, katGroup)
	if err != nil {
		t.Fatal(err)
	}
	if want := katDistribution(t, "distribution.late.json"); !bytes.Equal(late.Bytes(), want) {
		t.Fatalf("late distribution\n got %x\nwant %x", late.Bytes(), want)
	}
}

// TestLibsignalLateJoin: a member given the distribution taken after msg5
// reads none of msg1-5 (each is a duplicate to it) and reads what follows.
func TestLibsignalLateJoin(t *testing.T) {
	ctx := t.Context()
	st := NewMemoryStore()
	carol := &Cipher{Store: st, Local: session.Address{Name: "carol", Device: 1}}
	dm, err := ParseDistributionMessage(katDistribution(t, "distribution.late.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.Process(ctx, katAlice, dm); err != nil {
		t.Fatal(err)
	}
	before := st.Raw(katAlice, katGroup)
	for i, m := range katMessages(t) {
		if _, err := carol.Decrypt(ctx, katAlice, m); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("msg%d before the late distribution: %v", i+1, err)
		}
	}
	if !bytes.Equal(before, st.Raw(katAlice, katGroup)) {
		t.Fatal("refused messages changed the record")
	}
	// Alice, from her libsignal record after msg5, sends msg6.
	ast := NewMemoryStore()
	r, err := ParseRecord(katRecord(t, "alice.state.after-msg5.json"))
	if err != nil {
		t.Fatal(err)
	}
	ast.StoreSenderKey(ctx, katAlice, katGroup, r)
	alice := &Cipher{Store: ast, Local: katAlice}
	m, err := alice.Encrypt(ctx, katGroup, []byte("message 6"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := carol.Decrypt(ctx, katAlice, m.Bytes()); err != nil || string(pt) != "message 6" {
		t.Fatalf("after joining: %q, %v", pt, err)
	}
}
