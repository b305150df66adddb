package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// This file: delivered and read receipts (docs/multidevice.md section 5).
// A receipt is a content message with no body, end to end encrypted like
// text: the server cannot tell it from a message. It goes in both kinds of
// conversation (every current hush parses them; a hush from before issue 9
// would show one in a secret conversation as an empty message).
//
// Receipts are best effort: they are sent once, right after the messages
// are stored (delivered) or shown (read), and dropped if that fails (the
// server is unreachable, a device list keeps changing). They are never
// queued, and a failure never fails receiving or showing. No receipt is
// ever sent for a receipt, nor for a sync copy or a notice.

// metaReadReceiptsOff is set to 1 by `hush settings receipts off`.
const metaReadReceiptsOff = "receipts_off"

// receiptTimeout bounds the sending of one batch of receipts.
const receiptTimeout = 15 * time.Second

// ReadReceipts reports whether this device sends read receipts (on unless
// turned off). Delivered receipts are always sent.
func (c *Client) ReadReceipts(ctx context.Context) (bool, error) {
	v, err := c.st.Read().MetaInt(ctx, metaReadReceiptsOff, 0)
	return v == 0, err
}

// SetReadReceipts turns sending read receipts on or off, on this device.
func (c *Client) SetReadReceipts(ctx context.Context, on bool) error {
	v := int64(1)
	if on {
		v = 0
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, metaReadReceiptsOff, v) })
}

// receiptKey is a conversation receipts go to, and their type.
type receiptKey struct {
	peer   string
	secret bool
	typ    content.ReceiptType
}

// pendingReceipts holds the content ids of messages stored or shown and
// not yet acknowledged, by conversation and type.
type pendingReceipts struct {
	mu  sync.Mutex
	ids map[receiptKey][]content.ID
}

func (p *pendingReceipts) add(k receiptKey, id content.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = make(map[receiptKey][]content.ID)
	}
	p.ids[k] = append(p.ids[k], id)
}

func (p *pendingReceipts) take() map[receiptKey][]content.ID {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.ids
	p.ids = nil
	return out
}

// queueDelivered notes that m, just stored, is to be acknowledged as
// delivered by the next flushReceipts. Only a message with text from
// someone else is.
func (c *Client) queueDelivered(m *store.Message) {
	if m == nil || m.Outgoing || m.Kind != store.KindText || m.MsgID == (content.ID{}) || m.Peer == c.acct.Username {
		return
	}
	if _, group := store.ParseGroupPeer(m.Peer); group {
		return // no receipts in groups (docs/groups.md)
	}
	c.receipts.add(receiptKey{m.Peer, m.Secret, content.Delivered}, m.MsgID)
}

// flushReceipts sends the receipts owed: one per conversation and type
// (several when it holds more than MaxReceiptIDs). What fails is dropped
// and told to warn.
func (c *Client) flushReceipts(ctx context.Context, warn func(error)) {
	owed := c.receipts.take()
	if len(owed) == 0 {
		return
	}
	// None to a person this account blocks (docs/client.md, "Blocking").
	blocked, err := c.blockedSet(ctx)
	if err != nil {
		if warn != nil {
			warn(fmt.Errorf("no receipt was sent: %w", err))
		}
		return
	}
	for k, ids := range owed {
		if blocked[k.peer] {
			continue
		}
		if err := c.sendReceipts(ctx, k, ids); err != nil && warn != nil {
			warn(fmt.Errorf("a %v receipt to %s was not sent: %w", k.typ, k.peer, err))
		}
	}
}

// readShown owes read receipts for the lines of ms, just shown for the
// first time, unless read receipts are off. Shown by a receive run's
// Handle, they go with the run's delivered receipts; otherwise now.
func (c *Client) readShown(ctx context.Context, ms []*store.Message) {
	if len(ms) == 0 {
		return
	}
	if on, err := c.ReadReceipts(ctx); err != nil || !on {
		return
	}
	for _, m := range ms {
		if _, group := store.ParseGroupPeer(m.Peer); group {
			continue // no receipts in groups (docs/groups.md)
		}
		c.receipts.add(receiptKey{m.Peer, m.Secret, content.Read}, m.MsgID)
	}
	if c.handling.Load() == 0 {
		c.flushReceipts(ctx, nil)
	}
}

