// Package store defines what hushd keeps on disk, behind one small
// interface, [Store], so that backends can be swapped: sqlitestore (the
// default, embedded) and pgstore (PostgreSQL, shared by the nodes of a
// cluster). The conformance suite in
// storetest runs the same tests against every backend.
//
// Every method that changes something returns only once the change is
// durable (on disk, fsynced). Methods are safe for concurrent use.
// Validation of keys and signatures is the caller's job; a Store checks
// only what needs its data (uniqueness, limits, existence).
//
// Nothing here assumes SQLite: every multi-step change is one method (one
// transaction), one-time keys are handed out by TakeBundle atomically, and
// ids come from the store. On a shared backend (pgstore) SetNotify reports
// only the node's own commits; the nodes tell each other about commits and
// cache invalidations through server.Cluster (internal/server/cluster,
// NATS), and a mailbox's ids must become visible in increasing order on
// every node (pgstore locks the recipient while taking ids). A backend
// that cannot reach its database returns errors wrapping ErrUnavailable.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Errors callers branch on.
var (
	ErrNotFound        = errors.New("store: not found")
	ErrUsernameTaken   = errors.New("store: username taken")
	ErrTooManyDevices  = errors.New("store: too many devices")
	ErrMailboxFull     = errors.New("store: mailbox full")
	ErrNotSecretDevice = errors.New("store: not the secret device")
	ErrNoKeys          = errors.New("store: no prekeys")
	// ErrConflict: the account identity is set to another key already,
	// or a versioned write lost its race.
	ErrConflict = errors.New("store: conflict")
	// ErrHistoryFull: the account's history holds its most records.
	ErrHistoryFull = errors.New("store: history full")
	// ErrTooManyLinks: the account has its most open links.
	ErrTooManyLinks = errors.New("store: too many open links")
	// ErrLinkState: the link is not in the state the operation needs.
	ErrLinkState = errors.New("store: link not in that state")
	ErrClosed    = errors.New("store: closed")
	// ErrUnavailable wraps a failure to reach a backend that runs
	// elsewhere (PostgreSQL): the caller may retry later.
	ErrUnavailable = errors.New("store: unavailable")
)

// DeviceRef names a device: an account and the device's number in it.
type DeviceRef struct {
	Account int64
	Device  uint32
}

// Account is a person.
type Account struct {
	ID           int64
	Username     string // unique, lower case
	DisplayName  string
	PasswordHash string // encoded Argon2id hash (see internal/server)
	// SecretDevice is the device holding the identity for secret
	// conversations, 0 if none.
	SecretDevice uint32
	IdentityKey  []byte // serialized, nil if no secret device
	Created      int64  // Unix ms
	// AccountIdentityKey is the identity of ordinary conversations
	// (docs/multidevice.md), set once; nil until then.
	AccountIdentityKey []byte
}

// Device is one device of an account.
type Device struct {
	Ref            DeviceRef
	Name           string
	TokenHash      []byte // SHA-256 of the device's secret token
	RegistrationID uint32
	// OrdinaryRegistrationID is the device's registration id of ordinary
	// conversations, 0 while it has no ordinary prekeys: a device is
	// "ordinary" (reachable in ordinary conversations) when it is not 0.
	OrdinaryRegistrationID uint32
	Created                int64 // Unix ms
	LastSeen               int64 // Unix ms
}

// NewAccount is what CreateAccount needs.
type NewAccount struct {
	Username     string
	DisplayName  string
	PasswordHash string
	Created      int64
}

// NewDevice is what a device starts with.
type NewDevice struct {
	Name      string
	TokenHash []byte
	Created   int64
}

// SignedKey is a signed prekey (EC or Kyber), serialized.
type SignedKey struct {
	ID        uint32
	PublicKey []byte
	Signature []byte
}

// PreKey is a one-time EC prekey, serialized.
type PreKey struct {
	ID        uint32
	PublicKey []byte
}

// Keys is a prekey upload. A nil or empty part is left as it is; a present
// part replaces what is stored of its kind.
type Keys struct {
	SignedPreKey    *SignedKey
	PreKeys         []PreKey
	KyberPreKeys    []SignedKey
	KyberLastResort *SignedKey
}

// KeyCounts tells how many one-time keys a device has left.
type KeyCounts struct {
	PreKeys         int
	KyberPreKeys    int
	SignedPreKeyID  *uint32
	KyberLastResort *uint32
}

