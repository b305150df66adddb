package senderkey

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/ratchet"
	"github.com/hushmsg/hush/session"
)

// ErrDecrypt is the one error of every failed [Cipher.Decrypt]: a malformed
// message, a bad signature, an unknown distribution or chain, a replayed
// iteration, one too far ahead, a bad ciphertext. It says nothing more, so
// that it gives an attacker no oracle. Two reasons that libsignal tells
// apart publicly, and on which a client acts, are in its errors.Is chain:
// [ErrNoSenderKey] and [ErrDuplicate]. Neither depends on a secret.
var ErrDecrypt = errors.New("senderkey: decryption failed")

// ErrNoSenderKey is libsignal's NoSenderKeyState: no chain for this
// sender, distribution id and chain id (the sender's distribution message
// has not arrived, or the chain was dropped). A client asks the sender to
// distribute again. Encrypt returns it when the group has no chain of ours.
var ErrNoSenderKey = errors.New("senderkey: no sender key state")

// ErrDuplicate marks (in the chain of an [ErrDecrypt]) a message whose
// iteration was already decrypted, or is older than the distribution the
// receiver was given: libsignal's DuplicatedMessage.
var ErrDuplicate = errors.New("senderkey: duplicate message")

// errChainEnd is libsignal's InvalidState "Sender chain is too long": the
// chain reached iteration 2^32-1.
var errChainEnd = errors.New("senderkey: sender chain is too long")

// decryptError wraps a cause for logs and tests while matching ErrDecrypt.
// Its message is always the same.
type decryptError struct{ cause error }

func (e *decryptError) Error() string        { return ErrDecrypt.Error() }
func (e *decryptError) Is(target error) bool { return target == ErrDecrypt }
func (e *decryptError) Unwrap() error        { return e.cause }

// Store keeps sender key records, keyed by the sender's address and the
// distribution id (libsignal's SenderKeyStore). Our own chains are kept
// under our own address.
type Store interface {
	// LoadSenderKey returns the record, or nil if there is none.
	LoadSenderKey(ctx context.Context, sender session.Address, id DistributionID) (*Record, error)
	StoreSenderKey(ctx context.Context, sender session.Address, id DistributionID, r *Record) error
}

// Cipher sends and receives group messages for one local device with
// Sender Keys (libsignal group_cipher.rs), keeping all state in its
// [Store]. It holds no state of its own; calls for the same sender and
// distribution id must not run concurrently.
//
// Sending costs the same whatever the group's size: one message is
// encrypted and signed once, and every member decrypts the same bytes.
type Cipher struct {
	Store Store
	Local session.Address // this device: the key of our own chains
	Rand  io.Reader       // nil means crypto/rand
}

func (c *Cipher) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// Distribution returns the distribution message of our chain for the
// group id, creating the chain on the first call (libsignal
// create_sender_key_distribution_message): a random 31-bit chain id
// ("libsignal-protocol-java uses 31-bit integers"), a random chain key at
// iteration 0 and a new signing key pair. Later calls describe the same
// chain at its current iteration, so that a member who joins late reads
// what follows, not what came before.
func (c *Cipher) Distribution(ctx context.Context, id DistributionID) (*DistributionMessage, error) {
	r, err := c.Store.LoadSenderKey(ctx, c.Local, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		var buf [4 + 32]byte
		if _, err := io.ReadFull(c.rand(), buf[:]); err != nil {
			return nil, fmt.Errorf("senderkey: reading randomness: %w", err)
		}
		signing, err := key.GenerateECKeyPair(c.rand())
		if err != nil {
			return nil, err
		}
		s := &state{
			version: MessageVersion,
			chainID: binary.LittleEndian.Uint32(buf[:4]) >> 1,
			signing: signing.Public,
			private: &signing.Private,
		}
		copy(s.chain.Key[:], buf[4:])
		clear(buf[:])
		r = NewRecord()
		r.addState(s)
		if err := c.Store.StoreSenderKey(ctx, c.Local, id, r); err != nil {
			return nil, err
		}
	}
	if len(r.states) == 0 {
		return nil, invalid("empty record")
	}
	s := r.states[0]
	h := header{version: uint8(s.messageVersion()), distributionID: id, chainID: s.chainID, iteration: s.chain.Index}
	return newDistributionMessage(h, &s.chain.Key, s.signing), nil
}

// Process stores the chain that a distribution message from sender
// describes (libsignal process_sender_key_distribution_message). A chain
// already known with the same id and signing key is kept as it stands, so
// a distribution processed again rewinds nothing; the record keeps the
// [MaxStates] newest chains.
func (c *Cipher) Process(ctx context.Context, sender session.Address, m *DistributionMessage) error {
	r, err := c.Store.LoadSenderKey(ctx, sender, m.distributionID)
	if err != nil {
		return err
	}
	if r == nil {
		r = NewRecord()
	}
	r.addState(&state{
		version: uint32(m.version),
		chainID: m.chainID,
		chain:   ratchet.ChainKey{Key: m.chainKey, Index: m.iteration},
		signing: m.signingKey,
	})
	return c.Store.StoreSenderKey(ctx, sender, m.distributionID, r)
}

