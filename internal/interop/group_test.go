package interop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// Groups (Sender Keys), the contract's four group calls: hushpeer and
// libsignal 0.103.0 in both roles, one sender and three receivers.

const groupLib = "0.103.0" // the first release whose peer has the group calls

const groupID = "5a1e0c2d-7b3f-4e8a-9c6d-0f1e2d3c4b5a"

func (p *party) groupDistribution() string {
	p.t.Helper()
	var out struct {
		Distribution string `json:"distribution"`
	}
	p.must(nil, &out, "group-distribution", "--state", p.state, "--group", groupID)
	return out.Distribution
}

func (p *party) groupProcess(sender *party, dist string) {
	p.t.Helper()
	p.must(nil, nil, "group-process", "--state", p.state, "--peer", sender.name, "--distribution", dist)
}

func (p *party) groupEncrypt(plaintext []byte) message {
	p.t.Helper()
	in, _ := json.Marshal(map[string]string{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	var m message
	p.must(in, &m, "group-encrypt", "--state", p.state, "--group", groupID)
	if m.Type != senderkey.TypeSenderKey {
		p.t.Fatalf("%s group-encrypt gave type %d", p, m.Type)
	}
	return m
}

// groupDecrypt pipes the output of group-encrypt in, as the contract allows.
func (p *party) groupDecrypt(sender *party, m message) ([]byte, int) {
	p.t.Helper()
	in, _ := json.Marshal(m)
	out, errs, code := p.run(in, "group-decrypt", "--state", p.state, "--peer", sender.name)
	if code != 0 {
		if code != 1 {
			p.t.Fatalf("%s group-decrypt: exit %d (want 0 or 1): %s", p, code, errs)
		}
		return nil, code
	}
	var res struct {
		Plaintext string `json:"plaintext"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		p.t.Fatalf("%s group-decrypt output %q: %v", p, out, err)
	}
	pt, _ := base64.StdEncoding.DecodeString(res.Plaintext)
	return pt, 0
}

func (p *party) groupRead(sender *party, m message, want []byte) {
	p.t.Helper()
	got, code := p.groupDecrypt(sender, m)
	if code != 0 || !bytes.Equal(got, want) {
		p.t.Fatalf("%s reading %q from %s: exit %d, got %q", p, want, sender, code, short(got))
	}
}

// groupRefuse checks that p refuses m with exit 1 and keeps its state file.
func (p *party) groupRefuse(sender *party, m message, what string) {
	p.t.Helper()
	before := p.stateDigest()
	if _, code := p.groupDecrypt(sender, m); code != 1 {
		p.t.Fatalf("%s accepted a %s group message", p, what)
	}
	if p.stateDigest() != before {
		p.t.Fatalf("%s changed its state on a %s group message", p, what)
	}
}

func TestGroups(t *testing.T) {
	for _, hushSends := range []bool{true, false} {
		name := "libsignal-sends"
		if hushSends {
			name = "hush-sends"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			nodePeer(t, groupLib) // skip early without Node.js
			sImpl, rImpl := groupLib, "hush"
			if hushSends {
				sImpl, rImpl = "hush", groupLib
			}
			groupScenario(t, newParty(t, sImpl, "sender"),
				newParty(t, rImpl, "ann"), newParty(t, rImpl, "ben"), newParty(t, rImpl, "late"))
		})
	}
}

func groupScenario(t *testing.T, s, a, b, late *party) {
	for _, p := range []*party{s, a, b, late} {
		p.init()
	}
	if _, _, code := s.run(nil, "group-encrypt", "--state", s.state, "--group", groupID, "--text", "x"); code != 1 {
		t.Fatalf("%s group-encrypt before group-distribution: exit %d, want 1", s, code)
	}
	d0 := s.groupDistribution()
	a.groupProcess(s, d0)
	b.groupProcess(s, d0)

	// In order, and shuffled.
	var msgs []message
	for i := range 8 {
		msgs = append(msgs, s.groupEncrypt(text("group message %d", i)))
	}
	for i, m := range msgs {
		a.groupRead(s, m, text("group message %d", i))
	}
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(len(msgs)) {
		b.groupRead(s, msgs[i], text("group message %d", i))
	}

	// Replays are refused, as is a distribution processed again (it does
	// not rewind the chain).
	a.groupRefuse(s, msgs[3], "replayed")
	b.groupProcess(s, d0)
	b.groupRefuse(s, msgs[0], "replayed after the distribution again")

	// Any altered byte is refused, without using up the message's key:
	// the version, the distribution id, the chain id, the ciphertext, the
	// signature.
	m8 := s.groupEncrypt(text("group message 8"))
	raw, _ := base64.StdEncoding.DecodeString(m8.Body)
	for _, at := range []int{0, 3, 19, len(raw) - 70, len(raw) - 64, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[at] ^= 0x10
		a.groupRefuse(s, message{m8.Type, base64.StdEncoding.EncodeToString(bad)}, fmt.Sprintf("tampered (byte %d)", at))
	}
	a.groupRefuse(s, message{m8.Type, base64.StdEncoding.EncodeToString(raw[:len(raw)-1])}, "truncated")
	a.groupRead(s, m8, text("group message 8"))
	b.groupRead(s, m8, text("group message 8"))

	// A member who joins late reads what follows, not what came before.
	late.groupRefuse(s, msgs[0], "pre-join")
	late.groupProcess(s, s.groupDistribution())
	late.groupRefuse(s, msgs[0], "pre-join")
	late.groupRefuse(s, m8, "pre-join")
	m9 := s.groupEncrypt(text("group message 9"))
	for _, p := range []*party{late, a, b} {
		p.groupRead(s, m9, text("group message 9"))
	}

	if testing.Short() {
		return
	}
	// A large jump ahead. Every receiver expects iteration 10. The sender's
	// chain is moved 25,000 iterations on by the senderkey package, in its
	// state file (the two peers keep a sender key record, libsignal's
	// encoding, at the same place); then the sender's peer sends iteration
	// 25,010 (a jump of 25,000: read) and 25,011 (25,001: refused).
	skipped := advanceSenderKey(t, s, senderkey.MaxForwardJumps)
	far := s.groupEncrypt(text("far"))
	tooFar := s.groupEncrypt(text("too far"))
	a.groupRead(s, far, text("far"))
	b.groupRefuse(s, tooFar, "too far ahead")
	a.groupRead(s, tooFar, text("too far")) // one step for a
	b.groupRead(s, far, text("far"))
	b.groupRead(s, tooFar, text("too far"))
	// Of the 25,000 iterations passed, a receiver keeps the last 2,000 keys.
	a.groupRead(s, skipped[len(skipped)-1], text("skipped %d", len(skipped)-1))
	a.groupRefuse(s, skipped[len(skipped)-1], "replayed skipped")
	a.groupRefuse(s, skipped[len(skipped)-senderkey.MaxMessageKeys-1], "dropped skipped")
	a.groupRead(s, skipped[len(skipped)-senderkey.MaxMessageKeys], text("skipped %d", len(skipped)-senderkey.MaxMessageKeys))
}

// advanceSenderKey moves the sender's chain n iterations on, by encrypting n
// messages with senderkey from the record in its state file, and returns
// them. Both peers keep the record, base64, under
// "senderKeys" / "NAME.1/UUID"; the rest of the file is left as it was.
func advanceSenderKey(t *testing.T, s *party, n int) []message {
	t.Helper()
	raw, err := os.ReadFile(s.state)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	var keys map[string][]byte
	if err := json.Unmarshal(st["senderKeys"], &keys); err != nil {
		t.Fatal(err)
	}
	me := session.Address{Name: s.name, Device: key.DeviceID(1)}
	id, err := senderkey.ParseDistributionID(groupID)
	if err != nil {
		t.Fatal(err)
	}
	slot := me.String() + "/" + groupID
	rec, err := senderkey.ParseRecord(keys[slot])
	if err != nil {
		t.Fatalf("%s's sender key record: %v", s, err)
	}
	store := senderkey.NewMemoryStore()
	store.StoreSenderKey(t.Context(), me, id, rec)
	c := &senderkey.Cipher{Store: store, Local: me}
	msgs := make([]message, n)
	for i := range n {
		m, err := c.Encrypt(t.Context(), id, text("skipped %d", i))
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = message{senderkey.TypeSenderKey, base64.StdEncoding.EncodeToString(m.Bytes())}
	}
	keys[slot] = store.Raw(me, id)
	if st["senderKeys"], err = json.Marshal(keys); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.state, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return msgs
}
