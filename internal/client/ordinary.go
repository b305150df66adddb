package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// This file: ordinary conversations, on every device of both people
// (docs/multidevice.md section 1): the account identity, the ordinary
// prekeys, the fan-out of a message to every device, and the sync copy to
// this account's other devices.

// ErrNoAccountIdentity: the account has an account identity key that this
// device does not hold, so it cannot take part in ordinary conversations.
var ErrNoAccountIdentity = errors.New("this device does not hold your account's identity key, which ordinary conversations need " +
	"(it was added with the password, after the account had one)")

// metaOrdinaryReady is set once the account identity is on the server and
// this device's ordinary prekeys are uploaded.
const metaOrdinaryReady = "o_ready"

// ordinaryAttempts is how many device_mismatch answers one send takes
// before it leaves the message queued for the next command.
const ordinaryAttempts = 3

// ordinaryReady reports whether this device takes part in ordinary
// conversations: it holds the account identity, which the server has,
// and its ordinary prekeys are uploaded.
func (c *Client) ordinaryReady(ctx context.Context) (bool, error) {
	if c.st.AccountIdentity() == nil {
		return false, nil
	}
	v, err := c.st.Read().MetaInt(ctx, metaOrdinaryReady, 0)
	return v == 1, err
}

// TakesPartInOrdinary reports whether this device takes part in ordinary
// conversations, as far as it knows: it holds the account identity key and
// its ordinary prekeys are uploaded.
func (c *Client) TakesPartInOrdinary(ctx context.Context) (bool, error) { return c.ordinaryReady(ctx) }

// EnsureOrdinary makes this device ready for ordinary conversations, once
// (docs/multidevice.md, "What each device holds"): when the account has no
// account identity key on the server, this device makes it and publishes
// it (a home made before ordinary conversations existed does this on its
// first command that needs it); then it uploads its ordinary prekeys,
// signed by that key. When the server has an account identity key this
// device does not hold, it returns [ErrNoAccountIdentity].
func (c *Client) EnsureOrdinary(ctx context.Context) error {
	if ready, err := c.ordinaryReady(ctx); err != nil || ready {
		return err
	}
	a, err := c.apic().Account(ctx)
	if err != nil {
		return explain(err)
	}
	local := c.st.AccountIdentity()
	switch {
	case a.AccountIdentityKey == nil:
		if local == nil {
			// Kept before it is published, so that a crash in between
			// publishes the same key again.
			ik, err := key.GenerateIdentityKeyPair(rand.Reader)
			if err != nil {
				return err
			}
			if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetAccountIdentity(ctx, ik) }); err != nil {
				return err
			}
			local = ik
		}
		err := c.apic().Do(ctx, "PUT", "/v1/ordinary/identity", api.SetAccountIdentity{IdentityKey: local.Public.Bytes()}, nil)
		if apiclient.IsCode(err, api.CodeConflict) {
			// Another device of the account was first: its key stands.
			if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetAccountIdentity(ctx, nil) }); err != nil {
				return err
			}
			return ErrNoAccountIdentity
		} else if err != nil {
			return explain(err)
		}
	case local == nil || !bytes.Equal(a.AccountIdentityKey, local.Public.Bytes()):
		return ErrNoAccountIdentity
	}
	reg, err := c.st.Read().OrdinaryRegistrationID(ctx)
	if err != nil {
		return err
	}
	if reg == 0 {
		if reg, err = key.GenerateRegistrationID(rand.Reader); err != nil {
			return err
		}
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetOrdinaryRegistrationID(ctx, reg) }); err != nil {
			return err
		}
	}
	if _, err := c.maintainSpace(ctx, c.ordinarySpace(), true); err != nil {
		return err
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, metaOrdinaryReady, 1) })
}

func (c *Client) ordinaryKeyCounts(ctx context.Context) (api.KeyCounts, error) {
	var kc api.KeyCounts
	err := c.apic().Do(ctx, "GET", "/v1/ordinary/keys", nil, &kc)
	return kc, err
}

