// Package api holds the JSON request and response types of hushd's HTTP and
// WebSocket API, version 1, shared by the server (internal/server/httpapi)
// and its clients (internal/apiclient). docs/api.md describes every endpoint.
//
// Byte fields ([]byte) travel as standard base64 with padding, as
// encoding/json writes them. End-to-end payloads ([SendMessage.Content]) are
// opaque to the server: it stores and forwards them and never parses them.
//
// # Version history
//
//   - 1: 2026-11-25, first version: accounts, devices, secret device,
//     directory, prekey directory, mailboxes over HTTP and WebSocket, blocks.
//   - 1: 2026-11-26, SendMessage.RecipientIdentity (optional; older servers
//     ignore it): secret-conversation messages go only between secret
//     devices, to the identity key the sender expects.
//   - 1: 2026-12-02, the secret-device rule holds for every message of type
//     2 or 3 (Signal protocol), with or without RecipientIdentity.
package api

// Version is the API version served under /v1.
const Version = 1

// ValidUsername reports whether u is a valid username: MinUsernameLen to
// MaxUsernameLen characters from a-z, 0-9 and '_', starting with a letter.
// Usernames are compared as given; clients should lower-case what people
// type. The server and the clients (for usernames read from peers) check
// with this one function.
func ValidUsername(u string) bool {
	if len(u) < MinUsernameLen || len(u) > MaxUsernameLen || u[0] < 'a' || u[0] > 'z' {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Limits every client may rely on.
const (
	MaxUsernameLen    = 32
	MinUsernameLen    = 3
	MinPasswordLen    = 8
	MaxPasswordLen    = 256
	MaxDisplayNameLen = 64
	MaxDeviceNameLen  = 64
	// MaxContentBytes is the largest message content, before base64.
	MaxContentBytes = 256 << 10
	// MaxKeysPerUpload is the most one-time keys of one kind in one upload.
	MaxKeysPerUpload = 100
	// MaxDevices is the most devices an account may have at once.
	MaxDevices = 16
	// KeysLowMark: below this many one-time keys of a kind after a bundle
	// fetch, the server sends the secret device a FrameKeysLow.
	KeysLowMark = 25
)

// Error is the body of every error response: {"error": {...}}.
type Error struct {
	Err ErrorBody `json:"error"`
}

// ErrorBody says what went wrong. Code is stable and meant for programs;
// Message is for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Mismatches is set with CodeDeviceMismatch.
	Mismatches []Mismatch `json:"mismatches,omitempty"`
}

// Error codes.
const (
	CodeBadRequest      = "bad_request"       // 400: malformed JSON, field out of range
	CodeBadSignature    = "bad_signature"     // 400: a prekey signature does not verify
	CodeUnauthorized    = "unauthorized"      // 401: missing or wrong credential
	CodeForbidden       = "forbidden"         // 403: authenticated, but not allowed
	CodeNotFound        = "not_found"         // 404
	CodeUsernameTaken   = "username_taken"    // 409
	CodeMailboxFull     = "mailbox_full"      // 409: recipient device's queue is full
	CodeNotSecretDevice = "not_secret_device" // 409: operation needs the secret device
	// CodeStaleSecretDevice (409) refuses a secret-conversation message
	// whose recipient device is no longer the recipient's secret device, or
	// whose identity key changed: fetch the directory entry again.
	CodeStaleSecretDevice = "stale_secret_device"
	CodeTooManyDevices    = "too_many_devices" // 409
	CodeTooLarge          = "too_large"        // 413
	CodeRateLimited       = "rate_limited"     // 429
	CodeUnavailable       = "unavailable"      // 503: shutting down
	CodeInternal          = "internal"         // 500
)

// Register is the body of POST /v1/accounts.
type Register struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	DisplayName string `json:"displayName,omitempty"`
	DeviceName  string `json:"deviceName,omitempty"`
}

// AddDevice is the body of POST /v1/devices: a new device for an existing
// account, authorized by the account's password.
type AddDevice struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceName string `json:"deviceName,omitempty"`
}

// Login is the body of POST /v1/login: a fresh credential for an existing
// device, authorized by the account's password. The old credential stops
// working.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
	DeviceID uint32 `json:"deviceId"`
}

