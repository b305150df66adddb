package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// NeedsConfirmError refuses sending to a verified person whose identity key
// changed, until the user checks the new safety number (Verify or Trust).
type NeedsConfirmError struct{ Name string }

func (e *NeedsConfirmError) Error() string {
	return fmt.Sprintf("%s's safety number changed, and you had verified %s", e.Name, e.Name)
}

// QueuedError says a message was stored and encrypted but not yet accepted
// by the server; it goes out with the next request that reaches it.
type QueuedError struct {
	Message *store.Message
	Err     error
}

func (e *QueuedError) Error() string {
	return fmt.Sprintf("not sent yet (%v); it is queued", e.Err)
}

func (e *QueuedError) Unwrap() error { return e.Err }

// errNeedBundle: no usable session, fetch the peer's prekey bundle.
var errNeedBundle = errors.New("need a bundle")

// MaxText is the most bytes of UTF-8 text a message holds.
const MaxText = content.MaxBody

// CheckText checks a message body and timer (0: none) before sending.
func CheckText(text string, timer time.Duration) error {
	switch {
	case strings.TrimSpace(text) == "":
		return errors.New("the message is empty")
	case !utf8.ValidString(text):
		return errors.New("the message is not valid UTF-8 text")
	case len(text) > content.MaxBody:
		return fmt.Errorf("the message is %d bytes; the most is %d", len(text), content.MaxBody)
	case timer != 0:
		return checkTimer(timer, "")
	}
	return nil
}

// Send sends text to the person to in a secret conversation, starting it
// if there is none (PQXDH from a prekey bundle of their secret device).
// timer, if not zero, makes the message disappear that long after it is
// sent (here) and after it is first shown (there). It returns once the
// server has the message; the message is stored either way, and a
// [*QueuedError] says it waits in the outbox. Refused for a needed
// confirmation ([*NeedsConfirmError]), it is stored as not sent. The
// message returned, when one was stored, is as it is now (sent, queued or
// failed). A countdown starts only when the server accepts it.
func (c *Client) Send(ctx context.Context, to, text string, timer time.Duration) (*Message, error) {
	m, err := c.send(ctx, to, text, timer)
	if m != nil {
		if now, err := c.st.Read().Message(ctx, m.ID); err == nil {
			m = now
		}
	}
	return m, err
}

// SendFiles sends text (which may be empty) with the files at paths (1 to
// MaxFiles, each at most MaxFileSize bytes), in the secret conversation
// with to (as Send, timer included) or the ordinary one (as SendOrdinary).
// The files are checked first ([*FileError]), then each is encrypted and
// uploaded (resuming the upload an interrupted run of the same send left),
// and the message naming them is sent last (docs/client.md "Files").
func (c *Client) SendFiles(ctx context.Context, to, text string, timer time.Duration, secret bool, paths []string) (*Message, error) {
	if len(paths) == 0 {
		return nil, errors.New("no file to send")
	}
	var m *store.Message
	var err error
	if secret {
		m, err = c.send(ctx, to, text, timer, paths)
	} else {
		if timer != 0 {
			return nil, errors.New("only messages of secret conversations disappear")
		}
		m, err = c.sendOrdinary(ctx, to, text, paths)
	}
	return c.reread(ctx, m), err
}

// checkMessage is CheckText for a message that may carry files (and then
// no text).
func checkMessage(text string, timer time.Duration, files []string) error {
	if len(files) > 0 && text == "" {
		if timer != 0 {
			return checkTimer(timer, "")
		}
		return nil
	}
	return CheckText(text, timer)
}

// sendUploads uploads the files of a message, when it has some.
func (c *Client) sendUploads(ctx context.Context, to string, secret bool, files []string) ([]store.Attachment, []int64, error) {
	if len(files) == 0 {
		return nil, nil, nil
	}
	us, err := c.uploadFiles(ctx, to, secret, files)
	if err != nil {
		return nil, nil, err
	}
	atts, ids := make([]store.Attachment, len(us)), make([]int64, len(us))
	for i, u := range us {
		atts[i], ids[i] = u.att, u.upload
	}
	return atts, ids, nil
}

