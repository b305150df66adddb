package history

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/strictjson"
)

// Sizes and limits (docs/multidevice.md section 3).
const (
	IDKeySize    = 32
	EpochKeySize = content.EpochKeySize
	// MaxEpochs is the most epochs a keyring holds: one is made at
	// registration and one at each device removal or new recovery code.
	MaxEpochs = 256
)

// EpochID names an epoch: random, nonzero.
type EpochID uint64

// EpochKey is an epoch's 32-byte key. It is secret: String leaves it out,
// and keys are compared in constant time only.
type EpochKey struct {
	_ [0]func() // not comparable: == would not be constant time
	k [EpochKeySize]byte
}

func (EpochKey) String() string   { return "history-epoch-key(redacted)" }
func (EpochKey) GoString() string { return "history-epoch-key(redacted)" }

// Equal reports in constant time whether k and o are the same key.
func (k *EpochKey) Equal(o *EpochKey) bool { return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1 }

// Epoch is one history epoch: an id, its key, and when it was made (by
// the clock of the device that made it, to the millisecond).
type Epoch struct {
	ID      EpochID
	Key     EpochKey
	Created time.Time
}

func (e Epoch) String() string {
	return fmt.Sprintf("history-epoch(%d, created %s, key redacted)", e.ID, e.Created.UTC().Format(time.RFC3339))
}

// NewEpoch draws a new epoch: a random nonzero id and a random key.
func NewEpoch(now time.Time) Epoch {
	e := Epoch{Created: time.UnixMilli(now.UnixMilli())}
	var b [8]byte
	for e.ID == 0 {
		rand.Read(b[:])
		e.ID = EpochID(binary.BigEndian.Uint64(b[:]))
	}
	rand.Read(e.Key.k[:])
	return e
}

// EpochFromContent takes an epoch from a content message's control part
// (an own device sent it), made at created (the message's sent time).
func EpochFromContent(c *content.HistoryEpoch, created time.Time) (Epoch, error) {
	if c == nil || c.ID == 0 {
		return Epoch{}, errors.New("history: epoch id 0")
	}
	e := Epoch{ID: EpochID(c.ID), Created: time.UnixMilli(created.UnixMilli())}
	e.Key.k = c.Key
	return e, e.check()
}

// Content gives e as a content message's control part, to send it to the
// account's other devices.
func (e *Epoch) Content() *content.HistoryEpoch {
	return &content.HistoryEpoch{ID: uint64(e.ID), Key: e.Key.k}
}

func (e *Epoch) check() error {
	if e.ID == 0 {
		return errors.New("history: epoch id 0")
	}
	if ms := e.Created.UnixMilli(); ms < 0 || ms > 1<<53 {
		return errors.New("history: epoch creation time out of range")
	}
	return nil
}

// newer orders epochs: by creation time, then by id.
func (e *Epoch) newer(o *Epoch) bool {
	if !e.Created.Equal(o.Created) {
		return e.Created.After(o.Created)
	}
	return e.ID > o.ID
}

// Keyring is an account's history keyring (docs/multidevice.md, "What each
// device holds"): the history-id key, fixed for the account, and its epochs.
// The current epoch is the newest by creation time. Make one with
// NewKeyring or ParseKeyring. Methods that read it (Seal, Open, RecordID,
// Current, ...) may run concurrently; those that change it (Add, Merge,
// Rotate) may not run with any other.
type Keyring struct {
	idKey  [IDKeySize]byte
	epochs []Epoch // oldest first; never empty
	// aeads holds each epoch's record cipher, derived when the epoch is
	// added, so that opening records only reads the keyring.
	aeads map[EpochID]cipher.AEAD
}

// derive makes the record cipher of every epoch.
func (r *Keyring) derive() {
	r.aeads = make(map[EpochID]cipher.AEAD, len(r.epochs))
	for i := range r.epochs {
		r.aeads[r.epochs[i].ID] = recordAEAD(&r.epochs[i].Key)
	}
}

// String says how many epochs the keyring holds, never a key.
func (r Keyring) String() string {
	if len(r.epochs) == 0 {
		return "history-keyring(empty)"
	}
	return fmt.Sprintf("history-keyring(%d epochs, current %d)", len(r.epochs), r.epochs[len(r.epochs)-1].ID)
}

// GoString is String.
func (r Keyring) GoString() string { return r.String() }

// ErrEpochConflict refuses an epoch whose id the keyring holds with
// another key.
var ErrEpochConflict = errors.New("history: an epoch with this id has another key")

// NewKeyring makes the keyring of a new account (at registration): a new
// history-id key and a first epoch.
func NewKeyring(now time.Time) *Keyring {
	r := &Keyring{epochs: []Epoch{NewEpoch(now)}}
	rand.Read(r.idKey[:])
	r.derive()
	return r
}

// Current is the epoch new records are written with.
func (r *Keyring) Current() Epoch { return r.epochs[len(r.epochs)-1] }

// Epoch finds an epoch by id.
func (r *Keyring) Epoch(id EpochID) (Epoch, bool) {
	for _, e := range r.epochs {
		if e.ID == id {
			return e, true
		}
	}
	return Epoch{}, false
}

// Epochs lists the epochs, oldest first.
func (r *Keyring) Epochs() []Epoch { return slices.Clone(r.epochs) }

