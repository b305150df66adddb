package maulibsignal

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/logger"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// The library's default logger prints warnings and errors to stdout; give it
// a silent one so that nothing but benchmark lines reach the output. Its
// debug calls still format their arguments (fmt.Sprint, runtime.Caller)
// whatever the logger, and that cost is the library's, so it is measured.
func init() {
	var l logger.Loggable = quietLogger{}
	logger.Setup(&l)
}

type quietLogger struct{}

func (quietLogger) Debug(string, string)   {}
func (quietLogger) Info(string, string)    {}
func (quietLogger) Warning(string, string) {}
func (quietLogger) Error(string, string)   {}
func (quietLogger) Configure(string)       {}

// ser is the library's own serializer set: protobuf for wire messages and
// its JSON serializer for session, prekey and signed prekey records (the
// library has no protobuf serializer for records).
var ser = serialize.NewProtoBufSerializer()

const deviceID = 1

// party is one client: its store and, once a peer is known, the builder and
// cipher for that peer.
type party struct {
	addr   *protocol.SignalAddress
	store  *memStore
	peer   *protocol.SignalAddress
	cipher *session.Cipher
}

func newParty(name string) (*party, error) {
	id, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, err
	}
	return &party{
		addr:  protocol.NewSignalAddress(name, deviceID),
		store: newMemStore(id, keyhelper.GenerateRegistrationID(), ser),
	}, nil
}

// talkTo points the party's builder and cipher at peer.
func (p *party) talkTo(peer *party) *session.Builder {
	p.peer = peer.addr
	b := session.NewBuilder(p.store, p.store, p.store, p.store, p.peer, ser)
	p.cipher = session.NewCipher(b, p.peer)
	return b
}

// publishBundle gives the party a signed prekey and one one-time prekey, stores
// their private halves, and returns the public bundle a server would hand out.
func (p *party) publishBundle(signedID, oneTimeID uint32) (*prekey.Bundle, error) {
	ctx := context.Background()
	spk, err := keyhelper.GenerateSignedPreKey(p.store.identity, signedID, ser.SignedPreKeyRecord)
	if err != nil {
		return nil, err
	}
	opks, err := keyhelper.GeneratePreKeys(int(oneTimeID), 1, ser.PreKeyRecord)
	if err != nil {
		return nil, err
	}
	opk := opks[0]
	if err := p.store.StoreSignedPreKey(ctx, spk.ID(), spk); err != nil {
		return nil, err
	}
	if err := p.store.StorePreKey(ctx, opk.ID().Value, opk); err != nil {
		return nil, err
	}
	return prekey.NewBundle(
		p.store.regID, deviceID,
		optional.NewOptionalUint32(opk.ID().Value), spk.ID(),
		opk.KeyPair().PublicKey(), spk.KeyPair().PublicKey(), spk.Signature(),
		p.store.identity.PublicKey(),
	), nil
}

// wireMsg is a message as it travels: its type and its serialized bytes.
type wireMsg struct {
	typ  uint32
	body []byte
}

// encrypt encrypts plaintext for the party's peer and serializes the result.
func (p *party) encrypt(plaintext []byte) (wireMsg, error) {
	m, err := p.cipher.Encrypt(context.Background(), plaintext)
	if err != nil {
		return wireMsg{}, err
	}
	return wireMsg{m.Type(), m.Serialize()}, nil
}

// decrypt parses a message from its bytes and decrypts it.
func (p *party) decrypt(w wireMsg) ([]byte, error) {
	ctx := context.Background()
	switch w.typ {
	case protocol.PREKEY_TYPE:
		m, err := protocol.NewPreKeySignalMessageFromBytes(w.body, ser.PreKeySignalMessage, ser.SignalMessage)
		if err != nil {
			return nil, err
		}
		return p.cipher.DecryptMessage(ctx, m)
	case protocol.WHISPER_TYPE:
		m, err := protocol.NewSignalMessageFromBytes(w.body, ser.SignalMessage)
		if err != nil {
			return nil, err
		}
		return p.cipher.Decrypt(ctx, m)
	default:
		return nil, fmt.Errorf("unknown message type %d", w.typ)
	}
}