// DeviceCredential answers register, add-device and login. Credential goes
// into every later request as "Authorization: Bearer <credential>"; the
// server keeps only its hash and cannot show it again.
type DeviceCredential struct {
	AccountID  int64  `json:"accountId"`
	Username   string `json:"username"`
	DeviceID   uint32 `json:"deviceId"`
	Credential string `json:"credential"`
}

// Account answers GET /v1/account.
type Account struct {
	AccountID      int64   `json:"accountId"`
	Username       string  `json:"username"`
	DisplayName    string  `json:"displayName"`
	DeviceID       uint32  `json:"deviceId"` // the calling device
	SecretDeviceID *uint32 `json:"secretDeviceId"`
	IdentityKey    []byte  `json:"identityKey"`
	// AccountIdentityKey is the account identity key of ordinary
	// conversations, nil until the first device sets it. Since 2026-12-02.
	AccountIdentityKey []byte `json:"accountIdentityKey"`
}

// Device describes one device of the caller's own account.
type Device struct {
	ID       uint32 `json:"id"`
	Name     string `json:"name"`
	Secret   bool   `json:"secret"`
	Ordinary bool   `json:"ordinary"` // it has published ordinary keys (since 2026-12-02)
	Created  int64  `json:"created"`  // Unix milliseconds
	LastSeen int64  `json:"lastSeen"` // Unix milliseconds, day precision
}

// Devices answers GET /v1/devices.
type Devices struct {
	Devices []Device `json:"devices"`
}

// MakeSecret is the body of PUT /v1/devices/self/secret: the calling device
// becomes the account's secret device with a new identity key. All prekeys
// of the account are removed; Keys, if given, are uploaded in the same step
// (verified against the new identity key), so that the device can be
// reached at once.
type MakeSecret struct {
	RegistrationID uint32     `json:"registrationId"`
	IdentityKey    []byte     `json:"identityKey"`
	Keys           *KeyUpload `json:"keys,omitempty"`
}

// DirectoryEntry answers GET /v1/directory/{username}.
type DirectoryEntry struct {
	Username    string       `json:"username"`
	DisplayName string       `json:"displayName"`
	Devices     []PeerDevice `json:"devices"`
	// CanReceiveSecret is true when the secret device has an identity key, a
	// signed prekey and a Kyber prekey, so that a bundle can be fetched.
	CanReceiveSecret bool    `json:"canReceiveSecret"`
	SecretDeviceID   *uint32 `json:"secretDeviceId"`
	IdentityKey      []byte  `json:"identityKey"`
	// AccountIdentityKey is the account identity key of ordinary
	// conversations (nil until set). Since 2026-12-02.
	AccountIdentityKey []byte `json:"accountIdentityKey"`
}

// PeerDevice is what others may see of a device.
type PeerDevice struct {
	ID       uint32 `json:"id"`
	Secret   bool   `json:"secret"`
	Ordinary bool   `json:"ordinary"` // it has published ordinary keys (since 2026-12-02)
}

// SignedKey is a signed Curve25519 prekey or a Kyber1024 prekey: the
// serialized public key (33 or 1569 bytes) and the identity key's XEdDSA
// signature over exactly those bytes.
type SignedKey struct {
	KeyID     uint32 `json:"keyId"`
	PublicKey []byte `json:"publicKey"`
	Signature []byte `json:"signature"`
}

// PreKey is a one-time Curve25519 prekey (33 bytes).
type PreKey struct {
	KeyID     uint32 `json:"keyId"`
	PublicKey []byte `json:"publicKey"`
}

// KeyUpload is the body of PUT /v1/keys. Each present part replaces what
// the server has of that kind (as Signal-Server does); absent parts are left
// alone. Every signature is checked against the account's identity key.
type KeyUpload struct {
	SignedPreKey    *SignedKey  `json:"signedPreKey,omitempty"`
	PreKeys         []PreKey    `json:"preKeys,omitempty"`
	KyberPreKeys    []SignedKey `json:"kyberPreKeys,omitempty"`
	KyberLastResort *SignedKey  `json:"kyberLastResort,omitempty"`
}

