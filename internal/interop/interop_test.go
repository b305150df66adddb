package interop

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"
)

// pairing is one combination of implementations and protocol options.
type pairing struct {
	name       string
	lib        string   // the libsignal release
	initFlags  []string // for both parties' init
	respFlags  []string // extra init flags for the responder (--no-kyber for X3DH)
	callFlags  []string // for start and decrypt calls of both
	turns      int      // alternating round trips in the long conversation
	shortTurns int      // the same under -short
}

var pairings = []pairing{
	{name: "x3dh-v3", lib: "0.72.1", initFlags: []string{"--pq-ratchet", "off"}, respFlags: []string{"--no-kyber"},
		callFlags: []string{"--pq-ratchet", "off"}, turns: 12, shortTurns: 3},
	{name: "pqxdh-v4", lib: "0.72.1", initFlags: []string{"--pq-ratchet", "off"},
		callFlags: []string{"--pq-ratchet", "off"}, turns: 12, shortTurns: 3},
	{name: "pqxdh-v4-spqr-off", lib: "0.79.0", initFlags: []string{"--pq-ratchet", "off"},
		callFlags: []string{"--pq-ratchet", "off"}, turns: 12, shortTurns: 3},
	{name: "spqr-on", lib: "0.79.0", initFlags: []string{"--pq-ratchet", "on"},
		callFlags: []string{"--pq-ratchet", "on"}, turns: 12, shortTurns: 3},
	// SPQR is mandatory in 0.103.0. The long conversation runs both parties
	// through several SPQR epochs in both roles (about 43 round trips each).
	{name: "spqr", lib: "0.103.0", turns: 150, shortTurns: 3},
}

// TestSPQRFallback: libsignal 0.79.0 with SPQR off talks to hush, which
// offers SPQR (--pq-ratchet offered) and falls back to none; hush with
// SPQR off talks to 0.79.0 with SPQR on, which falls back; and hush with
// SPQR required refuses a peer that sends none.
func TestSPQRFallback(t *testing.T) {
	const lib = "0.79.0"
	nodePeer(t, lib)
	for _, c := range []struct {
		name          string
		hushPQ, libPQ string
		hushInitiates bool
	}{
		{"hush-offered-to-lib-off", "offered", "off", true},
		{"lib-off-to-hush-offered", "offered", "off", false},
		{"hush-off-to-lib-on", "off", "on", true},
		{"lib-on-to-hush-off", "off", "on", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, l := newParty(t, "hush", "hush"), newParty(t, lib, "lib")
			hf, lf := []string{"--pq-ratchet", c.hushPQ}, []string{"--pq-ratchet", c.libPQ}
			hb, lb := h.init(hf...), l.init(lf...)
			a, b, af, bf := h, l, hf, lf
			if c.hushInitiates {
				h.start(l, lb, hf...)
			} else {
				l.start(h, hb, lf...)
				a, b, af, bf = l, h, lf, hf
			}
			for i := range 4 {
				m := a.encrypt(b, text("a%d", i))
				if got, code := b.decrypt(a, m, bf...); code != 0 || string(got) != fmt.Sprintf("a%d", i) {
					t.Fatalf("message a%d: exit %d", i, code)
				}
				m = b.encrypt(a, text("b%d", i))
				if got, code := a.decrypt(b, m, af...); code != 0 || string(got) != fmt.Sprintf("b%d", i) {
					t.Fatalf("message b%d: exit %d", i, code)
				}
			}
		})
	}
	t.Run("hush-required-refuses-lib-off", func(t *testing.T) {
		t.Parallel()
		h, l := newParty(t, "hush", "hush"), newParty(t, lib, "lib")
		h.init("--pq-ratchet", "on")
		hb := h.init("--pq-ratchet", "on")
		l.init("--pq-ratchet", "off")
		l.start(h, hb, "--pq-ratchet", "off")
		m := l.encrypt(h, text("no spqr"))
		if _, code := h.decrypt(l, m, "--pq-ratchet", "on"); code != 1 {
			t.Fatalf("hush with SPQR required accepted a message without SPQR (exit %d)", code)
		}
	})
}

// TestInterop runs every scenario for every pairing, with hush as the
// initiator and as the responder.
func TestInterop(t *testing.T) {
	for _, pr := range pairings {
		for _, hushFirst := range []bool{true, false} {
			dir := "libsignal-to-hush"
			if hushFirst {
				dir = "hush-to-libsignal"
			}
			t.Run(fmt.Sprintf("%s/%s/%s", pr.lib, pr.name, dir), func(t *testing.T) {
				t.Parallel()
				nodePeer(t, pr.lib) // skip early without Node.js
				for _, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						a, b := newParty(t, pr.lib, "alice"), newParty(t, "hush", "bob")
						if hushFirst {
							a, b = newParty(t, "hush", "alice"), newParty(t, pr.lib, "bob")
						}
						sc.run(t, pr, a, b)
					})
				}
			})
		}
	}
}