func (c *Client) uploadOrdinaryKeys(ctx context.Context, k api.KeyUpload) error {
	reg, err := c.st.Read().OrdinaryRegistrationID(ctx)
	if err != nil {
		return err
	}
	return c.apic().Do(ctx, "PUT", "/v1/ordinary/keys", api.OrdinaryKeyUpload{RegistrationID: uint32(reg), KeyUpload: k}, nil)
}

// fetchOrdinaryBundles gets a bundle of each of name's devices with
// ordinary keys (only those listed, if devices is not empty), checked
// against the account identity key the answer carries.
func (c *Client) fetchOrdinaryBundles(ctx context.Context, name string, devices []uint32) ([]*session.Bundle, error) {
	p := "/v1/ordinary/keys/" + url.PathEscape(name)
	if len(devices) > 0 {
		ds := make([]string, len(devices))
		for i, d := range devices {
			ds[i] = strconv.FormatUint(uint64(d), 10)
		}
		p += "?devices=" + strings.Join(ds, ",")
	}
	var ob api.OrdinaryBundles
	if err := c.apic().Do(ctx, "GET", p, nil, &ob); err != nil {
		if apiclient.IsCode(err, api.CodeNotFound) {
			return nil, fmt.Errorf("%s cannot receive ordinary messages: no such person, or none of their devices has the keys for it yet", name)
		}
		return nil, explain(err)
	}
	out := make([]*session.Bundle, 0, len(ob.Devices))
	for _, ab := range ob.Devices {
		if !bytes.Equal(ab.IdentityKey, ob.IdentityKey) {
			return nil, fmt.Errorf("the server sent a prekey bundle of %s's device %d with another key than their account's", name, ab.DeviceID)
		}
		j, err := json.Marshal(ab)
		if err != nil {
			return nil, err
		}
		var b session.Bundle
		if err := json.Unmarshal(j, &b); err != nil {
			return nil, fmt.Errorf("the server sent a bad prekey bundle for %s: %w", name, err)
		}
		out = append(out, &b)
	}
	return out, nil
}

// ordinaryCipher is the session cipher of the ordinary key space of tx.
func (c *Client) ordinaryCipher(st session.Store) *session.Cipher {
	return &session.Cipher{Store: st, Local: c.Self(), PQRatchet: session.PQRequired, AllowX3DH: false}
}

// fanStore is the ordinary store of one fan-out's transaction with the
// sessions of the accounts it goes to read in one query (or kept decoded
// from the last fan-out, store.FanOutSessions) and written back in one
// statement, and each person's account key checked once: the
// fan-out's cost stays near the protocol's own (BenchmarkOrdinaryFanOut).
// It also remembers the registration id of the session last stored: the
// one Encrypt just used, which the request names for the server's check.
type fanStore struct {
	*store.OrdinaryStore
	sessions map[session.Address]*session.Record
	dirty    map[session.Address]*session.Record
	idents   map[string]key.IdentityKey
	reg      key.RegistrationID
}

func newFanStore(ctx context.Context, tx *store.Tx, names ...string) (*fanStore, error) {
	o := tx.Ordinary()
	ss, err := o.FanOutSessions(ctx, names...)
	if err != nil {
		return nil, err
	}
	return &fanStore{OrdinaryStore: o, sessions: ss, dirty: make(map[session.Address]*session.Record), idents: make(map[string]key.IdentityKey)}, nil
}

func (f *fanStore) LoadSession(_ context.Context, addr session.Address) (*session.Record, error) {
	return f.sessions[addr], nil
}

func (f *fanStore) StoreSession(_ context.Context, addr session.Address, rec *session.Record) error {
	if s := rec.Current(); s != nil {
		f.reg = s.RemoteRegistrationID
	}
	f.sessions[addr], f.dirty[addr] = rec, rec
	return nil
}

func (f *fanStore) SaveIdentity(ctx context.Context, addr session.Address, k key.IdentityKey) (bool, error) {
	if known, ok := f.idents[addr.Name]; ok && known == k {
		return false, nil
	}
	changed, err := f.OrdinaryStore.SaveIdentity(ctx, addr, k)
	if err == nil {
		f.idents[addr.Name] = k
	}
	return changed, err
}