// KeyCounts answers GET /v1/keys: how many one-time keys remain, so that
// the client knows when to upload more.
type KeyCounts struct {
	PreKeys         int     `json:"preKeys"`
	KyberPreKeys    int     `json:"kyberPreKeys"`
	SignedPreKeyID  *uint32 `json:"signedPreKeyId"`
	KyberLastResort *uint32 `json:"kyberLastResortId"`
}

// Bundle answers GET /v1/keys/{username}[/{deviceId}], in the shape the
// interop peers use. One one-time EC prekey and one one-time Kyber prekey
// are consumed; when no one-time Kyber key is left the last-resort one is
// returned (and not consumed); when no one-time EC key is left, PreKeyID and
// PreKey are null.
type Bundle struct {
	RegistrationID        uint32  `json:"registrationId"`
	DeviceID              uint32  `json:"deviceId"`
	IdentityKey           []byte  `json:"identityKey"`
	SignedPreKeyID        uint32  `json:"signedPreKeyId"`
	SignedPreKey          []byte  `json:"signedPreKey"`
	SignedPreKeySignature []byte  `json:"signedPreKeySignature"`
	PreKeyID              *uint32 `json:"preKeyId"`
	PreKey                []byte  `json:"preKey"`
	KyberPreKeyID         *uint32 `json:"kyberPreKeyId"`
	KyberPreKey           []byte  `json:"kyberPreKey"`
	KyberPreKeySignature  []byte  `json:"kyberPreKeySignature"`
}

// Message types the server knows: the Signal-protocol messages of secret
// conversations (libsignal's CiphertextMessageType values, as in package
// wire). The hush client decrypts these types and no other; the server
// accepts them only from the sender's secret device to the recipient's
// secret device (see [SendMessage.RecipientIdentity]). Other types are
// stored and forwarded unchecked, reserved for later kinds of messages.
const (
	TypeSignal int32 = 2 // SignalMessage (a session exists)
	TypePreKey int32 = 3 // PreKeySignalMessage (starts a session)
)

// IsSecret reports whether a message of type t belongs to a secret
// conversation: whether the secret-device rule applies to it.
func IsSecret(t int32) bool { return t == TypeSignal || t == TypePreKey }

// SendMessage is the body of POST /v1/messages/{username}/{deviceId}, and
// the payload of a WebSocket "send" frame.
type SendMessage struct {
	// Type is the end-to-end message type (e.g. 2 SignalMessage, 3
	// PreKeySignalMessage); the server only stores it.
	Type int32 `json:"type"`
	// Content is the opaque ciphertext, at most MaxContentBytes.
	Content []byte `json:"content"`
	// ExpiresIn, in seconds, shortens the undelivered message's lifetime
	// below the server's default (a disappearing-message hint). 0: default.
	ExpiresIn int64 `json:"expiresIn,omitempty"`
	// Commitment is the franking commitment (FrankingCommitmentSize
	// bytes, docs/franking.md); the server answers it with a reporting tag
	// delivered with the message. Since 2026-12-02 (issue 11); before, a
	// field frankingTag was reserved and refused.
	Commitment []byte `json:"frankingCommitment,omitempty"`
	// Blobs names uploaded blobs this message carries (at most
	// MaxBlobsPerMessage): the recipient device may download them.
	Blobs []string `json:"blobs,omitempty"`
	// RecipientIdentity is the identity key (33 bytes) the sender's session
	// has for the recipient. A message of a secret type ([IsSecret]) or
	// with RecipientIdentity set is a secret-conversation message: the
	// server accepts it only if the sending device is its account's secret
	// device (else 409 not_secret_device) and the recipient device is the
	// recipient's secret device, with this identity key when it is given
	// (else 409 stale_secret_device), as Signal-Server refuses messages for
	// stale devices. Since API version 1, 2026-11-26; the rule holds for
	// every message of a secret type since 2026-12-02, whatever the
	// request carries.
	RecipientIdentity []byte `json:"recipientIdentity,omitempty"`
}

// SendResult answers a send: the server id and timestamp the message got.
// It is only sent once the message is on disk. Server ids are opaque, 63
// random bits (since 2026-12-02; before, a counter): compare them only for
// equality.
type SendResult struct {
	ID        int64 `json:"id"`
	Timestamp int64 `json:"timestamp"` // Unix milliseconds
}