func (c *Client) send(ctx context.Context, to, text string, timer time.Duration, files ...[]string) (*store.Message, error) {
	to = NormalizeUsername(to)
	var paths []string
	if len(files) > 0 {
		paths = files[0]
	}
	if err := checkMessage(text, timer, paths); err != nil {
		return nil, err
	}
	if to == c.acct.Username {
		return nil, errors.New("a secret conversation is between two people: you cannot start one with yourself")
	}
	if err := c.refuseBlocked(ctx, to); err != nil {
		return nil, err
	}
	if secret, err := c.IsSecret(ctx); err != nil {
		return nil, err
	} else if !secret {
		return nil, ErrNotSecret
	}
	atts, uploads, err := c.sendUploads(ctx, to, true, paths)
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
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Body: text, Timer: timer,
		Attachments: contentAttachments(atts)}
	pt, commitment, err := frank(cm)
	if err != nil {
		return nil, err
	}
	var row *store.Message
	var bundle *session.Bundle
	for attempt := 0; ; attempt++ {
		out, err := c.encrypt(ctx, to, pt, commitment, cm, bundle, &row, atts, uploads)
		if errors.Is(err, errNeedBundle) && bundle == nil && attempt < 3 {
			if bundle, err = c.fetchBundle(ctx, to); err != nil {
				if row != nil {
					c.fail(ctx, row.ID)
				}
				return row, err
			}
			continue
		}
		if err != nil {
			var nc *NeedsConfirmError
			if errors.As(err, &nc) && row == nil {
				// Refused before a ratchet step: keep it, not sent, as
				// when the refusal comes later, so that it stays in the
				// conversation (and its timer never starts).
				row = c.keepUnsent(ctx, cm, to, atts)
			}
			return c.reread(ctx, row), err
		}
		bundle = nil
		err = c.post(ctx, out)
		if errors.Is(err, errStale) && attempt < 3 {
			// Their secret device or identity changed: start again from
			// a fresh bundle, re-encrypting the same message.
			if bundle, err = c.fetchBundle(ctx, to); err != nil {
				c.fail(ctx, row.ID)
				return row, err
			}
			continue
		}
		if errors.Is(err, errStale) {
			c.fail(ctx, row.ID)
			return row, fmt.Errorf("the server keeps refusing the message: %s's secret device keeps changing; try again", to)
		}
		if err != nil {
			return row, err
		}
		m, err := c.st.Read().Message(ctx, row.ID)
		if err != nil {
			return row, err
		}
		c.poke()
		return m, nil
	}
}