// devices lists the devices of name with a session, in order.
func (f *fanStore) devices(name string) []uint32 {
	var ds []uint32
	for a, r := range f.sessions {
		if a.Name == name && r != nil && r.Current() != nil {
			ds = append(ds, uint32(a.Device))
		}
	}
	slices.Sort(ds)
	return ds
}

// flush writes the sessions that changed, and keeps them all decoded for
// the next fan-out once the transaction commits.
func (f *fanStore) flush(ctx context.Context) error { return f.StoreFanOut(ctx, f.sessions, f.dirty) }

// SendOrdinary sends text to the person to in the ordinary conversation:
// encrypted to every device of theirs with ordinary keys and, as a sync
// copy, to every other device of this account, in one request
// (docs/multidevice.md section 1). Sending to oneself (to is this
// account) reaches only this account's other devices: a note to self.
// It returns once the server has the message; the message is stored
// either way, and a [*QueuedError] says it waits in the outbox.
func (c *Client) SendOrdinary(ctx context.Context, to, text string) (*Message, error) {
	m, err := c.sendOrdinary(ctx, to, text)
	return c.reread(ctx, m), err
}

func (c *Client) sendOrdinary(ctx context.Context, to, text string, files ...[]string) (*store.Message, error) {
	to = NormalizeUsername(to)
	var paths []string
	if len(files) > 0 {
		paths = files[0]
	}
	if err := checkMessage(text, 0, paths); err != nil {
		return nil, err
	}
	if err := c.refuseBlocked(ctx, to); err != nil {
		return nil, err
	}
	if err := c.EnsureOrdinary(ctx); err != nil {
		return nil, err
	}
	atts, uploads, err := c.sendUploads(ctx, to, false, paths)
	if err != nil {
		return nil, err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	// Older queued messages go first, in order.
	if err := c.flushOutboxLocked(ctx); err != nil {
		var q *QueuedError
		if !errors.As(err, &q) {
			return nil, err
		}
	}
	m := &store.Message{Peer: to, MsgID: content.NewID(), Outgoing: true, Kind: store.KindText,
		Body: text, SentAt: time.Now().Truncate(time.Millisecond), Shown: true, State: store.StatePending, Device: c.acct.DeviceID,
		Attachments: atts}
	fs := &fanState{uploads: uploads}
	if to != c.acct.Username {
		// The first message to a person: every device's bundle, before
		// the first request (the server would only say they are missing).
		devs, err := c.st.Read().Keys(store.OrdinarySpace).SessionDevices(ctx, to)
		if err != nil {
			return nil, err
		}
		if len(devs) == 0 {
			bs, err := c.fetchOrdinaryBundles(ctx, to, nil)
			if err != nil && !errors.Is(err, ErrUnreachable) {
				return nil, err
			}
			if err == nil && len(bs) == 0 {
				return nil, fmt.Errorf("%s cannot receive ordinary messages yet: none of their devices has the keys for it (their hush may be older)", to)
			}
			// Unreachable: the message is queued and the server will name
			// the devices when it is sent.
			for _, b := range bs {
				fs.bundles = append(fs.bundles, peerBundle{to, b})
			}
			return m, c.fanOut(ctx, m, fs)
		}
	}
	return m, c.fanOut(ctx, m, fs)
}

// fanState is what a fan-out learned from the server and applies in its
// next encryption: sessions to drop, bundles to start sessions from, and
// notices of devices that came or went.
type fanState struct {
	drop    []session.Address
	bundles []peerBundle
	notices []notice
	uploads []int64 // uploads to forget once the message is stored
}

type peerBundle struct {
	name string
	b    *session.Bundle
}

type notice struct {
	peer, text string
}

// fanOut encrypts m (stored as pending with its outbox row if new, m.ID 0)
// for every device it must reach, posts the request, and deals with a
// device_mismatch answer: drop sessions of extra and stale devices, fetch
// bundles of missing and stale ones, encrypt the same message (same
// content id) again, and retry, up to ordinaryAttempts times. Called with
// sendMu held.
func (c *Client) fanOut(ctx context.Context, m *store.Message, fs *fanState) error {
	err := c.fanOutLoop(ctx, m, fs)
	var q *QueuedError
	var cc *CertificateChangedError
	if err != nil && m.ID != 0 && !errors.As(err, &q) && !errors.As(err, &cc) {
		// Refused for good (no such person any more, a bad bundle): it
		// will not go, and the person sees it as not sent.
		c.fail(ctx, m.ID)
	}
	return err
}

func (c *Client) fanOutLoop(ctx context.Context, m *store.Message, fs *fanState) error {
	for attempt := 1; ; attempt++ {
		out, devs, err := c.encryptOrdinary(ctx, m, fs)
		if err != nil {
			return err
		}
		trace("ordinary-stored") // TestSendKilled kills here, before the request
		mm, err := c.postOrdinary(ctx, out, devs)
		if !errors.Is(err, errMismatch) {
			return err
		}
		if attempt == ordinaryAttempts {
			sm, _ := c.st.Read().Message(ctx, m.ID)
			return &QueuedError{Message: sm, Err: errors.New("the server's device lists kept changing")}
		}
		if fs, err = c.mismatch(ctx, m, mm); err != nil {
			return err
		}
	}
}

var errMismatch = errors.New("device mismatch")

// ordinaryAgain is the request of an ordinary message's outbox row: not
// the request itself but a mark that the message, while pending, is
// encrypted again from its messages row when it is sent later (after the
// server was unreachable, or a crash before its acceptance was recorded).
//
// What a send must make durable before its request leaves is the advanced
// ratchet state and the message (docs/multidevice.md section 1); the
// ciphertexts themselves need not be: the request (10 ciphertexts of about
// 2 KB for 2 x 5 devices, 27 KB of JSON) was a quarter of the bytes a
// send wrote (BenchmarkOrdinaryFanOut, docs/performance.md). Encrypting
// again uses the next message keys (a key is never used twice) and the same
// content id, which every device that got the first copy drops as a copy
// (store.Tx.AddMessage: UNIQUE (peer, outgoing, msg_id)), as it drops the
// one a device_mismatch retry sends; the history record is made again
// too, under the same record id (history.Keyring.RecordID derives it from the
// content id), and the server keeps the first copy of each id. A row of
// an older hush, with the whole request, is sent as it is (flushOrdinary).
var ordinaryAgain = []byte("encrypt again")

// encryptOrdinary runs, in one transaction, the ratchet steps of one
// message for every device it goes to, after applying fs, and stores the
// message (when new) and its outbox row: the whole request. It returns the
// row and the devices of each account it named, where they differ from
// the known ones (an empty map: none differ).
func (c *Client) encryptOrdinary(ctx context.Context, m *store.Message, fs *fanState) (*store.Outgoing, map[string][]uint32, error) {
	self := c.acct.Username
	cm := &content.Message{ID: m.MsgID, SentAt: m.SentAt, Body: m.Body, Ordinary: true, Attachments: contentAttachments(m.Attachments)}
	// Franked (docs/franking.md): the copy for the recipient's devices
	// and the sync copy for this account's are two contents, each with a
	// franking key of its own.
	sync := *cm
	pt, commitment, err := frank(cm)
	if err != nil {
		return nil, nil, err
	}
	sync.SyncTo = m.Peer
	syncPT, syncCommitment, err := frank(&sync)
	if err != nil {
		return nil, nil, err
	}
	accounts := []string{m.Peer}
	if m.Peer != self {
		accounts = append(accounts, self)
	}
	var out *store.Outgoing
	named := make(map[string][]uint32, len(accounts))
	orig := m.ID
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		m.ID = orig
		for _, a := range fs.drop {
			if err := tx.Ordinary().DeleteSession(ctx, a); err != nil {
				return err
			}
		}
		st, err := newFanStore(ctx, tx, accounts...)
		if err != nil {
			return err
		}
		ci := c.ordinaryCipher(st)
		for _, pb := range fs.bundles {
			addr := session.Address{Name: pb.name, Device: pb.b.DeviceID}
			if pb.name == self && uint32(pb.b.DeviceID) == c.acct.DeviceID {
				continue
			}
			if err := ci.ProcessBundle(ctx, addr, pb.b); err != nil {
				return fmt.Errorf("starting an ordinary conversation with %s's device %d: %w", pb.name, pb.b.DeviceID, err)
			}
		}
		for _, n := range fs.notices {
			if _, err := tx.AddNoticeIn(ctx, n.peer, false, n.text); err != nil {
				return err
			}
		}
		req := api.OrdinarySend{Recipients: make([]api.OrdinaryRecipient, 0, len(accounts)), Blobs: blobIDs(m.Attachments)}
		for _, name := range accounts {
			devs := st.devices(name)
			r := api.OrdinaryRecipient{Username: name, Devices: make([]api.OrdinaryDeviceMessage, 0, len(devs))}
			named[name] = []uint32{}
			body, com := pt, commitment
			if name == self {
				body, com = syncPT, syncCommitment
			}
			for _, d := range devs {
				if name == self && d == c.acct.DeviceID {
					continue
				}
				ct, err := ci.Encrypt(ctx, session.Address{Name: name, Device: key.DeviceID(d)}, body)
				if err != nil {
					return fmt.Errorf("encrypting for %s's device %d: %w", name, d, err)
				}
				typ := api.TypeOrdinarySignal
				if ct.Type == session.TypePreKey {
					typ = api.TypeOrdinaryPreKey
				}
				r.Devices = append(r.Devices, api.OrdinaryDeviceMessage{Device: d, RegistrationID: uint32(st.reg), Type: typ, Content: ct.Body,
					Commitment: com})
				named[name] = append(named[name], d)
			}
			req.Recipients = append(req.Recipients, r)
		}
		if err := st.flush(ctx); err != nil {
			return err
		}
		// The sender's record of it in the account's history, stored by the
		// server with the copies (docs/multidevice.md section 3).
		rec, err := c.sendHistoryRecord(ctx, tx, m)
		if err != nil {
			return err
		}
		req.History = []api.HistoryRecord{rec}
		if m.ID == 0 {
			if _, err := tx.AddMessage(ctx, m); err != nil {
				return err
			}
			for _, u := range fs.uploads {
				if err := tx.DeleteUpload(ctx, u); err != nil {
					return err
				}
			}
		} else if len(fs.notices) > 0 {
			// Notices of devices that came or went: the message follows.
			if err := tx.Renumber(ctx, m); err != nil {
				return err
			}
		}
		// Only lists that differ from the known ones are recorded when the
		// server accepts the request.
		for name, ds := range named {
			known, listed, err := tx.OrdinaryDevices(ctx, name)
			if err != nil {
				return err
			}
			if listed && slices.Equal(known, ds) {
				delete(named, name)
			}
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		out = &store.Outgoing{Message: m.ID, Peer: m.Peer, Request: body}
		// The row marks the message as still to send, without the request:
		// sent later, it is encrypted again (ordinaryAgain).
		return tx.AddOutgoing(ctx, &store.Outgoing{Message: m.ID, Peer: m.Peer, Request: ordinaryAgain})
	})
	if err != nil {
		m.ID = orig
		return nil, nil, err
	}
	return out, named, nil
}

