package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// This file: sending and receiving group messages (docs/groups.md,
// "Sending", "Receiving").

// fanAccountsPerRequest bounds the accounts of one one-to-one fan-out of a
// group's sender key or control (each with up to api.MaxDevices devices):
// a larger group's goes in several requests.
const fanAccountsPerRequest = 100

// fanContent sends cm, a content that adds no line (a sender key, a group
// control), to every device of accounts and to this account's other
// devices over the ordinary sessions, in requests of at most
// fanAccountsPerRequest accounts; a device_mismatch answer is dealt with
// as for a message, up to ordinaryAttempts times. It returns the devices
// each account's copy reached. Called with sendMu held.
func (c *Client) fanContent(ctx context.Context, accounts []string, cm *content.Message) (map[string][]uint32, error) {
	if ready, err := c.ordinaryReady(ctx); err != nil {
		return nil, err
	} else if !ready {
		return nil, ErrNoAccountIdentity
	}
	self := c.acct.Username
	pt, err := cm.Marshal()
	if err != nil {
		return nil, err
	}
	others := slices.DeleteFunc(slices.Clone(accounts), func(a string) bool { return a == self })
	slices.Sort(others)
	others = slices.Compact(others)
	reached := make(map[string][]uint32)
	for chunk := range slices.Chunk(append(others, ""), fanAccountsPerRequest) {
		chunk = slices.DeleteFunc(chunk, func(a string) bool { return a == "" })
		names := append(slices.Clone(chunk), self)
		bodies := make(map[string][]byte, len(names))
		for _, n := range names {
			bodies[n] = pt
		}
		// Accounts this device has no session with: every device's
		// bundle first (the server would only say they are missing).
		fs := &fanState{}
		for _, name := range chunk {
			devs, err := c.st.Read().Keys(store.OrdinarySpace).SessionDevices(ctx, name)
			if err != nil {
				return reached, err
			}
			if len(devs) > 0 {
				continue
			}
			bs, err := c.fetchOrdinaryBundles(ctx, name, nil)
			if errors.Is(err, ErrUnreachable) {
				return reached, err
			} else if err != nil {
				continue // no such person, or no keys yet: tried again next time
			}
			for _, b := range bs {
				fs.bundles = append(fs.bundles, peerBundle{name, b})
			}
		}
		for attempt := 1; ; attempt++ {
			req, _, err := c.encryptContent(ctx, names, bodies, fs)
			if err != nil {
				return reached, err
			}
			if req == nil {
				break // no device to send to: everyone's devices are still unknown
			}
			err = c.apic().DoRaw(ctx, "POST", "/v1/ordinary/messages", bytes.NewReader(req), &api.OrdinarySendResult{})
			if err == nil {
				devs := requestDevices(req)
				if err := c.st.Update(ctx, func(tx *store.Tx) error {
					for name, ds := range devs {
						if err := tx.SetOrdinaryDevices(ctx, name, ds); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					return reached, err
				}
				for name, ds := range devs {
					reached[name] = ds
				}
				break
			}
			mm := mismatches(err)
			if mm == nil || attempt == ordinaryAttempts {
				return reached, explain(err)
			}
			if fs, err = c.mismatchFor(ctx, 0, names, mm); err != nil {
				return reached, err
			}
			if len(fs.bundles) == 0 && len(fs.drop) == 0 {
				return reached, explain(errors.New("the server's device lists kept changing"))
			}
		}
	}
	return reached, nil
}

// groupOutgoing is the outbox row of a group message: the SenderKeyMessage
// and the distribution it was encrypted with (a new sender key means
// encrypting it again). The devices it goes to are named when it is posted.
type groupOutgoing struct {
	Group   []byte `json:"group"`
	Dist    []byte `json:"dist"`
	Gen     int64  `json:"gen"`               // the record's Gen when encrypted
	Content []byte `json:"content,omitempty"` // none yet: not encrypted
	// Commitment is the content's franking commitment (docs/franking.md):
	// the server tags it for each recipient device.
	Commitment []byte `json:"commitment,omitempty"`
}

// SendGroup sends text to the group ref (an id or a unique name): one
// SenderKeyMessage, posted once for every member device (this account's
// other devices included). Before the first message, and after every
// new sender key, this device's sender key goes to every member device
// over the one-to-one sessions. It returns once the server has the
// message; the message is stored either way, and a [*QueuedError] says it
// waits in the outbox.
func (c *Client) SendGroup(ctx context.Context, ref, text string) (*Message, error) {
	if err := CheckText(text, 0); err != nil {
		return nil, err
	}
	if err := c.EnsureOrdinary(ctx); err != nil {
		return nil, err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.flushOutboxLocked(ctx); err != nil {
		var q *QueuedError
		if !errors.As(err, &q) {
			return nil, err
		}
	}
	rec, err := c.findGroup(ctx, ref)
	if err != nil {
		return nil, err
	}
	s, _ := rec.log.State()
	if !s.IsMember(c.acct.Username) {
		return nil, fmt.Errorf("you are no longer a member of %q", s.Name)
	}
	m := &store.Message{Peer: store.GroupPeer(rec.id), MsgID: content.NewID(), Outgoing: true, Kind: store.KindText,
		Body: text, SentAt: time.Now().Truncate(time.Millisecond), Shown: true, State: store.StatePending,
		Device: c.acct.DeviceID, Sender: c.acct.Username}
	err = c.groupFanOut(ctx, rec.id, m)
	return c.reread(ctx, m), err
}

// groupFanOut sends m, stored with its outbox row if new (m.ID 0): it
// makes a new sender key if the group needs one, encrypts m with it if it
// is not yet, gives the sender key to the member devices that do not have
// it, and posts; on device_mismatch it gives the key to the missing
// devices, or makes a new one when devices went, and tries again, up to
// ordinaryAttempts times; the message then stays queued. Called with
// sendMu held.
func (c *Client) groupFanOut(ctx context.Context, id [16]byte, m *store.Message) error {
	err := c.groupFanOutLoop(ctx, id, m)
	var q *QueuedError
	var cc *CertificateChangedError
	if err != nil && m.ID != 0 && !errors.As(err, &q) && !errors.As(err, &cc) {
		c.fail(ctx, m.ID)
	}
	return err
}

func (c *Client) queued(ctx context.Context, m *store.Message, err error) error {
	sm, _ := c.st.Read().Message(ctx, m.ID)
	return &QueuedError{Message: sm, Err: err}
}

func (c *Client) groupFanOutLoop(ctx context.Context, id [16]byte, m *store.Message) error {
	for attempt := 1; ; attempt++ {
		// The message is stored first (never lost), then the sender key
		// goes where it must, and only then is the message encrypted:
		// a sender key is given at the chain's current iteration, so a
		// message encrypted before it could not be read with it.
		if _, err := c.encryptGroup(ctx, id, m, false); err != nil {
			return err
		}
		rec, err := loadGroup(ctx, c.st.Read(), id)
		if err != nil {
			return err
		}
		if rec.Resend {
			// A change of ours that may not have reached everyone.
			if err := c.resendLog(ctx, rec); err != nil {
				return c.queued(ctx, m, err)
			}
		} else if len(rec.LogTo) > 0 {
			// New devices, which may not have the group yet.
			if err := c.fanControl(ctx, rec.id, rec.LogTo, rec.log.Entries()); err != nil {
				return c.queued(ctx, m, err)
			}
			if err := c.st.Update(ctx, func(tx *store.Tx) error {
				r, err := loadGroup(ctx, tx, id)
				if err != nil {
					return err
				}
				r.LogTo = nil
				return r.save(ctx, tx)
			}); err != nil {
				return err
			}
		}
		if err := c.distribute(ctx, rec); err != nil {
			if errors.Is(err, ErrUnreachable) {
				return c.queued(ctx, m, err)
			}
			return err
		}
		out, err := c.encryptGroup(ctx, id, m, true)
		if err != nil {
			return err
		}
		if rec, err = loadGroup(ctx, c.st.Read(), id); err != nil {
			return err
		}
		if d, _ := rec.dist(); !bytes.Equal(d[:], out.Dist) || rec.Gen != out.Gen {
			continue // a new sender key or distribution meanwhile: encrypt again
		}
		mm, err := c.postGroup(ctx, rec, m, out)
		if !errors.Is(err, errMismatch) {
			return err
		}
		if attempt == ordinaryAttempts {
			return c.queued(ctx, m, errors.New("the server's device lists kept changing"))
		}
		if err := c.groupMismatch(ctx, rec, mm); err != nil {
			return err
		}
		if err := c.startSessions(ctx, rec, mm); err != nil {
			if errors.Is(err, ErrUnreachable) {
				return c.queued(ctx, m, err)
			}
			return err
		}
	}
}

// startSessions starts ordinary sessions with the member devices a
// device_mismatch answer says are missing, so that the sender key can go
// to them (an account's every device may be new to this one: the
// one-to-one fan-out would then have no device to send to, and learn
// nothing).
func (c *Client) startSessions(ctx context.Context, rec *groupRecord, mm []api.Mismatch) error {
	s, _ := rec.log.State()
	var bundles []peerBundle
	for _, x := range mm {
		missing := deviceList(x.Missing, x.Username == c.acct.Username, c.acct.DeviceID)
		have, err := c.st.Read().Keys(store.OrdinarySpace).SessionDevices(ctx, x.Username)
		if err != nil {
			return err
		}
		missing = slices.DeleteFunc(missing, func(d uint32) bool {
			return slices.Contains(have, d)
		})
		if !s.IsMember(x.Username) || len(missing) == 0 {
			continue
		}
		bs, err := c.fetchOrdinaryBundles(ctx, x.Username, missing)
		if errors.Is(err, ErrUnreachable) {
			return err
		} else if err != nil {
			continue // gone meanwhile: the next answer says so
		}
		for _, b := range bs {
			bundles = append(bundles, peerBundle{x.Username, b})
		}
	}
	if len(bundles) == 0 {
		return nil
	}
	return c.st.Update(ctx, func(tx *store.Tx) error {
		ci := c.ordinaryCipher(tx.Ordinary())
		for _, pb := range bundles {
			addr := session.Address{Name: pb.name, Device: pb.b.DeviceID}
			if pb.name == c.acct.Username && uint32(pb.b.DeviceID) == c.acct.DeviceID {
				continue
			}
			if err := ci.ProcessBundle(ctx, addr, pb.b); err != nil {
				return fmt.Errorf("starting an ordinary conversation with %s's device %d: %w", pb.name, pb.b.DeviceID, err)
			}
		}
		return nil
	})
}

// encryptGroup makes the group's new sender key if it needs one, and
// stores m (if new) with its outbox row; with encrypt, it encrypts m with
// the current sender key, in the same transaction as the chain's step,
// unless it is already encrypted with the same key since the last time
// the key was given to anyone (the record's Gen).
func (c *Client) encryptGroup(ctx context.Context, id [16]byte, m *store.Message, encrypt bool) (*groupOutgoing, error) {
	var out *groupOutgoing
	orig := m.ID
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		m.ID, out = orig, nil
		rec, err := loadGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		d, ok := rec.dist()
		if !ok || rec.Rotate {
			// A new sender key: a new distribution id, so a new chain
			// (docs/groups.md, "Removal"); the old one is forgotten.
			if ok {
				if err := tx.DeleteSenderKeyOf(ctx, id, c.acct.Username, c.acct.DeviceID, d); err != nil {
					return err
				}
			}
			if _, err := rand.Read(d[:]); err != nil {
				return err
			}
			d[6], d[8] = d[6]&0x0f|0x40, d[8]&0x3f|0x80 // a version 4 UUID, as libsignal's
			rec.Dist, rec.Sent, rec.Rotate = d[:], nil, false
			rec.Gen++
			if err := rec.save(ctx, tx); err != nil {
				return err
			}
		}
		ci := c.groupCipher(tx, id)
		if _, err := ci.Distribution(ctx, d); err != nil { // makes the chain, the first time
			return err
		}
		if m.ID == 0 {
			if _, err := tx.AddMessage(ctx, m); err != nil {
				return err
			}
		} else if o, err := tx.OutgoingOf(ctx, m.ID); err != nil {
			return err
		} else if o != nil {
			var prev groupOutgoing
			if json.Unmarshal(o.Request, &prev) == nil && bytes.Equal(prev.Dist, d[:]) && prev.Gen == rec.Gen && len(prev.Content) > 0 {
				out = &prev
				return nil
			}
		}
		out = &groupOutgoing{Group: id[:], Dist: d[:], Gen: rec.Gen}
		if encrypt {
			cm := &content.Message{ID: m.MsgID, SentAt: m.SentAt, Body: m.Body, Ordinary: true, Group: &content.GroupContext{ID: id}}
			pt, commitment, err := frank(cm)
			if err != nil {
				return err
			}
			sk, err := ci.Encrypt(ctx, d, pt)
			if err != nil {
				return err
			}
			out.Content, out.Commitment = sk.Bytes(), commitment
		}
		body, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return tx.AddOutgoing(ctx, &store.Outgoing{Message: m.ID, Peer: m.Peer, Request: body})
	})
	if err != nil {
		m.ID = orig
		return nil, err
	}
	return out, nil
}

// distribute gives this device's current sender key for the group to
// every member account some device of which, as far as this device knows,
// does not have it, and records the devices it reached.
func (c *Client) distribute(ctx context.Context, rec *groupRecord) error {
	s, _ := rec.log.State()
	d, ok := rec.dist()
	if !ok {
		return errors.New("client: internal error: distributing before a sender key is made")
	}
	var need []string
	for _, name := range s.Members {
		known, listed, err := c.st.Read().OrdinaryDevices(ctx, name)
		if err != nil {
			return err
		}
		if name == c.acct.Username {
			known = slices.DeleteFunc(slices.Clone(known), func(x uint32) bool { return x == c.acct.DeviceID })
			if _, sent := rec.Sent[name]; !sent || !subset(known, rec.Sent[name]) {
				need = append(need, name)
			}
			continue
		}
		if sent, ok := rec.Sent[name]; !ok || !listed || !subset(known, sent) {
			need = append(need, name)
		}
	}
	if len(need) == 0 {
		return nil
	}
	var dm *senderkey.DistributionMessage
	if err := c.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		dm, err = c.groupCipher(tx, rec.id).Distribution(ctx, d)
		return err
	}); err != nil {
		return err
	}
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
		SenderKey: &content.SenderKeyDistribution{Group: rec.id, Distribution: dm.Bytes()}}
	reached, err := c.fanContent(ctx, need, cm)
	if uerr := c.st.Update(ctx, func(tx *store.Tx) error {
		r, err := loadGroup(ctx, tx, rec.id)
		if err != nil {
			return err
		}
		if cur, _ := r.dist(); cur != d {
			return nil // a new sender key meanwhile
		}
		if r.Sent == nil {
			r.Sent = make(map[string][]uint32)
		}
		for name, ds := range reached {
			if slices.Contains(need, name) || name == c.acct.Username {
				r.Sent[name] = ds
			}
		}
		if len(reached) > 0 {
			r.Gen++ // given at the current iteration: what was encrypted before is encrypted again
		}
		return r.save(ctx, tx)
	}); uerr != nil {
		return uerr
	}
	return err
}