// encrypt runs one ratchet step for to and queues the ciphertext, in one
// transaction, with the message row (made on the first call, with its
// attachments atts, when the uploads of their files are forgotten).
func (c *Client) encrypt(ctx context.Context, to string, pt, commitment []byte, cm *content.Message, b *session.Bundle, row **store.Message,
	atts []store.Attachment, uploads []int64) (*store.Outgoing, error) {
	var out *store.Outgoing
	var refused *session.UntrustedIdentityError
	orig := *row
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		out, refused = nil, nil
		ct, err := tx.Contact(ctx, to)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if ct != nil && ct.NeedsConfirm {
			return &NeedsConfirmError{Name: to}
		}
		ci := c.cipher(tx)
		var addr session.Address
		switch {
		case b != nil:
			addr = session.Address{Name: to, Device: b.DeviceID}
			if err := ci.ProcessBundle(ctx, addr, b); err != nil {
				if errors.As(err, &refused) {
					// A verified person's new key: keep it for trust or
					// verify, and commit that.
					return tx.SetPending(ctx, to, refused.Received, uint32(b.DeviceID))
				}
				return fmt.Errorf("starting a secret conversation with %s: %w", to, err)
			}
			if len(tx.Notices) > 0 && *row != nil {
				// A notice of their key change: the message follows it.
				m := **row
				if err := tx.Renumber(ctx, &m); err != nil {
					return err
				}
				*row = &m
			}
		case ct == nil:
			return errNeedBundle
		default:
			addr = session.Address{Name: to, Device: key.DeviceID(ct.Device)}
		}
		ctext, err := ci.Encrypt(ctx, addr, pt)
		if errors.Is(err, session.ErrNoSession) {
			return errNeedBundle
		}
		if errors.As(err, &refused) {
			refused = nil
			if ct != nil && ct.Identity != nil && *ct.Identity == refusedKey(err) {
				return &NeedsConfirmError{Name: to}
			}
			return errNeedBundle // a session with an old key of theirs
		}
		if err != nil {
			return err
		}
		// Encrypt saved the session's identity as the person's current one.
		their, err := tx.Identity(ctx, addr)
		if err != nil || their == nil {
			return fmt.Errorf("no identity for %s after encrypting: %v", to, err)
		}
		if *row == nil {
			m := &store.Message{Peer: to, MsgID: cm.ID, Outgoing: true, Kind: store.KindText, Secret: true,
				Body: cm.Body, SentAt: cm.SentAt, Timer: cm.Timer, Shown: true, State: store.StatePending, Attachments: atts}
			if _, err := tx.AddMessage(ctx, m); err != nil {
				return err
			}
			for _, u := range uploads {
				if err := tx.DeleteUpload(ctx, u); err != nil {
					return err
				}
			}
			*row = m
		}
		out = &store.Outgoing{Message: (*row).ID, Peer: to, Device: uint32(addr.Device),
			Identity: their.Bytes(), Type: ctext.Type, Ciphertext: ctext.Body, Blobs: blobIDs((*row).Attachments), Commitment: commitment}
		return tx.AddOutgoing(ctx, out)
	})
	if err != nil {
		*row = orig
		var nc *NeedsConfirmError
		if errors.As(err, &nc) && orig != nil {
			// A queued message that cannot go until the user confirms:
			// it is not sent (they will send again).
			c.fail(ctx, orig.ID)
		}
		return nil, err
	}
	if refused != nil {
		if *row != nil {
			c.fail(ctx, (*row).ID)
		}
		return nil, &NeedsConfirmError{Name: to}
	}
	return out, nil
}

// keepUnsent stores a message that was refused before it was encrypted,
// as not sent. Its timer stays unstarted: a countdown starts only when the
// server accepts a message (SetSent).
func (c *Client) keepUnsent(ctx context.Context, cm *content.Message, to string, atts []store.Attachment) *store.Message {
	m := &store.Message{Peer: to, MsgID: cm.ID, Outgoing: true, Kind: store.KindText, Secret: true,
		Body: cm.Body, SentAt: cm.SentAt, Timer: cm.Timer, Shown: true, State: store.StateFailed, Attachments: atts}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { _, err := tx.AddMessage(ctx, m); return err }); err != nil {
		return nil
	}
	return m
}

// reread returns the stored state of a message Send made (failing may have
// changed it since), or m as it is if it cannot be read.
func (c *Client) reread(ctx context.Context, m *store.Message) *store.Message {
	if m == nil {
		return nil
	}
	if sm, err := c.st.Read().Message(ctx, m.ID); err == nil {
		return sm
	}
	return m
}

func refusedKey(err error) key.IdentityKey {
	var u *session.UntrustedIdentityError
	if errors.As(err, &u) {
		return u.Received
	}
	return key.IdentityKey{}
}

func (c *Client) fail(ctx context.Context, id int64) {
	_ = c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetFailed(ctx, id) })
}