// Message is a queued message as delivered to its recipient device.
type Message struct {
	ID         int64  `json:"id"`
	Timestamp  int64  `json:"timestamp"` // Unix milliseconds, when the server accepted it
	From       string `json:"from"`
	FromDevice uint32 `json:"fromDevice"`
	Type       int32  `json:"type"`
	Content    []byte `json:"content"`
	ExpiresAt  int64  `json:"expiresAt"` // Unix milliseconds
	// Franking is set when the sender sent a commitment (issue 11).
	Franking *Franking `json:"franking,omitempty"`
}

// Blocks answers GET /v1/blocks.
type Blocks struct {
	Usernames []string `json:"usernames"`
}

// WebSocket frames. Every frame is one JSON text message with a "type".
const (
	FrameMessage = "message" // server → client: Msg
	FrameEmpty   = "empty"   // server → client: the backlog present at connect has been sent
	// FrameKeysLow (server → client, no payload) tells the secret device
	// that a bundle fetch left it fewer than KeysLowMark one-time keys of
	// a kind: look at GET /v1/keys and upload more. Since 2026-12-02; it
	// also tells any device that an ordinary bundle fetch left it fewer
	// than KeysLowMark ordinary one-time keys (GET /v1/ordinary/keys).
	FrameKeysLow = "keys_low"
	FrameSent    = "sent"  // server → client: ReqID, Result
	FrameError   = "error" // server → client: ReqID (if any), Error
	FrameAck     = "ack"   // client → server: IDs
	FrameSend    = "send"  // client → server: ReqID, To, Device, Send
)

// Frame is one WebSocket message in either direction; which fields are set
// depends on Type.
type Frame struct {
	Type   string       `json:"type"`
	ReqID  uint64       `json:"reqId,omitempty"`
	Msg    *Message     `json:"msg,omitempty"`
	IDs    []int64      `json:"ids,omitempty"`
	To     string       `json:"to,omitempty"`
	Device uint32       `json:"device,omitempty"`
	Send   *SendMessage `json:"send,omitempty"`
	Result *SendResult  `json:"result,omitempty"`
	Error  *ErrorBody   `json:"error,omitempty"`
}

// Ordinary conversations (issue 9; docs/multidevice.md). Since 2026-12-02,
// still version 1: new endpoints and optional fields.

// Envelope types of ordinary conversations: the same Signal-protocol bytes
// as TypeSignal and TypePreKey, between ordinary sessions keyed by the
// account identity. They go only through POST /v1/ordinary/messages.
const (
	TypeOrdinarySignal int32 = 12
	TypeOrdinaryPreKey int32 = 13
)

// IsOrdinary reports whether a message of type t belongs to an ordinary
// conversation.
func IsOrdinary(t int32) bool { return t == TypeOrdinarySignal || t == TypeOrdinaryPreKey }

// Limits of the ordinary-conversation endpoints.
const (
	// MaxHistoryRecordBytes is the largest history record blob.
	MaxHistoryRecordBytes = 96 << 10
	// MaxHistoryPerRequest is the most records in one request (deposit or
	// page).
	MaxHistoryPerRequest = 500
	// MaxRecoveryBlobBytes is the largest recovery blob.
	MaxRecoveryBlobBytes = 64 << 10
	// MaxLinkBoxBytes is the largest provisioning box.
	MaxLinkBoxBytes = 256 << 10
	// MaxOpenLinks is the most unexpired links an account may have open.
	MaxOpenLinks = 3
	// MaxLinkExpiresIn is the longest a link may stay open, in seconds.
	MaxLinkExpiresIn = 600
)

// More error codes.
const (
	// CodeDeviceMismatch (409) refuses an ordinary send whose device lists
	// are not the accounts' current ones; ErrorBody.Mismatches says how.
	CodeDeviceMismatch = "device_mismatch"
	// CodeLinkUsed (409): the link code was used already.
	CodeLinkUsed = "link_used"
	// CodeConflict (409): a versioned write lost a race (PUT /v1/recovery),
	// or the account identity is set already.
	CodeConflict = "conflict"
	// CodeHistoryFull (409): the account's history holds its most records.
	CodeHistoryFull = "history_full"
	// CodeNotReady (409): POST /v1/links/{id}/box before the old device
	// has put the box there: ask again in a second.
	CodeNotReady = "not_ready"
)