// send carries one message from p to q and checks that it arrives intact.
func send(p, q *party, plaintext []byte) (wireMsg, error) {
	w, err := p.encrypt(plaintext)
	if err != nil {
		return w, fmt.Errorf("%s encrypt: %w", p.addr.Name(), err)
	}
	got, err := q.decrypt(w)
	if err != nil {
		return w, fmt.Errorf("%s decrypt: %w", q.addr.Name(), err)
	}
	if !bytes.Equal(got, plaintext) {
		return w, fmt.Errorf("%s decrypted %x, want %x", q.addr.Name(), got, plaintext)
	}
	return w, nil
}

// newSetup is everything key generation produces before a session exists:
// Alice with a fresh identity, Bob with a fresh identity, and Bob's bundle.
type newSetup struct {
	alice, bob *party
	bundle     *prekey.Bundle
}

func makeSetup() (*newSetup, error) {
	alice, err := newParty("alice")
	if err != nil {
		return nil, err
	}
	bob, err := newParty("bob")
	if err != nil {
		return nil, err
	}
	bundle, err := bob.publishBundle(1, 1)
	if err != nil {
		return nil, err
	}
	return &newSetup{alice, bob, bundle}, nil
}

// x3dh runs what is timed in BenchmarkSetupX3DH: Alice processes Bob's
// bundle and sends the first message (a PreKeySignalMessage), which Bob
// decrypts, consuming his one-time prekey.
func (s *newSetup) x3dh(plaintext []byte) (wireMsg, error) {
	ab := s.alice.talkTo(s.bob)
	s.bob.talkTo(s.alice)
	if err := ab.ProcessBundle(context.Background(), s.bundle); err != nil {
		return wireMsg{}, fmt.Errorf("alice process bundle: %w", err)
	}
	return send(s.alice, s.bob, plaintext)
}

// established returns Alice and Bob after Alice sent, Bob replied and Alice
// received, so that neither holds an unacknowledged prekey message.
func established() (alice, bob *party, err error) {
	s, err := makeSetup()
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.x3dh([]byte("hello bob")); err != nil {
		return nil, nil, err
	}
	if _, err := send(s.bob, s.alice, []byte("hello alice")); err != nil {
		return nil, nil, err
	}
	return s.alice, s.bob, nil
}

func message() []byte {
	m := make([]byte, 100)
	for i := range m {
		m[i] = byte(i)
	}
	return m
}