// postOrdinary sends one queued ordinary message and records the result:
// sent, failed for good, or still queued. A device_mismatch answer is
// errMismatch with the server's lists. Accepted, the devices named
// (devices, or read from the request when nil) are recorded as the
// accounts' current ones.
func (c *Client) postOrdinary(ctx context.Context, o *store.Outgoing, devices map[string][]uint32) ([]api.Mismatch, error) {
	var res api.OrdinarySendResult
	err := c.apic().DoRaw(ctx, "POST", "/v1/ordinary/messages", bytes.NewReader(o.Request), &res)
	trace("server-answered")
	if err == nil {
		var sid int64
		if len(res.IDs) > 0 && len(res.IDs[0]) > 0 {
			sid = res.IDs[0][0]
		}
		return nil, c.ordinarySent(ctx, o, devices, sid)
	}
	var ce *apiclient.CertificateError
	if errors.As(err, &ce) {
		return nil, explain(err)
	}
	var e *apiclient.Error
	if !errors.As(err, &e) || e.Status >= 500 || e.Code == api.CodeRateLimited || e.Code == api.CodeMailboxFull {
		m, _ := c.st.Read().Message(ctx, o.Message)
		return nil, &QueuedError{Message: m, Err: explain(err)}
	}
	if e.Code == api.CodeDeviceMismatch {
		return mismatches(err), errMismatch
	}
	c.fail(ctx, o.Message)
	return nil, explain(err)
}

