package history

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/strictjson"
)

/* Specification constants (docs/multidevice.md section 3) */

const (
	RecordIDSize = 16

	labelID     = "hush history v1 id"
	labelRecord = "hush history v1 record" // HKDF info, and the start of the AD

	// Direction bytes of the record id.
	dirIncoming = 0x00
	dirOutgoing = 0x01

	epochIDSize = 8
	nonceSize   = 12
	tagSize     = 16
	// RecordOverhead is what a blob adds to its plaintext.
	RecordOverhead = epochIDSize + nonceSize + tagSize
)

// RecordID names a history record: the same on every device of the
// account for the same message, so that the server keeps one copy.
type RecordID [RecordIDSize]byte

// Bytes returns the 16 bytes (api.HistoryRecord.ID).
func (id RecordID) Bytes() []byte { return append([]byte(nil), id[:]...) }

func (id RecordID) String() string { return fmt.Sprintf("%x", id[:]) }

// ParseRecordID takes a record id from the server (api.HistoryRecord.ID).
func ParseRecordID(b []byte) (RecordID, error) {
	if len(b) != RecordIDSize {
		return RecordID{}, errors.New("history: a record id has 16 bytes")
	}
	return RecordID(b), nil
}

// RecordID computes the id of the record of a message: HMAC-SHA256(history-id
// key, "hush history v1 id" || peer || 0x00 || direction || content id)[:16],
// where direction is 0x01 for a message the account sent to peer and 0x00
// for one it received from peer.
func (r *Keyring) RecordID(peer string, outgoing bool, id content.ID) RecordID {
	m := hmac.New(sha256.New, r.idKey[:])
	m.Write([]byte(labelID))
	m.Write([]byte(peer))
	dir := byte(dirIncoming)
	if outgoing {
		dir = dirOutgoing
	}
	m.Write([]byte{0x00, dir})
	m.Write(id[:])
	return RecordID(m.Sum(nil)[:RecordIDSize])
}

// Record is the plaintext of a history record: one ordinary message of the
// account, in either direction.
type Record struct {
	Peer     string     // the other person's username
	Outgoing bool       // the account sent it (to Peer)
	Device   uint32     // the device that sent it, of the sender's account
	ID       content.ID // the message's content id
	SentAt   time.Time  // the sender's clock, to the millisecond
	Body     string
}

// String leaves the body out.
func (rec Record) String() string {
	dir := "from"
	if rec.Outgoing {
		dir = "to"
	}
	return fmt.Sprintf("history-record(%s %s, %s, %d bytes)", dir, rec.Peer, rec.ID, len(rec.Body))
}

// The record's JSON form, strict (package strictjson); sentAt is Unix
// milliseconds, id base64.
type recordJSON struct {
	Peer     string `json:"peer"`
	Outgoing bool   `json:"outgoing"`
	Device   uint32 `json:"device"`
	ID       []byte `json:"id"`
	SentAt   int64  `json:"sentAt"`
	Body     string `json:"body"`
}

func (rec *Record) check() error {
	switch {
	case !api.ValidUsername(rec.Peer):
		return errors.New("the peer is not a valid username")
	case rec.Device == 0:
		return errors.New("device 0")
	case rec.SentAt.UnixMilli() < 0 || rec.SentAt.UnixMilli() > 1<<53:
		return errors.New("sent time out of range")
	case !utf8.ValidString(rec.Body):
		return errors.New("the body is not UTF-8")
	}
	return nil
}

func recordAEAD(k *EpochKey) cipher.AEAD {
	rk, err := hkdf.Key(sha256.New, k.k[:], nil, labelRecord, 32)
	if err != nil {
		panic("history: internal error: " + err.Error())
	}
	block, _ := aes.NewCipher(rk)
	aead, _ := cipher.NewGCM(block)
	return aead
}

// recordAD is "hush history v1 record" || record id || epoch id.
func recordAD(id RecordID, epoch []byte) []byte {
	ad := make([]byte, 0, len(labelRecord)+RecordIDSize+epochIDSize)
	ad = append(ad, labelRecord...)
	ad = append(ad, id[:]...)
	return append(ad, epoch...)
}