type scenario struct {
	name string
	run  func(t *testing.T, pr pairing, a, b *party)
}

var scenarios = []scenario{
	{"conversation", conversation},
	{"no-one-time-prekey", noOneTimePreKey},
	{"tamper-and-replay", tamperAndReplay},
	{"large-messages", largeMessages},
}

// establish starts a session from a to b; b's bundle gets extra init flags.
func establish(t *testing.T, pr pairing, a, b *party, respExtra ...string) {
	t.Helper()
	a.init(pr.initFlags...)
	bundle := b.init(append(append(append([]string(nil), pr.initFlags...), pr.respFlags...), respExtra...)...)
	a.start(b, bundle, pr.callFlags...)
}

func text(format string, args ...any) []byte { return []byte(fmt.Sprintf(format, args...)) }

// conversation: PreKey messages in order, replies out of order, a long
// alternating exchange, and a one-way burst delivered shuffled.
func conversation(t *testing.T, pr pairing, a, b *party) {
	establish(t, pr, a, b)
	for i := range 3 {
		m := a.encrypt(b, text("prekey message %d from %s", i, a))
		if m.Type != 3 {
			t.Fatalf("first messages must be PreKey messages, got type %d", m.Type)
		}
		b.mustDecrypt(a, m, text("prekey message %d from %s", i, a))
	}
	r1 := b.encrypt(a, text("reply 1"))
	r2 := b.encrypt(a, text("reply 2"))
	if r1.Type != 2 || r2.Type != 2 {
		t.Fatalf("replies of type %d, %d", r1.Type, r2.Type)
	}
	a.mustDecrypt(b, r2, text("reply 2"))
	a.mustDecrypt(b, r1, text("reply 1"))
	if m := a.encrypt(b, text("answered")); m.Type != 2 {
		t.Fatalf("after an answer the initiator still sends type %d", m.Type)
	} else {
		b.mustDecrypt(a, m, text("answered"))
	}
	turns := pr.turns
	if testing.Short() {
		turns = pr.shortTurns
	}
	for i := range turns {
		m := a.encrypt(b, text("turn %d a", i))
		b.mustDecrypt(a, m, text("turn %d a", i))
		m = b.encrypt(a, text("turn %d b", i))
		a.mustDecrypt(b, m, text("turn %d b", i))
	}
	const burst = 8
	var msgs []message
	for i := range burst {
		msgs = append(msgs, b.encrypt(a, text("burst %d", i)))
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(burst)
	for _, i := range order {
		a.mustDecrypt(b, msgs[i], text("burst %d", i))
	}
}

func noOneTimePreKey(t *testing.T, pr pairing, a, b *party) {
	establish(t, pr, a, b, "--no-prekey")
	m := a.encrypt(b, text("without a one-time prekey"))
	b.mustDecrypt(a, m, text("without a one-time prekey"))
	r := b.encrypt(a, text("still fine"))
	a.mustDecrypt(b, r, text("still fine"))
}

// tamperAndReplay: a modified message and a repeated one are refused with
// exit 1, and leave the refusing party's state file exactly as it was.
func tamperAndReplay(t *testing.T, pr pairing, a, b *party) {
	establish(t, pr, a, b)
	refuse := func(who, from *party, m message, what string) {
		t.Helper()
		before := who.stateDigest()
		if _, code := who.decrypt(from, m); code != 1 {
			t.Fatalf("%s accepted a %s message", who, what)
		}
		if who.stateDigest() != before {
			t.Fatalf("%s changed its state on a %s message", who, what)
		}
	}
	first := a.encrypt(b, text("first"))
	raw, _ := base64.StdEncoding.DecodeString(first.Body)
	for _, at := range []int{len(raw) / 2, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[at] ^= 0x01
		refuse(b, a, message{first.Type, base64.StdEncoding.EncodeToString(bad)}, "tampered PreKey")
	}
	b.mustDecrypt(a, first, text("first"))
	refuse(b, a, first, "replayed PreKey")

	reply := b.encrypt(a, text("reply"))
	raw, _ = base64.StdEncoding.DecodeString(reply.Body)
	for _, at := range []int{1 + 2 + 33 + 2, len(raw) - 12, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[at] ^= 0x04
		refuse(a, b, message{reply.Type, base64.StdEncoding.EncodeToString(bad)}, "tampered")
	}
	a.mustDecrypt(b, reply, text("reply"))
	refuse(a, b, reply, "replayed")
	m := a.encrypt(b, text("after the attacks"))
	b.mustDecrypt(a, m, text("after the attacks"))
}

func largeMessages(t *testing.T, pr pairing, a, b *party) {
	establish(t, pr, a, b)
	r := rand.New(rand.NewPCG(3, 4))
	big := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return p
	}
	p1, p2, p3 := big(256<<10), big(100_003), big(0)
	b.mustDecrypt(a, a.encrypt(b, p1), p1)
	a.mustDecrypt(b, b.encrypt(a, p2), p2)
	b.mustDecrypt(a, a.encrypt(b, p3), p3)
}