func subset(a, b []uint32) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// postGroup posts m's SenderKeyMessage to every device that has the
// sender key, of every member, and records the result.
func (c *Client) postGroup(ctx context.Context, rec *groupRecord, m *store.Message, out *groupOutgoing) ([]api.Mismatch, error) {
	s, _ := rec.log.State()
	req := api.GroupSend{Type: api.TypeSenderKey, Content: out.Content, Commitment: out.Commitment}
	for _, name := range s.Members {
		for _, d := range rec.Sent[name] {
			if name == c.acct.Username && d == c.acct.DeviceID {
				continue
			}
			req.Devices = append(req.Devices, api.GroupDevice{Username: name, Device: d})
		}
	}
	if len(req.Devices) == 0 {
		// No other device of any member (the others' keys are not
		// reachable yet): kept here only.
		return nil, c.st.UpdateUnsynced(ctx, func(tx *store.Tx) error { return tx.SetSent(ctx, m.ID, 0) })
	}
	var errs []error
	for chunk := range slices.Chunk(req.Devices, api.MaxGroupDevices) {
		r := req
		r.Devices = chunk
		var res api.GroupSendResult
		err := c.apic().Do(ctx, "POST", "/v1/groups/messages", r, &res)
		if err == nil {
			continue
		}
		var ce *apiclient.CertificateError
		var e *apiclient.Error
		switch {
		case errors.As(err, &ce):
			return nil, explain(err)
		case !errors.As(err, &e) || e.Status >= 500 || e.Code == api.CodeRateLimited || e.Code == api.CodeMailboxFull:
			return nil, c.queued(ctx, m, explain(err))
		case e.Code == api.CodeDeviceMismatch:
			return mismatches(err), errMismatch
		}
		errs = append(errs, explain(err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, c.st.UpdateUnsynced(ctx, func(tx *store.Tx) error { return tx.SetSent(ctx, m.ID, 0) })
}

// groupMismatch acts on a device_mismatch answer to a group send: the
// sessions of devices that went are dropped and the group gets a new
// sender key (the one that went must read nothing more); accounts with
// devices that came get the sender key again (their new devices first
// get sessions, through the one-to-one fan-out's own mismatch).
func (c *Client) groupMismatch(ctx context.Context, rec *groupRecord, mm []api.Mismatch) error {
	s, _ := rec.log.State()
	return c.st.Update(ctx, func(tx *store.Tx) error {
		r, err := loadGroup(ctx, tx, rec.id)
		if err != nil {
			return err
		}
		self := c.acct.Username
		for _, x := range mm {
			if !s.IsMember(x.Username) {
				continue
			}
			gone := slices.Concat(deviceList(x.Extra, x.Username == self, c.acct.DeviceID), deviceList(x.Stale, x.Username == self, c.acct.DeviceID))
			came := deviceList(x.Missing, x.Username == self, c.acct.DeviceID)
			for _, d := range gone {
				if err := tx.Ordinary().DeleteSession(ctx, session.Address{Name: x.Username, Device: key.DeviceID(d)}); err != nil {
					return err
				}
			}
			if len(gone) > 0 {
				known, _, err := tx.OrdinaryDevices(ctx, x.Username)
				if err != nil {
					return err
				}
				if err := tx.SetOrdinaryDevices(ctx, x.Username, slices.DeleteFunc(slices.Clone(known), func(d uint32) bool { return slices.Contains(gone, d) })); err != nil {
					return err
				}
				r.Rotate = true
			}
			if len(came) > 0 || len(gone) > 0 {
				delete(r.Sent, x.Username)
			}
			if len(came) > 0 && !slices.Contains(r.LogTo, x.Username) {
				r.LogTo = append(r.LogTo, x.Username)
			}
		}
		return r.save(ctx, tx)
	})
}

// flushGroup sends a queued group message again.
func (c *Client) flushGroup(ctx context.Context, o *store.Outgoing, id [16]byte) error {
	m, err := c.st.Read().Message(ctx, o.Message)
	if err != nil {
		return err
	}
	return c.groupFanOut(ctx, id, m)
}

// decryptGroup decrypts and stores one group message (type 7) in one
// transaction, as Decrypt does for the others: the sender key record of
// the sending device for the message's distribution id names the group;
// the content must name the same group, and the sender and this account
// must be members of it. Anything else is dropped with a notice, and
// nothing else is written.
func (c *Client) decryptGroup(ctx context.Context, m *api.Message) ([]int64, error) {
	from := session.Address{Name: m.From, Device: key.DeviceID(m.FromDevice)}
	self := c.acct.Username
	forget := time.Now().Add(-31 * 24 * time.Hour)
	var ids []int64
	var why string // the notice, when the message is dropped
	var where string
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		ids, why, where = nil, "", from.Name
		if seen, err := tx.Received(ctx, m.ID); err != nil || seen {
			return errors.Join(err, errSeen)
		}
		if err := tx.SetReceived(ctx, m.ID, forget); err != nil {
			return err
		}
		sk, err := senderkey.ParseMessage(m.Content)
		if err != nil {
			why = fmt.Sprintf("A group message from %s could not be read.", from.Name)
			return errDecryptFailed
		}
		grp, _, err := tx.SenderKey(ctx, from.Name, uint32(from.Device), sk.DistributionID())
		if err != nil {
			return err
		}
		if grp == nil {
			why = fmt.Sprintf("A group message from %s could not be decrypted: you do not have their key for it (they may have sent it before you joined, or before their key reached you).", from.Name)
			return errDecryptFailed
		}
		id := [16]byte(grp)
		where = store.GroupPeer(id)
		rec, err := loadGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		s, _ := rec.log.State()
		if !s.IsMember(self) {
			why = "-" // no longer a member: nothing is read, nothing said
			return errDecryptFailed
		}
		if !s.IsMember(from.Name) {
			why = fmt.Sprintf("A group message from %s, who is not a member, was refused.", from.Name)
			return errDecryptFailed
		}
		pt, err := c.groupCipher(tx, id).Decrypt(ctx, from, m.Content)
		if errors.Is(err, senderkey.ErrDuplicate) {
			why = "-"
			return errDecryptFailed
		} else if errors.Is(err, senderkey.ErrDecrypt) {
			why = fmt.Sprintf("A group message from %s could not be decrypted.", from.Name)
			return errDecryptFailed
		} else if err != nil {
			return err
		}
		cm, err := content.Parse(pt)
		if err != nil || cm.Group == nil || cm.Group.ID != id || cm.Body == "" {
			why = fmt.Sprintf("A group message from %s could not be read, or did not belong to the group.", from.Name)
			return errDecryptFailed
		}
		// Franking (docs/franking.md): what does not open its commitment
		// is dropped, so that nothing is shown that could not be reported.
		fr, err := c.checkFranking(m, pt, cm)
		if err != nil {
			why = frankingNotice(from.Name)
			return errDecryptFailed
		}
		sm := &store.Message{Peer: where, MsgID: cm.ID, Kind: store.KindText, Body: cm.Body, SentAt: cm.SentAt,
			State: store.StateReceived, ServerID: m.ID, Device: uint32(from.Device), Sender: from.Name}
		if from.Name == self {
			sm.Outgoing, sm.State = true, store.StateSent // a copy of what another device of ours sent
		}
		added, err := tx.AddMessage(ctx, sm)
		if err != nil {
			return err
		}
		if added {
			ids = append(ids, sm.ID)
			// What a report needs, kept with the message (and deleted
			// with it); not for this account's own copies.
			if fr != nil && !sm.Outgoing {
				if err := tx.SetFranking(ctx, sm.ID, fr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, errSeen) {
		return nil, nil
	}
	if errors.Is(err, errDecryptFailed) {
		// Nothing of it was kept: only that it came, and why it is not shown.
		err = c.st.Update(ctx, func(tx *store.Tx) error {
			ids = nil
			if err := tx.SetReceived(ctx, m.ID, forget); err != nil {
				return err
			}
			if why == "-" {
				return nil
			}
			_, err := tx.AddNoticeIn(ctx, where, false, why)
			ids = tx.Notices
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	return ids, nil
}