// ordinarySent records that the server accepted o: the message is sent,
// and the devices it named are the accounts' current ones (devices holds
// the lists that changed; nil: read them all from the request).
func (c *Client) ordinarySent(ctx context.Context, o *store.Outgoing, devices map[string][]uint32, serverID int64) error {
	if devices == nil {
		devices = requestDevices(o.Request)
	}
	// Lost in a power failure, this only sends the message again, and every
	// device drops the copy: it need not wait for the disk.
	return c.st.UpdateUnsynced(ctx, func(tx *store.Tx) error {
		for name, ds := range devices {
			if err := tx.SetOrdinaryDevices(ctx, name, ds); err != nil {
				return err
			}
		}
		return tx.SetSent(ctx, o.Message, serverID)
	})
}

// mismatch turns a device_mismatch answer into what the next encryption
// applies: it fetches the bundles of missing and stale devices, and words
// the notices of devices that came or went. Devices of an account this
// device had no session with are not news: they are the first it learns.
func (c *Client) mismatch(ctx context.Context, m *store.Message, mm []api.Mismatch) (*fanState, error) {
	return c.mismatchFor(ctx, m.ID, []string{m.Peer}, mm)
}

// mismatchFor is mismatch for a request that went to accounts (and this
// account), for the queued message msgID (0: none).
func (c *Client) mismatchFor(ctx context.Context, msgID int64, accounts []string, mm []api.Mismatch) (*fanState, error) {
	self := c.acct.Username
	fs := &fanState{}
	for _, x := range mm {
		if !slices.Contains(accounts, x.Username) && x.Username != self {
			continue
		}
		// The lists come from the server: at most an account's devices
		// each, no device 0, none twice, never this device.
		x.Missing, x.Extra, x.Stale = deviceList(x.Missing, x.Username == self, c.acct.DeviceID),
			deviceList(x.Extra, x.Username == self, c.acct.DeviceID), deviceList(x.Stale, x.Username == self, c.acct.DeviceID)
		known, listed, err := c.st.Read().OrdinaryDevices(ctx, x.Username)
		if err != nil {
			return nil, err
		}
		for _, d := range slices.Concat(x.Extra, x.Stale) {
			fs.drop = append(fs.drop, session.Address{Name: x.Username, Device: key.DeviceID(d)})
		}
		if fetch := slices.Concat(x.Missing, x.Stale); len(fetch) > 0 {
			bs, err := c.fetchOrdinaryBundles(ctx, x.Username, fetch)
			if err != nil {
				if errors.Is(err, ErrUnreachable) {
					sm, _ := c.st.Read().Message(ctx, msgID)
					return nil, &QueuedError{Message: sm, Err: err}
				}
				return nil, err
			}
			for _, b := range bs {
				fs.bundles = append(fs.bundles, peerBundle{x.Username, b})
			}
		}
		if !listed {
			continue // the first list of their devices: not news
		}
		who, peer := x.Username, x.Username
		if x.Username == self {
			who = "You"
		}
		for _, d := range x.Missing {
			if !slices.Contains(known, d) {
				fs.notices = append(fs.notices, notice{peer, who + " added a device."})
			}
		}
		for _, d := range x.Extra {
			if slices.Contains(known, d) {
				fs.notices = append(fs.notices, notice{peer, who + " removed a device."})
			}
		}
	}
	return fs, nil
}

