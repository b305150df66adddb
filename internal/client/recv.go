package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// ReceiveOptions say how long Receive listens.
type ReceiveOptions struct {
	// Follow keeps listening until ctx ends, reconnecting as needed.
	Follow bool
	// Wait, without Follow, waits up to this long (from the start) for a
	// message when none was waiting.
	Wait time.Duration
	// Handle is called with each message and notice to show: first those
	// stored but never shown, then new ones as they are committed and
	// acknowledged. It runs on Receive's goroutine.
	Handle func(*store.Message)
	// Expired, if set, is called with the local ids of deleted messages
	// (Follow only).
	Expired func(ids []int64)
	// Warn, if set, is told of problems that do not stop receiving (keeping
	// the prekeys stocked failed, a queued message could not be sent yet,
	// the connection was lost).
	Warn func(error)
	// Connected, if set, is called each time the connection to the server
	// is (re)established (Follow only): what Warn said of it is over.
	Connected func()
	// Typing, if set, is called with each typing indicator to show
	// (docs/multidevice.md section 5); they are never stored. Without it
	// they are dropped (hush recv shows none).
	Typing func(Typing)
	// DownloadDir is where received files are saved; default the home's
	// files folder ([FilesDir]).
	DownloadDir string
}

func (o *ReceiveOptions) warn(err error) {
	if err != nil && o.Warn != nil {
		o.Warn(err)
	}
}

// ErrBusy means another hush process is receiving in this home.
var ErrBusy = errors.New("another hush process is receiving in this home")

// lockHome takes the home's receive lock: one receiver at a time, since the
// server keeps one connection per device.
func (c *Client) lockHome() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.st.Home(), "recv.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, ErrBusy
	}
	return func() { f.Close() }, nil
}