// Encrypt encrypts plaintext for the group with our newest chain for the
// distribution id and signs it (libsignal group_encrypt): the message key
// of the chain's iteration, AES-256-CBC with PKCS#7 padding, an XEdDSA
// signature over version byte and protobuf; then the chain steps once.
// Without a chain (Distribution never called) it returns [ErrNoSenderKey].
func (c *Cipher) Encrypt(ctx context.Context, id DistributionID, plaintext []byte) (*Message, error) {
	r, err := c.Store.LoadSenderKey(ctx, c.Local, id)
	if err != nil {
		return nil, err
	}
	if r == nil || len(r.states) == 0 {
		return nil, ErrNoSenderKey
	}
	s := r.states[0]
	if s.private == nil {
		return nil, invalid("no private signing key")
	}
	if !canStep(&s.chain) {
		return nil, errChainEnd
	}
	seed, next := s.chain.Step()
	mk := messageKeys(&seed)
	clear(seed[:])
	h := header{version: uint8(s.messageVersion()), distributionID: id, chainID: s.chainID, iteration: s.chain.Index}
	m, err := sealMessage(h, &mk, plaintext, s.private, c.rand())
	clear(mk.CipherKey[:])
	if err != nil {
		return nil, err
	}
	s.chain = next
	if err := c.Store.StoreSenderKey(ctx, c.Local, id, r); err != nil {
		return nil, err
	}
	return m, nil
}

// sealMessage encrypts and signs one SenderKeyMessage (SenderKeyMessage::new).
func sealMessage(h header, mk *ratchet.MessageKeys, plaintext []byte, signer *key.ECPrivate, rand io.Reader) (*Message, error) {
	ct := mk.Seal(plaintext)
	b := make([]byte, 0, messageSize(&h, len(ct)))
	b = appendMessageBody(b, &h, ct)
	sig, err := signer.Sign(rand, b)
	if err != nil {
		return nil, err
	}
	b = append(b, sig[:]...)
	m := &Message{header: h, serialized: b}
	m.ciphertext = b[len(b)-SignatureSize-len(ct) : len(b)-SignatureSize]
	return m, nil
}

// Decrypt decrypts a SenderKeyMessage from sender (libsignal
// group_decrypt): the distribution id and chain id in the message pick the
// state, its signing key must verify the signature, then the message key
// of the message's iteration is taken from the skipped keys or by stepping
// the chain forward (at most [MaxForwardJumps], keeping the newest
// [MaxMessageKeys] skipped keys). Every failure is an [ErrDecrypt] and
// writes nothing to the store; the record is stored only once the message
// has decrypted.
func (c *Cipher) Decrypt(ctx context.Context, sender session.Address, body []byte) ([]byte, error) {
	m, err := ParseMessage(body)
	if err != nil {
		return nil, &decryptError{err}
	}
	r, err := c.Store.LoadSenderKey(ctx, sender, m.distributionID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, &decryptError{ErrNoSenderKey}
	}
	s := r.stateForChain(m.chainID)
	if s == nil {
		return nil, &decryptError{ErrNoSenderKey}
	}
	if uint32(m.version) != s.messageVersion() {
		return nil, &decryptError{ErrUnknownVersion}
	}
	if !m.VerifySignature(s.signing) {
		return nil, &decryptError{errBadSignature}
	}
	u, err := s.keyFor(m.iteration)
	if err != nil {
		return nil, &decryptError{err}
	}
	mk := messageKeys(&u.seed)
	pt, err := mk.Open(m.ciphertext)
	clear(mk.CipherKey[:])
	if err != nil {
		return nil, &decryptError{err}
	}
	s.apply(u)
	if err := c.Store.StoreSenderKey(ctx, sender, m.distributionID, r); err != nil {
		return nil, err
	}
	return pt, nil
}

var (
	errBadSignature = errors.New("senderkey: bad signature")
	errTooFar       = errors.New("senderkey: message from too far into the future")
)

// update is what decrypting one message changes in a state, computed
// before the message is known to decrypt and applied after.
type update struct {
	seed    [32]byte // the message key's seed
	used    int      // index of the skipped key used, or -1
	skipped []skippedKey
	next    ratchet.ChainKey
}

// keyFor finds the message key of an iteration without changing s
// (libsignal get_sender_key): a kept skipped key for an iteration the
// chain has passed, else ErrDuplicate; else the chain steps forward, at
// most MaxForwardJumps, and the keys of the iterations it passes are kept.
func (s *state) keyFor(iteration uint32) (*update, error) {
	current := s.chain.Index
	if iteration < current {
		for i := range s.skipped {
			if s.skipped[i].iteration == iteration {
				return &update{seed: s.skipped[i].seed, used: i}, nil
			}
		}
		return nil, ErrDuplicate
	}
	jump := iteration - current
	if jump > MaxForwardJumps {
		return nil, errTooFar
	}
	if iteration == ^uint32(0) {
		return nil, errChainEnd // the final next() would overflow
	}
	u := &update{used: -1}
	// Of the keys passed, only the newest MaxMessageKeys can survive
	// add_sender_message_key's trimming: step over the others without
	// deriving their seeds.
	keep := min(int(jump), MaxMessageKeys)
	u.skipped = make([]skippedKey, 0, keep)
	ck := s.chain
	for ck.Index < iteration {
		if iteration-ck.Index <= uint32(keep) {
			seed, next := ck.Step()
			u.skipped = append(u.skipped, skippedKey{iteration: ck.Index, seed: seed})
			ck = next
		} else {
			ck = ck.Next()
		}
	}
	u.seed, u.next = ck.Step()
	return u, nil
}

// apply commits an update to the state.
func (s *state) apply(u *update) {
	if u.used >= 0 {
		// remove_sender_message_key
		s.skipped = append(s.skipped[:u.used], s.skipped[u.used+1:]...)
		return
	}
	// add_sender_message_key for each key passed, dropping the oldest
	// beyond MAX_MESSAGE_KEYS, then set_sender_chain_key.
	all := append(s.skipped, u.skipped...)
	if n := len(all) - MaxMessageKeys; n > 0 {
		all = append(all[:0:0], all[n:]...)
	}
	s.skipped = all
	s.chain = u.next
}