// SameAccount reports in constant time whether r and o have the same
// history-id key.
func (r *Keyring) SameAccount(o *Keyring) bool {
	return subtle.ConstantTimeCompare(r.idKey[:], o.idKey[:]) == 1
}

// Rotate makes a new epoch (at a device removal or a new recovery code)
// and adds it as current: created at now, or just after the current epoch
// if the clock says otherwise.
func (r *Keyring) Rotate(now time.Time) (Epoch, error) {
	e := NewEpoch(now)
	if cur := r.Current(); !e.Created.After(cur.Created) {
		e.Created = cur.Created.Add(time.Millisecond)
	}
	_, err := r.Add(e)
	return e, err
}

// Add adds an epoch (from an own device's control message). It reports
// false if the keyring holds it already; an epoch with a known id and
// another key is refused with ErrEpochConflict, and nothing changes.
func (r *Keyring) Add(e Epoch) (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	if have, ok := r.Epoch(e.ID); ok {
		if !have.Key.Equal(&e.Key) {
			return false, ErrEpochConflict
		}
		return false, nil
	}
	if len(r.epochs) >= MaxEpochs {
		return false, fmt.Errorf("history: the keyring holds %d epochs already", MaxEpochs)
	}
	i := len(r.epochs)
	for i > 0 && !e.newer(&r.epochs[i-1]) {
		i--
	}
	r.epochs = slices.Insert(r.epochs, i, e)
	r.aeads[e.ID] = recordAEAD(&e.Key)
	return true, nil
}

// Merge adds the epochs of o (a keyring of the same account, from a
// provisioning box or a recovery blob) and says how many were new. It
// changes nothing if o is another account's, holds a conflicting epoch, or
// the union would be too large.
func (r *Keyring) Merge(o *Keyring) (int, error) {
	if !r.SameAccount(o) {
		return 0, errors.New("history: the keyrings are of different accounts")
	}
	n := len(r.epochs)
	for _, e := range o.epochs {
		have, ok := r.Epoch(e.ID)
		if !ok {
			n++
		} else if !have.Key.Equal(&e.Key) {
			return 0, ErrEpochConflict
		}
	}
	if n > MaxEpochs {
		return 0, fmt.Errorf("history: the keyrings hold more than %d epochs together", MaxEpochs)
	}
	added := 0
	for _, e := range o.epochs {
		if ok, err := r.Add(e); err != nil {
			panic("history: internal error: " + err.Error())
		} else if ok {
			added++
		}
	}
	return added, nil
}

// The keyring's JSON form, strict (package strictjson):
//
//	{"idKey": base64, "epochs": [{"id": uint64, "key": base64, "created": unix ms}, ...]}
//
// with the epochs oldest first.
type keyringJSON struct {
	IDKey  []byte      `json:"idKey"`
	Epochs []epochJSON `json:"epochs"`
}

type epochJSON struct {
	ID      uint64 `json:"id"`
	Key     []byte `json:"key"`
	Created int64  `json:"created"`
}

// Marshal encodes the keyring for the device's store. The result is
// secret.
func (r *Keyring) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("history: internal error: " + err.Error())
	}
	return b
}

// ParseKeyring decodes what Marshal wrote, strictly.
func ParseKeyring(b []byte) (*Keyring, error) {
	r := new(Keyring)
	if err := strictjson.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("history: bad keyring: %w", err)
	}
	return r, nil
}

// MarshalJSON writes the keyring's JSON form (inside the provisioning box
// and the recovery blob).
func (r *Keyring) MarshalJSON() ([]byte, error) {
	j := keyringJSON{IDKey: r.idKey[:], Epochs: make([]epochJSON, len(r.epochs))}
	for i, e := range r.epochs {
		j.Epochs[i] = epochJSON{ID: uint64(e.ID), Key: e.Key.k[:], Created: e.Created.UnixMilli()}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the keyring's JSON form strictly: a 32-byte id key, 1
// to MaxEpochs epochs, oldest first, with distinct nonzero ids and 32-byte
// keys. Its errors never quote a key.
func (r *Keyring) UnmarshalJSON(b []byte) error {
	var j keyringJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.IDKey) != IDKeySize {
		return errors.New("the history-id key is not 32 bytes")
	}
	if len(j.Epochs) == 0 || len(j.Epochs) > MaxEpochs {
		return fmt.Errorf("%d epochs (1 to %d)", len(j.Epochs), MaxEpochs)
	}
	out := Keyring{epochs: make([]Epoch, len(j.Epochs))}
	copy(out.idKey[:], j.IDKey)
	for i, je := range j.Epochs {
		if len(je.Key) != EpochKeySize {
			return errors.New("an epoch key is not 32 bytes")
		}
		e := &out.epochs[i]
		e.ID, e.Created = EpochID(je.ID), time.UnixMilli(je.Created)
		copy(e.Key.k[:], je.Key)
		if err := e.check(); err != nil {
			return err
		}
		if i > 0 && !e.newer(&out.epochs[i-1]) {
			return errors.New("the epochs are not in order")
		}
		for _, o := range out.epochs[:i] {
			if o.ID == e.ID {
				return errors.New("two epochs have one id")
			}
		}
	}
	out.derive()
	*r = out
	return nil
}