// mismatches reads the device lists of a device_mismatch answer.
func mismatches(err error) []api.Mismatch {
	var e *apiclient.Error
	if errors.As(err, &e) {
		return e.Mismatches
	}
	return nil
}

// flushOrdinary sends a queued ordinary message, encrypted again
// (ordinaryAgain). A row of an older hush holds the whole request, sent as
// it is; after a device_mismatch answer it is encrypted again for the
// devices the server names.
func (c *Client) flushOrdinary(ctx context.Context, o *store.Outgoing) error {
	if bytes.Equal(o.Request, ordinaryAgain) {
		m, err := c.st.Read().Message(ctx, o.Message)
		if err != nil {
			return err
		}
		return c.fanOut(ctx, m, &fanState{})
	}
	mm, err := c.postOrdinary(ctx, o, nil)
	if !errors.Is(err, errMismatch) {
		return err
	}
	m, err := c.st.Read().Message(ctx, o.Message)
	if err != nil {
		return err
	}
	fs, err := c.mismatch(ctx, m, mm)
	if err != nil {
		return err
	}
	return c.fanOut(ctx, m, fs)
}

// ordinaryWireType is the Signal-protocol message type of an ordinary
// envelope type: 12 and 13 carry the bytes of 2 and 3.
func ordinaryWireType(t int32) int {
	switch t {
	case api.TypeOrdinarySignal:
		return session.TypeSignal
	case api.TypeOrdinaryPreKey:
		return session.TypePreKey
	}
	return -1
}