// Bundle is what TakeBundle hands out.
type Bundle struct {
	Device          uint32
	RegistrationID  uint32
	IdentityKey     []byte
	SignedPreKey    SignedKey
	PreKey          *PreKey   // nil when none is left
	KyberPreKey     SignedKey // one-time, or the last resort
	KyberLastResort bool
}

// Message is a queued message. The store never looks inside Content.
type Message struct {
	// ID is assigned by the store, increasing in commit order. It orders a
	// mailbox and never leaves the server: it would tell a sender how much
	// traffic the server carries.
	ID int64
	// PublicID is the id clients see (in send results, deliveries and
	// acks), chosen by the caller: random, so that it reveals nothing.
	// Unique per recipient device in practice, not checked by the store.
	PublicID  int64
	To        DeviceRef
	From      DeviceRef // the sender's account, not its username: the server looks that up
	Type      int32
	Content   []byte
	Timestamp int64 // Unix ms
	ExpiresAt int64 // Unix ms
	// Blobs are the ids of the blobs the message carries (see
	// [BlobStore]); never set on what Pending returns.
	Blobs [][]byte
	// Franking is the message's franking (docs/franking.md), nil when the
	// sender sent no commitment.
	Franking *Franking
	// Prev, when HasPrev, is the id of the newest message of the mailbox
	// when this one was committed (0: it was empty); a store may set it on
	// what it hands its commit hook. A session that has sent or queued
	// every message up to Prev can take this one without reading the store:
	// any message between them was deleted before the commit.
	Prev    int64
	HasPrev bool
}

// Franking is what the server keeps of a message's franking: the sender's
// commitment and the reporting tag the server made under its key KeyID.
// Neither tells anything of the content without the franking key, which
// only the recipient holds.
type Franking struct {
	Commitment []byte // 32 bytes
	Tag        []byte // 32 bytes
	KeyID      uint32
}

// frankingSize is the length of an encoded Franking.
const frankingSize = 32 + 32 + 4

// EncodeFranking encodes f for a backend's one column: commitment, tag,
// key id (big-endian); nil for nil.
func EncodeFranking(f *Franking) []byte {
	if f == nil {
		return nil
	}
	b := make([]byte, 0, frankingSize)
	b = append(b, f.Commitment...)
	b = append(b, f.Tag...)
	return binary.BigEndian.AppendUint32(b, f.KeyID)
}

// DecodeFranking decodes what EncodeFranking wrote; nil for nil.
func DecodeFranking(b []byte) (*Franking, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) != frankingSize {
		return nil, fmt.Errorf("store: franking of %d bytes", len(b))
	}
	return &Franking{Commitment: b[:32:32], Tag: b[32:64:64], KeyID: binary.BigEndian.Uint32(b[64:])}, nil
}

// Report is an abuse report (docs/franking.md): the franked messages a
// recipient opened, as the server verified them. The store keeps Body, the
// report as the server encodes it, and never looks inside; Tag, the
// reporting tag of the reported message, is unique: a message is reported
// once.
type Report struct {
	ID       int64 // set by the store, increasing
	Reporter DeviceRef
	Created  int64 // Unix ms
	Tag      []byte
	Body     []byte
}

// EnqueueResult is the outcome for one message of an EnqueueBatch.
type EnqueueResult struct {
	ID  int64
	Err error // nil, ErrMailboxFull, ErrNotFound (no such device) or ErrBlobUnusable
}

// FanoutAccount is one account's part of a Fanout: the devices the
// sender encrypted to, each with the ordinary registration id it encrypted
// for (docs/multidevice.md section 1).
type FanoutAccount struct {
	Account int64
	// Except is the sending device when Account is the sender's own
	// account (0 otherwise): it is not expected among the devices, and
	// full mailboxes of this account never fail the send.
	Except uint32
	// Devices maps each device to the ordinary registration id the
	// sender encrypted for; 0 names the device without one (a group send:
	// one SenderKeyMessage for every device, no registration id checked).
	Devices map[uint32]uint32
}