// Seal encrypts the record of a message with the current epoch and returns
// its id and blob (api.HistoryRecord): epoch id (8 bytes, big endian) ||
// nonce (12) || AES-256-GCM(HKDF(epoch key, "hush history v1 record"),
// nonce, JSON plaintext, AD = "hush history v1 record" || record id ||
// epoch id). A record whose blob would exceed api.MaxHistoryRecordBytes is
// refused.
func (r *Keyring) Seal(rec *Record) (RecordID, []byte, error) {
	if err := rec.check(); err != nil {
		return RecordID{}, nil, fmt.Errorf("history: %w", err)
	}
	pt, err := json.Marshal(recordJSON{Peer: rec.Peer, Outgoing: rec.Outgoing, Device: rec.Device,
		ID: rec.ID[:], SentAt: rec.SentAt.UnixMilli(), Body: rec.Body})
	if err != nil {
		return RecordID{}, nil, err
	}
	if n := len(pt) + RecordOverhead; n > api.MaxHistoryRecordBytes {
		return RecordID{}, nil, fmt.Errorf("history: the record would be %d bytes, the most is %d", n, api.MaxHistoryRecordBytes)
	}
	cur := r.Current()
	id := r.RecordID(rec.Peer, rec.Outgoing, rec.ID)
	blob := make([]byte, epochIDSize+nonceSize, len(pt)+RecordOverhead)
	binary.BigEndian.PutUint64(blob, uint64(cur.ID))
	rand.Read(blob[epochIDSize:])
	blob = r.aeads[cur.ID].Seal(blob, blob[epochIDSize:], pt, recordAD(id, blob[:epochIDSize]))
	return id, blob, nil
}

// ErrRecord is the one error of Open for a record that does not open: not
// made with this keyring's key, altered, moved to another id, or
// malformed.
var ErrRecord = errors.New("history: the record could not be opened")

// ErrUnknownEpoch is the error of Open for a record written with an epoch
// the keyring does not hold (yet: a newer epoch may still be on its way
// from another device, or the device was removed before it).
var ErrUnknownEpoch = errors.New("history: the record is of an epoch this device does not hold")

// EpochOf returns the epoch id a blob says it was written with, without
// opening it (ok false if the blob is too short).
func EpochOf(blob []byte) (EpochID, bool) {
	if len(blob) < epochIDSize {
		return 0, false
	}
	return EpochID(binary.BigEndian.Uint64(blob)), true
}

// Open decrypts a record from the server. It checks the tag, then that the
// id computed from the plaintext (peer, direction, content id) is id: a
// record the server moved to another id or altered is refused. Any failure
// is ErrRecord, except a record of an epoch the keyring lacks
// (ErrUnknownEpoch).
func (r *Keyring) Open(id RecordID, blob []byte) (*Record, error) {
	if len(blob) < RecordOverhead || len(blob) > api.MaxHistoryRecordBytes {
		return nil, ErrRecord
	}
	epoch, _ := EpochOf(blob)
	aead, ok := r.aeads[epoch]
	if !ok {
		return nil, ErrUnknownEpoch
	}
	pt, err := aead.Open(nil, blob[epochIDSize:epochIDSize+nonceSize], blob[epochIDSize+nonceSize:], recordAD(id, blob[:epochIDSize]))
	if err != nil {
		return nil, ErrRecord
	}
	rec, err := parseRecord(pt)
	if err != nil {
		return nil, ErrRecord
	}
	if again := r.RecordID(rec.Peer, rec.Outgoing, rec.ID); !hmac.Equal(again[:], id[:]) {
		return nil, ErrRecord
	}
	return rec, nil
}

// parseRecord decodes a record's plaintext strictly.
func parseRecord(pt []byte) (*Record, error) {
	var j recordJSON
	if err := strictjson.Unmarshal(pt, &j); err != nil {
		return nil, err
	}
	if len(j.ID) != content.IDSize {
		return nil, errors.New("the content id is not 16 bytes")
	}
	rec := &Record{Peer: j.Peer, Outgoing: j.Outgoing, Device: j.Device, ID: content.ID(j.ID),
		SentAt: time.UnixMilli(j.SentAt), Body: j.Body}
	if err := rec.check(); err != nil {
		return nil, err
	}
	return rec, nil
}