// Receive fetches waiting messages over the device's WebSocket and hands
// each to o.Handle after storing it. Without Follow it returns once the
// backlog is done (and, with Wait, a message came or the wait ran out).
//
// Every device receives ordinary messages, once it holds the account
// identity; the secret device receives secret ones too. A device that can
// take part in neither is refused: the secret device goes on without
// ordinary conversations (a warning says why), any other device gets the
// reason.
func (c *Client) Receive(ctx context.Context, o ReceiveOptions) error {
	secret, err := c.IsSecret(ctx)
	if err != nil {
		return err
	}
	if err := c.EnsureOrdinary(ctx); err != nil {
		if !secret {
			return err
		}
		o.warn(fmt.Errorf("ordinary conversations: %w", err))
	}
	unlock, err := c.lockHome()
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	// A block made on another device of the account is learned here
	// (docs/client.md, "Blocking"); offline, the list last learned holds
	// and receiving says what is wrong.
	bctx, bcancel := context.WithTimeout(ctx, blockSyncTimeout)
	_, _ = c.syncBlocked(bctx)
	bcancel()
	// Files an earlier run could not download, before their messages are
	// shown.
	o.warn(c.downloadPending(ctx, o))
	err = c.showUnshown(ctx, o.Handle)
	c.flushReceipts(ctx, o.Warn) // read receipts for what it showed
	if err != nil {
		return err
	}
	if !o.Follow {
		err = c.receiveOnce(ctx, start.Add(o.Wait), o)
		// Delivered receipts for what was stored, even when the run failed
		// after storing some (section 5).
		c.flushReceipts(ctx, o.Warn)
		if err != nil {
			return err
		}
		// Queued messages, key upkeep and the history ride on the same run.
		o.warn(c.FlushOutbox(ctx))
		_, err := c.MaintainKeys(ctx, false)
		o.warn(err)
		o.warn(c.historyUpkeep(ctx))
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.expiryLoop(ctx, o.Expired)
	backoff := firstBackoff
	for first := true; ctx.Err() == nil; first = false {
		o.warn(c.FlushOutbox(ctx))
		_, err := c.MaintainKeys(ctx, false)
		o.warn(err)
		o.warn(c.historyUpkeep(ctx))
		if !first {
			// Files a lost connection left pending, once it is back.
			o.warn(c.downloadPending(ctx, o))
		}
		began := time.Now()
		node, err := c.listen(ctx, o)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			backoff = firstBackoff // it had been working: try again soon
		}
		var ce *apiclient.CertificateError
		if apiclient.IsCode(err, api.CodeUnauthorized) || errors.As(err, &ce) {
			return explain(err)
		}
		if node != "" {
			// The node may be dead: the next connection tries the
			// cluster's other nodes first (internal/apiclient, failover.go).
			c.api.Skip(node)
		}
		o.warn(fmt.Errorf("connection lost (%w); connecting again", explain(err)))
		t := time.NewTimer(reconnectWait(backoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// Reconnecting after a lost connection waits a random time up to the
// backoff (which doubles, from firstBackoff to maxBackoff), plus a little:
// when a server node dies, its thousands of clients must not all come
// back in the same second (a reconnect storm: docs/performance.md, where
// hush-load storm measures what jitter does).
const (
	firstBackoff = 4 * time.Second
	maxBackoff   = 60 * time.Second
	minWait      = 500 * time.Millisecond
)

func reconnectWait(backoff time.Duration) time.Duration {
	return minWait + rand.N(backoff)
}

func (c *Client) showUnshown(ctx context.Context, handle func(*store.Message)) error {
	ms, err := c.st.Read().Unshown(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if handle != nil {
			c.handle(handle, m)
		}
	}
	return nil
}

// handle calls a receive run's Handle: read receipts owed by what it shows
// wait for the run's next flushReceipts.
func (c *Client) handle(handle func(*store.Message), m *store.Message) {
	c.handling.Add(1)
	defer c.handling.Add(-1)
	handle(m)
}

// receiveOnce reads the backlog, and then waits until deadline for a
// first message if none came.
func (c *Client) receiveOnce(ctx context.Context, deadline time.Time, o ReceiveOptions) error {
	conn, err := c.apic().Connect(ctx)
	if err != nil {
		return explain(err)
	}
	defer conn.CloseNow()
	got, empty := 0, false
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if empty {
			if got > 0 || !time.Now().Before(deadline) {
				break
			}
			rctx, cancel = context.WithDeadline(ctx, deadline)
		}
		f, err := conn.Next(rctx)
		cancel()
		if err != nil {
			if empty && ctx.Err() == nil {
				break // the wait ran out
			}
			return explain(err)
		}
		switch f.Type {
		case api.FrameMessage:
			n, err := c.accept(ctx, conn, f.Msg, o)
			if err != nil {
				return err
			}
			got += n
		case api.FrameEmpty:
			empty = true
		}
	}
	// A clean close: the server has handled every acknowledgement before
	// it answers the close.
	return conn.Close()
}

// listen runs one WebSocket connection until it fails or ctx ends. It
// returns the URL of the node it was connected to ("" if none).
func (c *Client) listen(ctx context.Context, o ReceiveOptions) (string, error) {
	conn, err := c.apic().Connect(ctx)
	if err != nil {
		return "", err
	}
	node := conn.Base()
	defer conn.CloseNow()
	if o.Connected != nil {
		o.Connected()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go conn.KeepAlive(ctx, c.opts.PingEvery, c.opts.PingTimeout)
	keys := keyKeeper(ctx, func(force bool) error {
		_, err := c.MaintainKeys(ctx, force)
		return err
	}, o.warn)
	keysTick := time.NewTicker(c.opts.CheckKeysEvery)
	defer keysTick.Stop()
	drained := false
	for {
		f, err := conn.Next(ctx)
		if err != nil {
			return node, err
		}
		switch f.Type {
		case api.FrameMessage:
			_, err := c.accept(ctx, conn, f.Msg, o)
			if drained {
				// Past the backlog: each message is acknowledged as it
				// comes (section 5).
				c.flushReceipts(ctx, o.Warn)
			}
			if err != nil {
				return node, err
			}
		case api.FrameEmpty:
			// The backlog is done: one receipt per conversation for it.
			drained = true
			c.flushReceipts(ctx, o.Warn)
		case api.FrameKeysLow:
			// Someone took one-time keys: look now, not at the next tick.
			keys(true)
		}
		select {
		case <-keysTick.C:
			keys(false)
		default:
		}
	}
}

// keyKeeper runs run (MaintainKeys) on one goroutine that lives until ctx ends,
// and returns the function that asks it to. Asks while it runs are
// coalesced into one more run after the current one (forced if any of
// them was), so that a flood of keys_low frames costs at most two runs at
// a time and no goroutine per frame.
func keyKeeper(ctx context.Context, run func(force bool) error, warn func(error)) func(force bool) {
	wake := make(chan struct{}, 1)
	var force atomic.Bool
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			err := run(force.Swap(false))
			if ctx.Err() == nil {
				warn(err)
			}
		}
	}()
	return func(f bool) {
		if f {
			force.Store(true)
		}
		select {
		case wake <- struct{}{}:
		default: // a run is pending already: it will see force
		}
	}
}

// accept stores one delivered message, acknowledges it, downloads its
// files, and hands what is to be shown to o.Handle. A file that cannot be
// downloaded now (the server unreachable) stays pending for the next run.
func (c *Client) accept(ctx context.Context, conn *apiclient.Conn, m *api.Message, o ReceiveOptions) (int, error) {
	handle := o.Handle
	ids, typing, err := c.decrypt(ctx, m)
	if err != nil {
		return 0, err
	}
	if err := conn.Ack(ctx, m.ID); err != nil {
		return 0, err
	}
	if typing != nil && o.Typing != nil {
		o.Typing(*typing)
	}
	n := 0
	for i := 0; i < len(ids); i++ {
		id := ids[i]
		notices, err := c.downloadAll(ctx, id, o.DownloadDir, o.Warn)
		o.warn(err)
		ids = append(ids, notices...) // a file refused: shown after its message
		sm, err := c.st.Read().Message(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return n, err
		}
		if handle != nil {
			c.handle(handle, sm)
		}
		n++
	}
	return n, nil
}

// Decrypt decrypts and stores one delivered message in one transaction and
// returns the local ids of what it added to conversations (the message,
// notices). A duplicate adds nothing. A message that cannot be decrypted
// or read adds a notice. Only a local failure (the store) is an error: the
// message must then not be acknowledged.
func (c *Client) Decrypt(ctx context.Context, m *api.Message) ([]int64, error) {
	ids, _, err := c.decrypt(ctx, m)
	return ids, err
}

// decrypt is Decrypt, which also returns the typing indicator to show, if
// the message is one (docs/multidevice.md section 5).
//
// What comes from a person this account blocks is decrypted (the
// sessions stay in step) and dropped: no line, no notice, no receipt, no
// typing (docs/client.md, "Blocking").
func (c *Client) decrypt(ctx context.Context, m *api.Message) ([]int64, *Typing, error) {
	if m.Type == api.TypeSenderKey {
		ids, err := c.decryptGroup(ctx, m)
		if err == nil {
			c.poke()
		}
		return ids, nil, err
	}
	from := session.Address{Name: m.From, Device: key.DeviceID(m.FromDevice)}
	ordinary := api.IsOrdinary(m.Type)
	var ids []int64
	var typing *Typing
	var decErr error
	var stored *store.Message // a new message, owed a delivered receipt
	// The server's ids are remembered 31 days, longer than it keeps a
	// message.
	forget := time.Now().Add(-31 * 24 * time.Hour)
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		ids, decErr, stored, typing = nil, nil, nil, nil
		if seen, err := tx.Received(ctx, m.ID); err != nil || seen {
			return errors.Join(err, errSeen)
		}
		if err := tx.SetReceived(ctx, m.ID, forget); err != nil {
			return err
		}
		var pt []byte
		var err error
		if ordinary {
			// Types 12 and 13: the ordinary sessions, under the account
			// identity (docs/multidevice.md section 1, Receiving).
			if c.st.AccountIdentity() == nil {
				decErr = ErrNoAccountIdentity
				return errDecryptFailed
			}
			pt, err = c.ordinaryCipher(tx.Ordinary()).Decrypt(ctx, from, ordinaryWireType(m.Type), m.Content)
		} else {
			pt, err = c.cipher(tx).Decrypt(ctx, from, int(m.Type), m.Content)
		}
		if err != nil {
			decErr = err
			return errDecryptFailed
		}
		if from.Name != c.acct.Username {
			if blocked, err := tx.IsBlocked(ctx, from.Name); err != nil {
				return err
			} else if blocked {
				ids = tx.Notices
				return nil
			}
		}
		cm, err := content.Parse(pt)
		if err != nil {
			// The ratchet step is kept (the message authenticated), but its
			// content is unreadable: say so.
			if _, err := tx.AddNoticeIn(ctx, from.Name, !ordinary, fmt.Sprintf("A message from %s could not be read (it may come from a newer hush).", from.Name)); err != nil {
				return err
			}
			ids = tx.Notices
			return nil
		}
		// Franking (docs/franking.md): what does not open its commitment
		// is dropped, so that nothing is shown that could not be reported.
		fr, err := c.checkFranking(m, pt, cm)
		if err != nil {
			if _, err := tx.AddNoticeIn(ctx, from.Name, !ordinary, frankingNotice(from.Name)); err != nil {
				return err
			}
			ids = tx.Notices
			return nil
		}
		if cm.Body == "" && cm.Typing != nil {
			if typing, err = c.acceptTyping(ctx, tx, from, !ordinary, cm, time.UnixMilli(m.Timestamp)); err != nil {
				return err
			}
		}
		var sm *store.Message
		if ordinary {
			if sm, err = c.ordinaryMessage(ctx, tx, from, cm); err != nil || sm == nil {
				ids = tx.Notices
				return err
			}
			sm.ServerID = m.ID
		} else {
			if cm.Body == "" && len(cm.Attachments) == 0 {
				// A receipt, or typing (handed over after the
				// commit): no line (docs/multidevice.md section 5).
				ids = tx.Notices
				return c.acceptReceipt(ctx, tx, from, true, cm)
			}
			sm = &store.Message{Peer: from.Name, MsgID: cm.ID, Kind: store.KindText, Secret: true,
				Body: cm.Body, SentAt: cm.SentAt, Timer: cm.Timer, State: store.StateReceived, ServerID: m.ID, Device: uint32(from.Device),
				Attachments: receivedAttachments(cm.Attachments)}
		}
		added, err := tx.AddMessage(ctx, sm)
		if err != nil {
			return err
		}
		ids = append(ids, tx.Notices...)
		stored = nil
		if added {
			ids = append(ids, sm.ID)
			stored = sm
			// What a report needs, kept with the message (and deleted
			// with it); not for this account's own sync copies.
			if fr != nil && !sm.Outgoing {
				if err := tx.SetFranking(ctx, sm.ID, fr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		c.queueDelivered(stored)
	}
	if errors.Is(err, errSeen) {
		return nil, nil, nil // processed before; only the acknowledgement was lost
	}
	if errors.Is(err, errDecryptFailed) {
		if errors.Is(decErr, session.ErrDuplicate) {
			return nil, nil, nil // the same message again (a sender's resend)
		}
		notice := true
		if from.Name != c.acct.Username {
			blocked, err := c.st.Read().IsBlocked(ctx, from.Name)
			if err != nil {
				return nil, nil, err
			}
			notice = !blocked
		}
		// Whatever the cause, the message is useless: keep a notice and let
		// the server drop it. One signed by a key the person replaced is
		// not theirs now: it is never shown, and the notice says why.
		text := fmt.Sprintf("A message from %s could not be decrypted.", from.Name)
		var untrusted *session.UntrustedIdentityError
		switch {
		case ordinary && errors.Is(decErr, ErrNoAccountIdentity):
			text = fmt.Sprintf("A message from %s in your ordinary conversation could not be decrypted: %v.", from.Name, ErrNoAccountIdentity)
		case ordinary && errors.As(decErr, &untrusted):
			text = fmt.Sprintf("A message that claims to be from %s's device %d was refused and is not shown: it was not made with your account's key.", from.Name, from.Device)
		case errors.As(decErr, &untrusted):
			text = fmt.Sprintf("A message that claims to be from %s was refused and is not shown: it was sent with a key %s replaced (an old device of theirs, or a copy of one).", from.Name, from.Name)
		}
		err = c.st.Update(ctx, func(tx *store.Tx) error {
			if err := tx.SetReceived(ctx, m.ID, forget); err != nil {
				return err
			}
			if !notice {
				return nil
			}
			_, err := tx.AddNoticeIn(ctx, from.Name, !ordinary, text)
			ids = tx.Notices
			return err
		})
	}
	if err != nil {
		return nil, nil, err
	}
	c.poke()
	return ids, typing, nil
}

var (
	errDecryptFailed = errors.New("decryption failed")
	errSeen          = errors.New("seen before")
)

// MarkShown records that messages were shown to the person now: the
// countdown of those with a timer starts.
func (c *Client) MarkShown(ctx context.Context, ids ...int64) error {
	return c.MarkShownAt(ctx, time.Now(), ids...)
}

// MarkShownAt is MarkShown for messages shown at the given time.
//
// The messages of others shown here for the first time get a read receipt
// (docs/multidevice.md section 5), unless read receipts are off; it is
// sent before MarkShownAt returns, and dropped if that fails.
func (c *Client) MarkShownAt(ctx context.Context, at time.Time, ids ...int64) error {
	var first []*store.Message
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		first = first[:0]
		for _, id := range ids {
			m, err := tx.Message(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !m.Shown && !m.Outgoing && m.Kind == store.KindText && m.MsgID != (content.ID{}) && m.Peer != c.acct.Username {
				first = append(first, m)
			}
		}
		return tx.MarkShown(ctx, at, ids...)
	})
	c.poke()
	if err == nil {
		c.readShown(ctx, first)
	}
	return err
}

// poke wakes the expiry loop to look at the next expiry again.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Expire deletes the messages whose time is up, then empties the WAL so
// that no copy of them stays in any file of the home. It returns their ids.
func (c *Client) Expire(ctx context.Context) ([]int64, error) {
	// A read first: most of the time nothing is due, and a write
	// transaction would take the database's write lock for nothing.
	if next, err := c.st.Read().NextExpiry(ctx); err != nil || next.IsZero() || next.After(time.Now()) {
		return nil, err
	}
	var ids []int64
	var blobs []string
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		files, err := tx.ExpiringFiles(ctx, tx.Now)
		if err != nil {
			return err
		}
		if blobs, err = tx.ExpiringPendingBlobs(ctx, tx.Now); err != nil {
			return err
		}
		if ids, err = tx.Expire(ctx, tx.Now); err != nil {
			return err
		}
		// The files go with their messages: before the commit, so that a
		// crash leaves no file of a deleted message (at worst a message
		// whose file is gone, deleted again on the next run).
		removeFiles(files)
		return nil
	})
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	c.discardBlobs(ctx, blobs)
	return ids, c.st.Checkpoint(ctx)
}

// expiryLoop deletes messages as they expire, until ctx ends. It looks
// again at least every second, since other hush processes on the same
// home (a send) start countdowns too.
func (c *Client) expiryLoop(ctx context.Context, notify func([]int64)) {
	for {
		next, err := c.st.Read().NextExpiry(ctx)
		wait := time.Second
		if err == nil && !next.IsZero() {
			wait = min(time.Until(next), time.Second)
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.wake:
			t.Stop()
			continue
		case <-t.C:
		}
		ids, err := c.Expire(ctx)
		if err != nil {
			// A checkpoint blocked by another process's reader: try again
			// until it goes through.
			for ctx.Err() == nil && c.st.Checkpoint(ctx) != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if len(ids) > 0 && notify != nil {
			notify(ids)
		}
	}
}

// RunExpiry runs the expiry loop until ctx ends (for a UI that receives
// with Follow, which runs it already, this is not needed).
func (c *Client) RunExpiry(ctx context.Context, notify func([]int64)) { c.expiryLoop(ctx, notify) }