// ordinaryMessage is the line a decrypted ordinary message adds to a
// conversation, or nil when it adds none (it refused a sync copy from
// someone else, with a notice, or it carries no text). A sync copy, from a
// device of this account only, is stored as sent by this account to
// SyncTo (docs/multidevice.md section 1, Receiving).
func (c *Client) ordinaryMessage(ctx context.Context, tx *store.Tx, from session.Address, cm *content.Message) (*store.Message, error) {
	self := c.acct.Username
	if cm.Group != nil {
		// A group message comes as a SenderKeyMessage, never here.
		_, err := tx.AddNoticeIn(ctx, from.Name, false, fmt.Sprintf("A group message from %s that did not come as one was refused.", from.Name))
		return nil, err
	}
	if cm.Body == "" && len(cm.Attachments) == 0 {
		// A history epoch from an own device (section 3) joins the
		// keyring; a receipt updates states (section 5); typing is not
		// shown yet; a group's sender key or change (docs/groups.md) is
		// kept. None adds a line of its own.
		if cm.SenderKey != nil {
			return nil, c.acceptSenderKey(ctx, tx, from, cm.SenderKey)
		}
		if cm.GroupControl != nil {
			return nil, c.acceptGroupControl(ctx, tx, from, cm.GroupControl)
		}
		if err := c.acceptControl(ctx, tx, from, cm); err != nil {
			return nil, err
		}
		return nil, c.acceptReceipt(ctx, tx, from, false, cm)
	}
	sm := &store.Message{Peer: from.Name, MsgID: cm.ID, Kind: store.KindText, Body: cm.Body, SentAt: cm.SentAt,
		State: store.StateReceived, Device: uint32(from.Device), Attachments: receivedAttachments(cm.Attachments)}
	switch {
	case from.Name == self:
		// A sync copy (a note to self has SyncTo = this account too).
		sm.Outgoing, sm.State, sm.Peer = true, store.StateSent, self
		if cm.SyncTo != "" {
			sm.Peer = cm.SyncTo
		}
	case cm.SyncTo != "":
		_, err := tx.AddNoticeIn(ctx, from.Name, false, fmt.Sprintf("A message from %s that claims to be a copy of one you sent was refused and is not shown.", from.Name))
		return nil, err
	}
	return sm, nil
}

// requestDevices reads the devices each account of a queued request names.
func requestDevices(body []byte) map[string][]uint32 {
	var req api.OrdinarySend
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	out := make(map[string][]uint32, len(req.Recipients))
	for _, r := range req.Recipients {
		ds := make([]uint32, 0, len(r.Devices))
		for _, d := range r.Devices {
			ds = append(ds, d.Device)
		}
		out[r.Username] = ds
	}
	return out
}

// deviceList is a device list of a device_mismatch answer made safe to
// act on: sorted, without duplicates, device 0 or (for this account) this
// device, at most api.MaxDevices long.
func deviceList(ds []uint32, self bool, this uint32) []uint32 {
	out := make([]uint32, 0, min(len(ds), api.MaxDevices))
	for _, d := range ds {
		if d == 0 || (self && d == this) {
			continue
		}
		out = append(out, d)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), api.MaxDevices)]
}