// Mismatch is one account's difference between a send's device list and
// the account's current devices with ordinary keys.
type Mismatch struct {
	Username string   `json:"username"`
	Missing  []uint32 `json:"missing,omitempty"` // current devices the send left out
	Extra    []uint32 `json:"extra,omitempty"`   // devices the account no longer has
	Stale    []uint32 `json:"stale,omitempty"`   // devices whose registration id changed
}

// SetAccountIdentity is the body of PUT /v1/ordinary/identity: the account
// identity key (33 bytes), set once per account by its first device.
type SetAccountIdentity struct {
	IdentityKey []byte `json:"identityKey"`
}

// OrdinaryKeyUpload is the body of PUT /v1/ordinary/keys: any device's
// ordinary prekeys, signed by the account identity key. RegistrationID is
// the device's ordinary registration id (1..16383); a change makes the
// device stale for senders.
type OrdinaryKeyUpload struct {
	RegistrationID uint32 `json:"registrationId"`
	KeyUpload
}

// OrdinaryBundles answers GET /v1/ordinary/keys/{username}[?devices=1,3]:
// the account identity key and a bundle of each (asked for) device with
// ordinary keys, one-time keys consumed as for Bundle.
type OrdinaryBundles struct {
	IdentityKey []byte   `json:"identityKey"`
	Devices     []Bundle `json:"devices"`
}

// OrdinaryDeviceMessage is one device's ciphertext in an OrdinarySend.
type OrdinaryDeviceMessage struct {
	Device         uint32 `json:"device"`
	RegistrationID uint32 `json:"registrationId"`
	Type           int32  `json:"type"` // TypeOrdinarySignal or TypeOrdinaryPreKey
	Content        []byte `json:"content"`
	// Commitment: as SendMessage.Commitment, for this device's copy.
	Commitment []byte `json:"frankingCommitment,omitempty"`
}

// OrdinaryRecipient is one account's part of an OrdinarySend: a
// ciphertext for each of its current devices with ordinary keys (for the
// sender's own account: each but the sending device).
type OrdinaryRecipient struct {
	Username string                  `json:"username"`
	Devices  []OrdinaryDeviceMessage `json:"devices"`
}

// OrdinarySend is the body of POST /v1/ordinary/messages: one message to
// every device of each recipient and the sender's other devices, stored
// all or nothing, and optionally the sender's history records of it.
type OrdinarySend struct {
	Recipients []OrdinaryRecipient `json:"recipients"`
	ExpiresIn  int64               `json:"expiresIn,omitempty"`
	History    []HistoryRecord     `json:"history,omitempty"`
	// Blobs: as SendMessage.Blobs, for every device of the send.
	Blobs []string `json:"blobs,omitempty"`
}

// OrdinarySendResult answers an OrdinarySend: server ids in request order
// (per recipient, per device).
type OrdinarySendResult struct {
	Timestamp int64     `json:"timestamp"`
	IDs       [][]int64 `json:"ids"`
}

// HistoryRecord is one encrypted history record: a 16-byte id chosen by
// the clients (the same on every device of the account for the same
// message) and an opaque blob. Seq is set by the server when it lists
// records.
type HistoryRecord struct {
	Seq  int64  `json:"seq,omitempty"`
	ID   []byte `json:"id"`
	Blob []byte `json:"blob"`
}

// HistoryDeposit is the body of POST /v1/history. A record whose id is
// stored already is ignored (the first copy stays).
type HistoryDeposit struct {
	Records []HistoryRecord `json:"records"`
}

// HistoryPage answers GET /v1/history?after=SEQ&limit=N. Next is the seq to
// ask after for the next page; nil when this page is the last.
type HistoryPage struct {
	Records []HistoryRecord `json:"records"`
	Next    *int64          `json:"next"`
}

// Recovery is the body of PUT /v1/recovery and the answer of POST
// /v1/recovery/fetch: the account's recovery blob, opaque to the server.
// A PUT succeeds only when Version is the stored version plus one (1 when
// none is stored).
type Recovery struct {
	Version int64  `json:"version"`
	Blob    []byte `json:"blob"`
}