// Fanout is one ordinary message to every device of some accounts.
type Fanout struct {
	Accounts []FanoutAccount
	// Messages go to devices of Accounts, at most one per device; an
	// account in Accounts may have none (the recipient blocks the sender:
	// its devices are checked, nothing is stored).
	Messages               []*Message
	MaxQueue, MaxPerSender int
	// SkipFull: a full mailbox never fails the fanout, even when every
	// mailbox of an account is full (a group send: one member who never
	// reads must not stop the group).
	SkipFull bool
	// History, if not empty, is deposited for HistoryAccount in the same
	// transaction, as DepositHistory does with MaxHistory.
	History        []HistoryRecord
	HistoryAccount int64
	MaxHistory     int
}

// HistoryRecord is one encrypted history record of an account
// (docs/multidevice.md section 3). The store never looks inside Blob.
type HistoryRecord struct {
	// Seq orders an account's records: set by the store, increasing in
	// commit order within the account.
	Seq  int64
	ID   []byte // chosen by the clients, unique per account
	Blob []byte
}

// Mismatch is one account's difference between a Fanout's devices and
// its current devices with ordinary keys. Lists are in device order.
type Mismatch struct {
	Account int64
	Missing []uint32 // ordinary devices the fanout left out
	Extra   []uint32 // devices the fanout named that are not ordinary devices of the account
	Stale   []uint32 // devices whose ordinary registration id is not the one named
}

// MismatchError refuses a Fanout whose devices are not the accounts'
// current ones; nothing was stored.
type MismatchError struct {
	Accounts []Mismatch // in the order of Fanout.Accounts, only those that differ
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("store: device mismatch in %d accounts", len(e.Accounts))
}

// Compare tells how fa's devices differ from have, the account's current
// ordinary devices and their registration ids (fa.Except is left out of
// have; a device named with registration id 0 is not compared); ok is
// true when they are the same. Backends call it inside the
// transaction of EnqueueFanout.
func Compare(fa FanoutAccount, have map[uint32]uint32) (m Mismatch, ok bool) {
	m.Account = fa.Account
	for d, r := range have {
		if d == fa.Except {
			continue
		}
		if got, named := fa.Devices[d]; !named {
			m.Missing = append(m.Missing, d)
		} else if got != 0 && got != r {
			m.Stale = append(m.Stale, d)
		}
	}
	for d := range fa.Devices {
		if _, ok := have[d]; !ok || d == fa.Except {
			m.Extra = append(m.Extra, d)
		}
	}
	slices.Sort(m.Missing)
	slices.Sort(m.Extra)
	slices.Sort(m.Stale)
	return m, len(m.Missing)+len(m.Extra)+len(m.Stale) == 0
}

// LinkState is where a link stands (docs/multidevice.md section 2).
type LinkState int

// Link states, in the order they come.
const (
	LinkWaiting LinkState = iota // opened, no hello yet
	LinkHelloed                  // the new device said hello
	LinkBoxed                    // the old device left the box
	LinkDone                     // the new device exists; the box is gone
)

// Link is a short-lived record that relays the linking of a new device.
// The store keeps what it is given and never looks inside.
type Link struct {
	ID        []byte // 16 bytes
	Account   int64  // the account that opened it
	ClaimHash []byte // SHA-256 of the claim token
	ExpiresAt int64  // Unix ms
	State     LinkState
	// HelloEphemeral and HelloMAC are set from LinkHelloed on.
	HelloEphemeral, HelloMAC []byte
	// BoxEphemeral and Box are set in LinkBoxed only.
	BoxEphemeral, Box []byte
	Device            uint32 // the new device, in LinkDone
}

