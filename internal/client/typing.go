package client

import (
	"context"
	"sync"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/session"
)

// This file: typing indicators (issue 9 part 5; docs/multidevice.md
// section 5). Like a receipt, a typing indicator is a content message
// with no body, end to end encrypted, which the server cannot tell from a
// message. It is never stored, never queued, never retried, and never
// answered; it goes only while the front end says so (the terminal UI:
// internal/tui's typing clock), and only when typing indicators are on.

// metaTypingOff is set to 1 by `hush settings typing off`.
const metaTypingOff = "typing_off"

// TypingExpiry is how long a received "started typing" holds without a
// refresh: the sender refreshes it every TypingRefresh while typing
// goes on. A receiver also ignores one the server accepted longer ago (it
// waited in the queue while the device was away).
const (
	TypingRefresh = 5 * time.Second
	TypingIdle    = 10 * time.Second
	TypingExpiry  = 15 * time.Second
)

// typingPause is how long typing indicators to a person stop after the
// server answered one with rate_limited: the per-pair message limit
// (docs/api.md, "Rate limits") counts them as messages, and they must
// leave that budget to messages.
const typingPause = time.Minute

// typingTimeout bounds the sending of one typing indicator.
const typingTimeout = 10 * time.Second

// Typing is a typing indicator received: Peer started (or stopped)
// typing in the ordinary or the secret conversation with this account.
type Typing struct {
	Peer    string
	Secret  bool
	Started bool
	At      time.Time // when the server accepted it
}

// TypingIndicators reports whether this device sends and shows typing
// indicators (on unless turned off).
func (c *Client) TypingIndicators(ctx context.Context) (bool, error) {
	v, err := c.st.Read().MetaInt(ctx, metaTypingOff, 0)
	return v == 0, err
}

// SetTypingIndicators turns typing indicators on or off, on this device.
// Off, it sends none and shows none (as Signal's setting does: who does
// not share their typing does not see others').
func (c *Client) SetTypingIndicators(ctx context.Context, on bool) error {
	v := int64(1)
	if on {
		v = 0
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, metaTypingOff, v) })
}

// typingPauses holds, per conversation, until when typing indicators to
// it are not sent (after a rate_limited answer).
type typingPauses struct {
	mu    sync.Mutex
	until map[receiptKey]time.Time
}

func (p *typingPauses) paused(k receiptKey, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.until[k])
}

func (p *typingPauses) pause(k receiptKey, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = make(map[receiptKey]time.Time)
	}
	p.until[k] = until
}

// SendTyping tells to, in the secret or the ordinary conversation, that
// this person started or stopped typing. It sends nothing (and returns
// nil) when typing indicators are off, to is this account or a person it
// blocks, that conversation holds no message yet, this device cannot take
// part in that kind of conversation, or
// the server refused one to that conversation as rate limited in the last
// minute. It is best effort: a failure is returned and the indicator is
// dropped. In an ordinary conversation the other devices of this account
// get the copy that every ordinary request carries and ignore it.
func (c *Client) SendTyping(ctx context.Context, to string, secret, started bool) error {
	to = NormalizeUsername(to)
	if to == c.acct.Username || !api.ValidUsername(to) {
		return nil
	}
	if on, err := c.TypingIndicators(ctx); err != nil || !on {
		return err
	}
	if blocked, err := c.st.Read().IsBlocked(ctx, to); err != nil || blocked {
		return err
	}
	// The receiver shows typing only in a conversation that holds a
	// message; before one, sending it would also start sessions (taking
	// one-time prekeys of the person) for nothing.
	if known, err := c.st.Read().HasText(ctx, to, secret); err != nil || !known {
		return err
	}
	k := receiptKey{peer: to, secret: secret}
	if c.typingPaused.paused(k, time.Now()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, typingTimeout)
	defer cancel()
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: !secret,
		Typing: &content.Typing{Started: started}}
	var err error
	if secret {
		err = c.sendSecretContent(ctx, to, cm)
	} else {
		err = c.sendOrdinaryContent(ctx, to, cm)
	}
	if apiclient.IsCode(err, api.CodeRateLimited) {
		c.typingPaused.pause(k, time.Now().Add(typingPause))
	}
	if err == nil {
		c.typingSent.Add(1)
	}
	return err
}

// acceptTyping returns the typing indicator cm carries, if it is to be
// shown: it comes from another person (not from a device of this account,
// not a copy claimed by someone else), with whom the conversation of that
// kind already holds a message (a stranger cannot make one appear), it
// is recent, and typing indicators are on here. Blocked senders never
// get this far (Decrypt drops what they send).
func (c *Client) acceptTyping(ctx context.Context, tx *store.Tx, from session.Address, secret bool, cm *content.Message, accepted time.Time) (*Typing, error) {
	if cm.Typing == nil || cm.Body != "" || cm.SyncTo != "" || from.Name == c.acct.Username {
		return nil, nil
	}
	if time.Since(accepted) > TypingExpiry {
		return nil, nil
	}
	if off, err := tx.MetaInt(ctx, metaTypingOff, 0); err != nil || off != 0 {
		return nil, err
	}
	known, err := tx.HasText(ctx, from.Name, secret)
	if err != nil || !known {
		return nil, err
	}
	return &Typing{Peer: from.Name, Secret: secret, Started: cm.Typing.Started, At: accepted}, nil
}