// RecoveryFetch is the body of POST /v1/recovery/fetch, authorized by the
// password (a person who lost every device has no credential).
type RecoveryFetch struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// NewLink is the body of POST /v1/links: ID is 16 bytes derived from the
// link code (unpadded base64url in paths), ClaimHash the SHA-256 of the
// claim token derived from it.
type NewLink struct {
	ID        []byte `json:"id"`
	ClaimHash []byte `json:"claimHash"`
	ExpiresIn int64  `json:"expiresIn,omitempty"` // seconds, at most MaxLinkExpiresIn; 0: 300
}

// LinkHello is the body of POST /v1/links/{id}/hello, from the new device.
type LinkHello struct {
	Claim     []byte `json:"claim"`
	Ephemeral []byte `json:"ephemeral"` // X25519 public key, 32 bytes
	MAC       []byte `json:"mac"`       // 32 bytes
}

// Link states.
const (
	LinkWaiting = "waiting" // no hello yet
	LinkHelloed = "hello"   // a hello is there: Ephemeral and MAC are set
	LinkBoxed   = "boxed"   // the box is there
	LinkDone    = "done"    // the new device exists: DeviceID is set
)

// LinkState answers GET /v1/links/{id}, to the account that opened it.
type LinkState struct {
	State     string `json:"state"`
	Ephemeral []byte `json:"ephemeral,omitempty"`
	MAC       []byte `json:"mac,omitempty"`
	DeviceID  uint32 `json:"deviceId,omitempty"`
	ExpiresAt int64  `json:"expiresAt"`
}

// LinkBox is the body of PUT /v1/links/{id}/box (from the old device) and
// the answer of POST /v1/links/{id}/box (to the new device).
type LinkBox struct {
	Ephemeral []byte `json:"ephemeral"` // X25519 public key, 32 bytes
	Box       []byte `json:"box"`
}

// LinkClaim is the body of POST /v1/links/{id}/box: the claim token.
type LinkClaim struct {
	Claim []byte `json:"claim"`
}

// LinkDevice is the body of POST /v1/links/{id}/device: the new device's
// name and its ordinary keys, signed by the account identity key.
type LinkDevice struct {
	Claim      []byte            `json:"claim"`
	DeviceName string            `json:"deviceName,omitempty"`
	Keys       OrdinaryKeyUpload `json:"keys"`
}

// Franking, abuse reports, blobs and groups (issues 10 and 11;
// docs/franking.md, docs/groups.md). Since 2026-12-02, still version 1:
// new endpoints and optional fields. This block is the contract the
// server, apiclient and client are built against; a change to it is a
// commit of its own, with docs/api.md.

// Franking: every message carries a commitment (32 bytes, HMAC-SHA256
// under the sender's fresh franking key over the content, docs/franking.md)
// beside its ciphertext; hushd answers it with a reporting tag delivered
// with the message ([Franking]).
const (
	FrankingCommitmentSize = 32
	FrankingTagSize        = 32
)

// Franking is what the server adds to a delivered message that carried a
// commitment: Tag = HMAC-SHA256(server franking key KeyID, commitment ||
// sender || recipient || timestamp), exact layout in docs/franking.md.
type Franking struct {
	Commitment []byte `json:"commitment"`
	Tag        []byte `json:"tag"`
	KeyID      uint32 `json:"keyId"`
}

// Report is the body of POST /v1/reports: the opening of one or more
// messages the caller received, each as delivered (server id, sender,
// timestamp, franking) with the plaintext content and the franking key.
// The server verifies every tag and commitment before storing it.
type Report struct {
	Reason   string            `json:"reason,omitempty"` // at most MaxReportReasonLen bytes, no control characters
	Messages []ReportedMessage `json:"messages"`         // 1 to MaxReportMessages; the reported one first
}

// ReportedMessage is one franked message in a Report.
type ReportedMessage struct {
	From        string   `json:"from"`
	FromDevice  uint32   `json:"fromDevice"`
	ToDevice    uint32   `json:"toDevice"` // the reporting device that received it
	Timestamp   int64    `json:"timestamp"`
	Franking    Franking `json:"franking"`
	FrankingKey []byte   `json:"frankingKey"` // 32 bytes, from inside the content
	Content     []byte   `json:"content"`     // the decrypted content as committed to
}

// ReportResult answers a Report.
type ReportResult struct {
	ID int64 `json:"id"`
}