// fetchBundle gets a prekey bundle of to's secret device.
func (c *Client) fetchBundle(ctx context.Context, to string) (*session.Bundle, error) {
	ab, err := c.apic().Bundle(ctx, to, 0)
	if err != nil {
		if apiclient.IsCode(err, api.CodeNotFound) {
			return nil, fmt.Errorf("%s cannot receive secret messages: no such person, or they have no secret device with keys", to)
		}
		return nil, explain(err)
	}
	j, err := json.Marshal(ab)
	if err != nil {
		return nil, err
	}
	var b session.Bundle
	if err := json.Unmarshal(j, &b); err != nil {
		return nil, fmt.Errorf("the server sent a bad prekey bundle for %s: %w", to, err)
	}
	return &b, nil
}

var errStale = errors.New("stale secret device")

// post sends one queued message and records the result: sent, failed for
// good, or still queued.
func (c *Client) post(ctx context.Context, o *store.Outgoing) error {
	res, err := c.apic().Send(ctx, o.Peer, o.Device, api.SendMessage{Type: int32(o.Type), Content: o.Ciphertext,
		ExpiresIn: o.ExpiresIn, RecipientIdentity: o.Identity, Blobs: o.Blobs, Commitment: o.Commitment})
	trace("server-answered")
	if err == nil {
		return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSent(ctx, o.Message, res.ID) })
	}
	var ce *apiclient.CertificateError
	if errors.As(err, &ce) {
		// Not queued as if the server were down: it stays in the outbox,
		// and the person must decide (see Repin).
		return explain(err)
	}
	var e *apiclient.Error
	if !errors.As(err, &e) || e.Status >= 500 || e.Code == api.CodeRateLimited || e.Code == api.CodeMailboxFull {
		m, _ := c.st.Read().Message(ctx, o.Message)
		return &QueuedError{Message: m, Err: explain(err)}
	}
	if e.Code == api.CodeStaleSecretDevice {
		return errStale
	}
	c.fail(ctx, o.Message)
	if e.Code == api.CodeNotSecretDevice {
		_ = c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, "secret", 0) })
		return ErrNotSecret
	}
	return explain(err)
}

// FlushOutbox sends the queued messages, oldest first.
func (c *Client) FlushOutbox(ctx context.Context) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.flushOutboxLocked(ctx)
}

func (c *Client) flushOutboxLocked(ctx context.Context) error {
	out, err := c.st.Read().Outbox(ctx)
	if err != nil || len(out) == 0 {
		return err
	}
	defer c.poke()
	for _, o := range out {
		var err error
		if id, ok := store.ParseGroupPeer(o.Peer); ok {
			err = c.flushGroup(ctx, o, id)
		} else if o.Request != nil {
			err = c.flushOrdinary(ctx, o)
		} else if err = c.post(ctx, o); errors.Is(err, errStale) {
			err = c.resend(ctx, o)
		}
		var q *QueuedError
		var cc *CertificateChangedError
		if errors.As(err, &q) || errors.As(err, &cc) {
			return err // the server is unreachable or not trusted: keep the rest for later
		}
		// Other failures are recorded on the message; go on.
	}
	return nil
}

// resend re-encrypts a queued message whose recipient's secret device
// changed, for the new one.
func (c *Client) resend(ctx context.Context, o *store.Outgoing) error {
	m, err := c.st.Read().Message(ctx, o.Message)
	if err != nil {
		return err
	}
	cm := &content.Message{ID: m.MsgID, SentAt: m.SentAt, Body: m.Body, Timer: m.Timer, Attachments: contentAttachments(m.Attachments)}
	pt, commitment, err := frank(cm) // a fresh key: this is another ciphertext
	if err != nil {
		return err
	}
	b, err := c.fetchBundle(ctx, o.Peer)
	if err != nil {
		c.fail(ctx, m.ID)
		return err
	}
	out, err := c.encrypt(ctx, o.Peer, pt, commitment, cm, b, &m, nil, nil)
	if err != nil {
		return err
	}
	if err := c.post(ctx, out); errors.Is(err, errStale) {
		c.fail(ctx, m.ID)
		return err
	} else {
		return err
	}
}