// BenchmarkSteadyState: one 100-byte message Alice to Bob per iteration, in
// the same direction every time (symmetric ratchet only): encrypt, serialize
// the message, parse it, decrypt; each side parses and serializes its
// session record once.
func benchMauSteadyState(b *testing.B) {
	alice, bob, err := established()
	if err != nil {
		b.Fatal(err)
	}
	msg := message()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := send(alice, bob, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAlternating: one 100-byte message per iteration, direction
// alternating (A->B, B->A, ...), so each receipt takes a DH ratchet step and
// the next send a new sending chain. Figures are per message.
func benchMauAlternating(b *testing.B) {
	alice, bob, err := established()
	if err != nil {
		b.Fatal(err)
	}
	msg := message()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		if _, err := send(from, to, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// setupPool is how many fresh setups are generated at a time, untimed.
const setupPool = 128

// BenchmarkSetupX3DH: one new session per iteration. Untimed: fresh
// identities for Alice and Bob, Bob's signed prekey and one one-time prekey,
// his bundle. Timed: Alice processes the bundle, encrypts a 100-byte first
// message (PreKeySignalMessage), serializes it; Bob parses and decrypts it,
// building his session and removing the one-time prekey.
func benchMauSetupX3DH(b *testing.B) {
	msg := message()
	pool := make([]*newSetup, 0, setupPool)
	refill := func() {
		pool = pool[:0]
		for range setupPool {
			s, err := makeSetup()
			if err != nil {
				b.Fatal(err)
			}
			pool = append(pool, s)
		}
	}
	refill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%setupPool == 0 && i > 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		if _, err := pool[i%setupPool].x3dh(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRoundTrip proves the harness encrypts and decrypts for real, through
// serialized records and messages, so the benchmarks cannot measure nothing.
func TestRoundTrip(t *testing.T) {
	msg := message()

	// Session setup: the first message is a PreKeySignalMessage and Bob's
	// one-time prekey is consumed.
	s, err := makeSetup()
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.x3dh(msg)
	if err != nil {
		t.Fatal(err)
	}
	if w.typ != protocol.PREKEY_TYPE {
		t.Fatalf("first message type %d, want PreKeySignalMessage (%d)", w.typ, protocol.PREKEY_TYPE)
	}
	if bytes.Contains(w.body, msg[:16]) {
		t.Fatal("plaintext visible in the first message")
	}
	if ok, _ := s.bob.store.ContainsPreKey(t.Context(), 1); ok {
		t.Fatal("Bob's one-time prekey was not removed")
	}
	if _, err := send(s.bob, s.alice, []byte("reply")); err != nil {
		t.Fatal(err)
	}

	alice, bob := s.alice, s.bob
	aLoads, bLoads := alice.store.loads, bob.store.loads

	// Steady state: whisper messages, each decrypting to its plaintext.
	var prev []byte
	for i := range 10 {
		m := append([]byte{byte(i)}, msg[1:]...)
		w, err := send(alice, bob, m)
		if err != nil {
			t.Fatalf("steady message %d: %v", i, err)
		}
		if w.typ != protocol.WHISPER_TYPE {
			t.Fatalf("steady message %d type %d, want %d", i, w.typ, protocol.WHISPER_TYPE)
		}
		if bytes.Equal(w.body, prev) {
			t.Fatalf("steady message %d repeats the previous ciphertext", i)
		}
		prev = w.body
	}

	// Alternating: a DH ratchet step on every receipt.
	for i := range 10 {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		if _, err := send(from, to, []byte(fmt.Sprintf("alternating %d", i))); err != nil {
			t.Fatalf("alternating message %d: %v", i, err)
		}
	}

	// Every encrypt and decrypt parsed its record from bytes: 10 steady
	// messages load on both sides, 10 alternating on both sides.
	if got := alice.store.loads - aLoads; got != 20 {
		t.Fatalf("Alice parsed her record %d times, want 20", got)
	}
	if got := bob.store.loads - bLoads; got != 20 {
		t.Fatalf("Bob parsed his record %d times, want 20", got)
	}
	rec, err := record.NewSessionFromBytes(bob.store.sessions[keyOf(alice.addr)], ser.Session, ser.State)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SessionState().Version() != protocol.CurrentVersion {
		t.Fatalf("session version %d, want %d", rec.SessionState().Version(), protocol.CurrentVersion)
	}
	t.Logf("serialized session record: Alice %d bytes, Bob %d bytes",
		len(alice.store.sessions[keyOf(bob.addr)]), len(bob.store.sessions[keyOf(alice.addr)]))

	// A tampered message is refused, and refusing it leaves the session
	// usable.
	w, err = alice.encrypt(msg)
	if err != nil {
		t.Fatal(err)
	}
	bad := wireMsg{w.typ, bytes.Clone(w.body)}
	bad.body[len(bad.body)-20] ^= 1 // in the ciphertext, before the 8-byte MAC
	if _, err := bob.decrypt(bad); err == nil {
		t.Fatal("tampered message decrypted")
	}
	got, err := bob.decrypt(w)
	if err != nil {
		t.Fatalf("genuine message after a tampered one: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("decrypted %x, want %x", got, msg)
	}
}