// Limits of reports.
const (
	MaxReportMessages  = 51 // the reported message and up to 50 before it
	MaxReportReasonLen = 1024
)

// Blobs hold encrypted attachments (issue 11). A blob is created with its
// size, uploaded in chunks (resumable: GET its state, continue at
// Received), then named by id in the sends that carry it (Blobs fields);
// each recipient device of such a send may download it, and the server
// deletes it when every one of them has confirmed it (DELETE after
// download), when the shortest send timer runs out, or after
// MaxBlobLifetime.
//
//	POST   /v1/blobs                 NewBlob → BlobState
//	PATCH  /v1/blobs/{id}            body: bytes, header Upload-Offset: N → BlobState
//	GET    /v1/blobs/{id}/state      → BlobState (uploader)
//	GET    /v1/blobs/{id}            → bytes (uploader or a recipient device; Range supported)
//	DELETE /v1/blobs/{id}            recipient: "I have it"; uploader before any send: discard
type NewBlob struct {
	Size int64 `json:"size"` // 1 to MaxBlobBytes
}

// BlobState says how far an upload is.
type BlobState struct {
	ID        string `json:"id"` // 22 characters of unpadded base64url (16 random bytes)
	Size      int64  `json:"size"`
	Received  int64  `json:"received"`
	ExpiresAt int64  `json:"expiresAt"` // Unix milliseconds
}

// Limits of blobs.
const (
	// MaxBlobBytes is the largest blob: a 100 MiB file after padding and
	// encryption (docs/api.md), attach.CiphertextSize(100 MiB): Signal's
	// size buckets pad 104,857,600 bytes to 107,335,738, then come the IV,
	// the PKCS#7 block and the tag. (Until 2026-12-02 this said
	// 100 MiB + 1 MiB, which a 100 MiB file does not fit.) Format v2
	// blobs, sent since 2026-12-03, are a size bucket themselves:
	// 107,335,738 bytes for 100 MiB.
	MaxBlobBytes = 107_335_792
	// MaxBlobsPerMessage is the most blobs one send may name.
	MaxBlobsPerMessage = 32
	// MaxBlobLifetime is the longest a blob is kept, in seconds (30 days).
	MaxBlobLifetime = 30 * 24 * 3600
)

// More error codes.
const (
	// CodeQuotaExceeded (413): the account's blobs would pass its quota.
	CodeQuotaExceeded = "quota_exceeded"
	// CodeBadOffset (409): a chunk does not start at BlobState.Received;
	// ErrorBody.Message says where it must.
	CodeBadOffset = "bad_offset"
	// CodeReportRefused (422): a report whose tag or commitment does not
	// verify, that is not the caller's, or that was reported already.
	CodeReportRefused = "report_refused"
)

// GroupSend is the body of POST /v1/groups/messages: one SenderKeyMessage
// (TypeSenderKey) for every listed device, stored all or nothing. The
// server does not know groups: it checks that each listed device exists
// (else 409 device_mismatch, as an ordinary send), drops the copies for
// accounts that block the sender, and fans the one content out.
type GroupSend struct {
	Devices    []GroupDevice   `json:"devices"` // 1 to MaxGroupDevices, no duplicates, not the sending device
	Type       int32           `json:"type"`    // TypeSenderKey
	Content    []byte          `json:"content"`
	ExpiresIn  int64           `json:"expiresIn,omitempty"`
	Commitment []byte          `json:"frankingCommitment,omitempty"`
	Blobs      []string        `json:"blobs,omitempty"`
	History    []HistoryRecord `json:"history,omitempty"`
}

// GroupDevice names one recipient device of a GroupSend.
type GroupDevice struct {
	Username string `json:"username"`
	Device   uint32 `json:"device"`
}

// GroupSendResult answers a GroupSend.
type GroupSendResult struct {
	Timestamp int64 `json:"timestamp"`
}

// TypeSenderKey is the envelope type of a group message: libsignal's
// SenderKeyMessage (CiphertextMessageType::SenderKey = 7).
const TypeSenderKey int32 = 7

// MaxGroupDevices is the most devices one GroupSend names: 1,000 members
// with up to MaxDevices devices would be more, so a client splits a larger
// fan-out into several requests (docs/groups.md says what bounds a group).
const MaxGroupDevices = 4096