// sendReceipts sends receipts of type k.typ for ids to the conversation k, in
// batches of at most MaxReceiptIDs. In an ordinary conversation a receipt
// also goes, as a sync copy, to this account's other devices (the server
// wants every request to name them): a read receipt's copy makes them
// count the messages as shown, a delivered one's is ignored.
func (c *Client) sendReceipts(ctx context.Context, k receiptKey, ids []content.ID) error {
	ctx, cancel := context.WithTimeout(ctx, receiptTimeout)
	defer cancel()
	var errs []error
	for chunk := range slices.Chunk(ids, content.MaxReceiptIDs) {
		cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: !k.secret,
			Receipt: &content.Receipt{Type: k.typ, IDs: chunk}}
		var err error
		if k.secret {
			err = c.sendSecretContent(ctx, k.peer, cm)
		} else {
			err = c.sendOrdinaryContent(ctx, k.peer, cm)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sendOrdinaryContent sends cm, a content that adds no line (a receipt),
// to every device of to and, as a copy with SyncTo, to this account's
// other devices: the fan-out of
// section 1 without a stored message, outbox row or history record. A
// device_mismatch answer is dealt with as for a message, up to
// ordinaryAttempts times; any other failure drops it.
func (c *Client) sendOrdinaryContent(ctx context.Context, to string, cm *content.Message) error {
	if ready, err := c.ordinaryReady(ctx); err != nil || !ready {
		return err
	}
	self := c.acct.Username
	pt, err := cm.Marshal()
	if err != nil {
		return err
	}
	bodies := map[string][]byte{to: pt}
	accounts := []string{to}
	if to != self {
		// The server checks the sender's own device list with every
		// request: this account is always named, and its other devices
		// get the copy.
		sc := *cm
		sc.SyncTo = to
		if bodies[self], err = sc.Marshal(); err != nil {
			return err
		}
		accounts = append(accounts, self)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	fs := &fanState{}
	for attempt := 1; ; attempt++ {
		req, named, err := c.encryptContent(ctx, accounts, bodies, fs)
		if err != nil {
			return err
		}
		if req == nil {
			return nil // no device to send to
		}
		err = c.apic().DoRaw(ctx, "POST", "/v1/ordinary/messages", bytes.NewReader(req), &api.OrdinarySendResult{})
		if err == nil {
			c.receiptsSent.Add(1)
			return c.st.Update(ctx, func(tx *store.Tx) error {
				for name, ds := range named {
					if err := tx.SetOrdinaryDevices(ctx, name, ds); err != nil {
						return err
					}
				}
				return nil
			})
		}
		mm := mismatches(err)
		if mm == nil || attempt == ordinaryAttempts {
			return explain(err)
		}
		if fs, err = c.mismatch(ctx, &store.Message{Peer: to}, mm); err != nil {
			return err
		}
	}
}

// encryptContent runs, in one transaction, the ratchet steps of one
// content for every device of accounts (bodies by account), after applying
// fs, and returns the request, or nil when there is no device to send to,
// and the device lists it named that differ from the known ones.
func (c *Client) encryptContent(ctx context.Context, accounts []string, bodies map[string][]byte, fs *fanState) ([]byte, map[string][]uint32, error) {
	self := c.acct.Username
	var out []byte
	named := make(map[string][]uint32, len(accounts))
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		out = nil
		clear(named)
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
			if pb.name == self && uint32(pb.b.DeviceID) == c.acct.DeviceID {
				continue
			}
			if err := ci.ProcessBundle(ctx, session.Address{Name: pb.name, Device: pb.b.DeviceID}, pb.b); err != nil {
				return fmt.Errorf("starting an ordinary conversation with %s's device %d: %w", pb.name, pb.b.DeviceID, err)
			}
		}
		for _, n := range fs.notices {
			if _, err := tx.AddNoticeIn(ctx, n.peer, false, n.text); err != nil {
				return err
			}
		}
		req := api.OrdinarySend{}
		total := 0
		for _, name := range accounts {
			r := api.OrdinaryRecipient{Username: name}
			named[name] = []uint32{}
			for _, d := range st.devices(name) {
				if name == self && d == c.acct.DeviceID {
					continue
				}
				ct, err := ci.Encrypt(ctx, session.Address{Name: name, Device: key.DeviceID(d)}, bodies[name])
				if err != nil {
					return fmt.Errorf("encrypting for %s's device %d: %w", name, d, err)
				}
				typ := api.TypeOrdinarySignal
				if ct.Type == session.TypePreKey {
					typ = api.TypeOrdinaryPreKey
				}
				r.Devices = append(r.Devices, api.OrdinaryDeviceMessage{Device: d, RegistrationID: uint32(st.reg), Type: typ, Content: ct.Body})
				named[name] = append(named[name], d)
			}
			total += len(r.Devices)
			req.Recipients = append(req.Recipients, r)
		}
		if total == 0 {
			return nil
		}
		if err := st.flush(ctx); err != nil {
			return err
		}
		for name, ds := range named {
			known, listed, err := tx.OrdinaryDevices(ctx, name)
			if err != nil {
				return err
			}
			if listed && slices.Equal(known, ds) {
				delete(named, name)
			}
		}
		out, err = json.Marshal(req)
		return err
	})
	return out, named, err
}