// Store is hushd's persistent state.
type Store interface {
	// CreateAccount creates an account with its first device (number 1).
	// It fails with ErrUsernameTaken.
	CreateAccount(ctx context.Context, a NewAccount, d NewDevice) (Account, Device, error)
	// AccountByUsername and AccountByID fail with ErrNotFound.
	AccountByUsername(ctx context.Context, username string) (Account, error)
	AccountByID(ctx context.Context, id int64) (Account, error)

	// AddDevice gives the account a new device with the next unused number.
	// It fails with ErrTooManyDevices when the account has max devices.
	AddDevice(ctx context.Context, account int64, d NewDevice, max int) (Device, error)
	Device(ctx context.Context, ref DeviceRef) (Device, error)
	Devices(ctx context.Context, account int64) ([]Device, error)
	// SetDeviceToken replaces a device's credential hash.
	SetDeviceToken(ctx context.Context, ref DeviceRef, tokenHash []byte) error
	// TouchDevice records that the device was seen at t (Unix ms). It may be
	// lazy: it need not be durable when it returns.
	TouchDevice(ctx context.Context, ref DeviceRef, t int64) error
	// RemoveDevice deletes a device, its keys (secret and ordinary) and its
	// mailbox. If it was the
	// secret device, the account loses its identity key.
	RemoveDevice(ctx context.Context, ref DeviceRef) error

	// MakeSecretDevice makes ref the account's secret device with the given
	// identity key and registration id, removes every prekey of the
	// account, and then stores keys (which may be nil) for ref, all in one
	// transaction.
	MakeSecretDevice(ctx context.Context, ref DeviceRef, identityKey []byte, registrationID uint32, keys *Keys) error
	// SetKeys stores a prekey upload for ref, which must be the secret
	// device (else ErrNotSecretDevice).
	SetKeys(ctx context.Context, ref DeviceRef, keys Keys) error
	KeyCounts(ctx context.Context, ref DeviceRef) (KeyCounts, error)
	// TakeBundle returns the bundle of ref, the account's secret device,
	// removing the one-time EC and Kyber prekeys it hands out, atomically:
	// no two calls get the same one-time key. It fails with ErrNotFound
	// when ref is not the secret device and with ErrNoKeys when it lacks a
	// signed prekey or any Kyber prekey.
	TakeBundle(ctx context.Context, ref DeviceRef) (Bundle, error)

	// SetAccountIdentity sets the account's identity key of ordinary
	// conversations, once: it succeeds when none is set or the same key is
	// set, and fails with ErrConflict when another key is set, ErrNotFound
	// when there is no such account.
	SetAccountIdentity(ctx context.Context, account int64, key []byte) error
	// SetOrdinaryKeys stores ordinary prekeys of ref (same part semantics
	// as SetKeys) and its ordinary registration id, for any device. A
	// device that has no ordinary keys yet must get a signed prekey and a
	// last-resort Kyber prekey in this upload (else ErrNoKeys), so that an
	// ordinary device always has a bundle. ErrNotFound: no such device.
	SetOrdinaryKeys(ctx context.Context, ref DeviceRef, registrationID uint32, keys Keys) error
	OrdinaryKeyCounts(ctx context.Context, ref DeviceRef) (KeyCounts, error)
	// TakeOrdinaryBundles returns a bundle of each ordinary device of
	// account (only those listed, when devices is not nil), in device
	// order, taking their one-time keys as TakeBundle does, in one
	// transaction. IdentityKey is the account identity key. It returns an
	// empty list when no device matches.
	TakeOrdinaryBundles(ctx context.Context, account int64, devices []uint32) ([]Bundle, error)
	// EnqueueFanout stores the messages of f in one transaction, all or
	// nothing, and returns once they are durable, one result per message.
	// First, for each account of f, the devices named must be the
	// account's current ordinary devices (less Except) with the same
	// registration ids, else it fails with *MismatchError. A message to a
	// full mailbox (as EnqueueBatch decides) is skipped, its result
	// ErrMailboxFull; but if every message to an account (other than the
	// Except one's) would be skipped, EnqueueFanout fails with
	// ErrMailboxFull, unless f.SkipFull. Then f.History is deposited
	// (ErrHistoryFull). A message naming a blob it may not carry fails
	// the whole fanout with ErrBlobUnusable. Nothing is stored when it
	// fails.
	EnqueueFanout(ctx context.Context, f Fanout) ([]EnqueueResult, error)

	// DepositHistory stores records for account in one transaction. A
	// record whose id the account has already (or that repeats an id of
	// recs) is ignored: the first copy stays. It fails with ErrHistoryFull
	// when the new records would take the account past max records, and
	// then stores nothing. It returns how many records were new.
	DepositHistory(ctx context.Context, account int64, recs []HistoryRecord, max int) (int, error)
	// History returns the account's records with a seq greater than
	// after, in seq order: up to limit of them, and fewer when their blobs
	// reach maxBytes (but at least one). more says whether records follow.
	History(ctx context.Context, account int64, after int64, limit, maxBytes int) (recs []HistoryRecord, more bool, err error)
	// SetRecovery replaces the account's recovery blob when version is the
	// stored version plus one (1 when none is stored), else fails with
	// ErrConflict.
	SetRecovery(ctx context.Context, account int64, version int64, blob []byte) error
	// Recovery returns the account's recovery blob and its version, or
	// ErrNotFound.
	Recovery(ctx context.Context, account int64) (version int64, blob []byte, err error)

	// CreateLink stores a new link in LinkWaiting. It fails with
	// ErrConflict when a link with that id exists (expired or not), and
	// with ErrTooManyLinks when the account has maxOpen links that are
	// neither expired (at now) nor done.
	CreateLink(ctx context.Context, l Link, maxOpen int, now int64) error
	// Link returns the link with that id, unless it expired before now
	// (ErrNotFound).
	Link(ctx context.Context, id []byte, now int64) (Link, error)
	// LinkHello moves an unexpired link from LinkWaiting to LinkHelloed
	// with the new device's ephemeral key and MAC: ErrNotFound when there
	// is no such link (or it expired), ErrLinkState when it is not waiting.
	LinkHello(ctx context.Context, id []byte, now int64, ephemeral, mac []byte) error
	// SetLinkBox moves account's unexpired link from LinkHelloed to
	// LinkBoxed with the box: ErrNotFound when account has no such link,
	// ErrLinkState when it is not in LinkHelloed.
	SetLinkBox(ctx context.Context, id []byte, account int64, now int64, ephemeral, box []byte) error
	// LinkDevice completes an unexpired link in LinkBoxed, in one
	// transaction: it gives the link's account a new device (as AddDevice,
	// ErrTooManyDevices), stores its ordinary keys (as SetOrdinaryKeys),
	// and moves the link to LinkDone with the device, dropping the box.
	// ErrNotFound: no such link; ErrLinkState: it is not in LinkBoxed.
	LinkDevice(ctx context.Context, id []byte, now int64, d NewDevice, maxDevices int, registrationID uint32, keys Keys) (Device, error)
	// DeleteLink deletes account's link with that id (ErrNotFound).
	DeleteLink(ctx context.Context, id []byte, account int64) error

	// Block makes blocker drop what blocked sends, and deletes what blocked
	// has queued for any device of blocker, in one transaction; Unblock
	// undoes the first part.
	Block(ctx context.Context, blocker, blocked int64) error
	Unblock(ctx context.Context, blocker, blocked int64) error
	// Blocked lists the accounts blocker has blocked.
	Blocked(ctx context.Context, blocker int64) ([]int64, error)

	// EnqueueBatch stores messages (ID left zero) and returns once they are
	// durable, one result per message, in order. A message naming a blob
	// it may not carry gets ErrBlobUnusable (see BlobStore). Messages of one batch get
	// increasing ids in batch order. A device whose queue holds maxQueue
	// messages, or maxPerSender messages from the message's sender
	// account, gets ErrMailboxFull: so that one sender cannot fill a
	// mailbox for everyone.
	EnqueueBatch(ctx context.Context, msgs []*Message, maxQueue, maxPerSender int) ([]EnqueueResult, error)
	// Pending returns up to limit unexpired messages of to with an id
	// greater than after, in id order.
	Pending(ctx context.Context, to DeviceRef, after int64, now int64, limit int) ([]*Message, error)
	// Ack deletes delivered messages of to, named by their PublicID. Ids
	// that are not (or no longer) queued for to are ignored. Ack may be lazy: a message acknowledged
	// just before a crash may be delivered again, never lost.
	Ack(ctx context.Context, to DeviceRef, ids []int64) error
	// DeleteExpired removes messages and links that expired before now
	// and returns how many messages.
	DeleteExpired(ctx context.Context, now int64) (int, error)
	// QueueDepth returns how many messages are queued in all.
	QueueDepth(ctx context.Context) (int64, error)

	// AddReport stores an abuse report (ID left zero) and returns its id.
	// It fails with ErrConflict when a report with the same Tag exists.
	AddReport(ctx context.Context, r Report) (int64, error)
	// Reports returns up to limit reports with an id greater than after,
	// in id order.
	Reports(ctx context.Context, after int64, limit int) ([]Report, error)
	// Report returns the report with that id, or ErrNotFound.
	Report(ctx context.Context, id int64) (Report, error)

	// SetNotify installs a function called after each commit with the
	// messages that became durable, in id order. It must not block.
	SetNotify(func(msgs []*Message))

	BlobStore

	// Close waits for pending writes and releases the store.
	Close() error
}