// sendSecretContent sends cm, a content that adds no line (a receipt), to
// the person's secret device over the secret session, if there is one and
// the person needs no confirmation. It is not queued.
func (c *Client) sendSecretContent(ctx context.Context, to string, cm *content.Message) error {
	if secret, err := c.IsSecret(ctx); err != nil || !secret {
		return err
	}
	pt, err := cm.Marshal()
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	var msg api.SendMessage
	var device uint32
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		ct, err := tx.Contact(ctx, to)
		if err != nil {
			return err
		}
		if ct.NeedsConfirm {
			return &NeedsConfirmError{Name: to}
		}
		addr := session.Address{Name: to, Device: key.DeviceID(ct.Device)}
		ctext, err := c.cipher(tx).Encrypt(ctx, addr, pt)
		if err != nil {
			return err
		}
		their, err := tx.Identity(ctx, addr)
		if err != nil || their == nil {
			return fmt.Errorf("no identity for %s after encrypting: %v", to, err)
		}
		device = ct.Device
		msg = api.SendMessage{Type: int32(ctext.Type), Content: ctext.Body, RecipientIdentity: their.Bytes()}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err = c.apic().Send(ctx, to, device, msg); err != nil {
		return explain(err)
	}
	c.receiptsSent.Add(1)
	return nil
}

// acceptReceipt applies a receipt (docs/multidevice.md section 5) from
// from in the secret or ordinary conversation: from a peer, their
// messages named in it become delivered or read; from a device of this
// account, a read receipt's sync copy marks the messages it names from
// SyncTo as shown here too. Everything else (an unknown type, a delivered
// sync copy, a copy claimed by someone else) is ignored. It never sends
// anything: no receipt answers a receipt.
func (c *Client) acceptReceipt(ctx context.Context, tx *store.Tx, from session.Address, secret bool, cm *content.Message) error {
	r := cm.Receipt
	if r == nil || !r.Type.Known() {
		return nil
	}
	self := c.acct.Username
	switch {
	case from.Name == self:
		if secret || r.Type != content.Read || cm.SyncTo == "" || cm.SyncTo == self {
			return nil
		}
		ids, err := tx.IncomingIDs(ctx, cm.SyncTo, false, r.IDs)
		if err != nil || len(ids) == 0 {
			return err
		}
		return tx.MarkShown(ctx, tx.Now, ids...)
	case cm.SyncTo != "":
		return nil // a copy claimed by someone else
	}
	to := store.StateDelivered
	if r.Type == content.Read {
		to = store.StateRead
	}
	_, err := tx.SetReceipt(ctx, from.Name, secret, to, r.IDs)
	return err
}
