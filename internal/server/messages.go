package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server/store"
)

// Outgoing is one message a device sends.
type Outgoing struct {
	To     string // username
	Device uint32
	Msg    api.SendMessage
}

// SendOutcome is what became of one Outgoing: a result once it is durable,
// or an error.
type SendOutcome struct {
	Result api.SendResult
	Err    error
}

// Send queues messages from p, in order, and returns once those accepted
// are on disk. Messages to a person who blocks p are dropped but answered
// like the others, so that a blocked sender cannot tell.
func (s *Server) Send(ctx context.Context, p Principal, out []Outgoing) []SendOutcome {
	start := time.Now()
	res := make([]SendOutcome, len(out))
	if s.closing() {
		for i := range res {
			res[i].Err = errClosing
		}
		return res
	}
	now := s.now()
	nowMs := now.UnixMilli()
	var batch []*store.Message
	var idx []int
	for i := range out {
		m, err := s.checkOutgoing(ctx, p, &out[i], now)
		switch {
		case err != nil:
			res[i].Err = err
		case m == nil: // blocked: drop, answer as usual
			res[i].Result = api.SendResult{ID: newMessageID(), Timestamp: nowMs}
			s.m.blocked.Inc()
		default:
			batch = append(batch, m)
			idx = append(idx, i)
		}
	}
	if len(batch) == 0 {
		return res
	}
	results, err := s.st.EnqueueBatch(ctx, batch, s.cfg.MaxQueue, s.cfg.MaxQueuePerSender)
	if err != nil {
		err = s.internal("enqueue", err)
		for _, i := range idx {
			res[i].Err = err
		}
		return res
	}
	d := time.Since(start).Seconds()
	for j, r := range results {
		i := idx[j]
		switch {
		case r.Err == nil:
			res[i].Result = api.SendResult{ID: batch[j].PublicID, Timestamp: batch[j].Timestamp}
			s.m.received.Inc()
			s.m.sendLatency.Observe(d)
		case errors.Is(r.Err, store.ErrMailboxFull):
			res[i].Err = newError(api.CodeMailboxFull, "the recipient device's mailbox is full")
		case errors.Is(r.Err, store.ErrNotFound):
			res[i].Err = errNoDevice
		case errors.Is(r.Err, store.ErrBlobUnusable):
			res[i].Err = errBlobUnusable
		default:
			res[i].Err = s.internal("enqueue", r.Err)
		}
	}
	return res
}

// checkOutgoing validates one message and turns it into a store.Message;
// it returns nil, nil when the recipient blocks the sender.
func (s *Server) checkOutgoing(ctx context.Context, p Principal, o *Outgoing, now time.Time) (*store.Message, error) {
	m := &o.Msg
	switch {
	case len(m.Content) == 0:
		return nil, badRequest("content is empty")
	case len(m.Content) > s.cfg.MaxContentBytes:
		return nil, newError(api.CodeTooLarge, "content is %d bytes, more than %d", len(m.Content), s.cfg.MaxContentBytes)
	case m.ExpiresIn < 0:
		return nil, badRequest("expiresIn must not be negative")
	case len(m.Commitment) != 0 && len(m.Commitment) != api.FrankingCommitmentSize:
		return nil, badRequest("frankingCommitment must be %d bytes", api.FrankingCommitmentSize)
	case o.Device == 0:
		return nil, badRequest("device must be given")
	case api.IsOrdinary(m.Type):
		// Ordinary messages go to every device at once, all or nothing
		// (docs/multidevice.md section 1).
		return nil, badRequest("ordinary messages go to POST /v1/ordinary/messages")
	}
	dev := accountKey(p.Account) + "." + accountKey(int64(p.Device))
	if !s.limMsgs.Allow(dev, 1) || !s.limBytes.Allow(dev, float64(len(m.Content))) {
		return nil, errRateLimited
	}
	u, err := s.lookupUser(ctx, o.To)
	if err != nil {
		return nil, err
	}
	if !u.devices[o.Device] {
		return nil, errNoDevice
	}
	// Per sender and recipient, so that one account cannot flood another
	// at the per-device rate (charged for blocked senders too: they cannot
	// tell).
	if !s.limMsgPair.Allow(accountKey(p.Account)+">"+accountKey(u.id), 1) {
		return nil, errRateLimited
	}
	if api.IsSecret(m.Type) || len(m.RecipientIdentity) > 0 {
		if err := s.checkSecret(ctx, p, u, o); err != nil {
			return nil, err
		}
	}
	// Checked before the block, so that a blocked sender cannot tell.
	blobs, err := s.checkBlobs(ctx, p, m.Blobs)
	if err != nil {
		return nil, err
	}
	if blocked, err := s.blockedBy(ctx, u.id, p.Account); err != nil {
		return nil, err
	} else if blocked {
		return nil, nil
	}
	ttl := s.cfg.MessageTTL
	if m.ExpiresIn > 0 && time.Duration(m.ExpiresIn) < ttl/time.Second {
		ttl = time.Duration(m.ExpiresIn) * time.Second
	}
	// One HMAC, only for messages that are queued (docs/franking.md).
	fr, err := s.frank(m.Commitment, franking.Context{Sender: p.Username, SenderDevice: p.Device,
		Recipient: o.To, RecipientDevice: o.Device, Timestamp: now.UnixMilli()})
	if err != nil {
		return nil, err
	}
	return &store.Message{
		PublicID:  newMessageID(),
		To:        store.DeviceRef{Account: u.id, Device: o.Device},
		From:      p.DeviceRef,
		Type:      m.Type,
		Content:   m.Content,
		Timestamp: now.UnixMilli(),
		ExpiresAt: now.Add(ttl).UnixMilli(),
		Franking:  fr,
		Blobs:     blobs,
	}, nil
}

var (
	errSenderNotSecret = newError(api.CodeNotSecretDevice, "secret-conversation messages must come from the sender's secret device")
	errStaleSecret     = newError(api.CodeStaleSecretDevice, "the recipient's secret device or identity key changed")
)

// checkSecret enforces the secret-device rule of
// [api.SendMessage.RecipientIdentity] for every secret-conversation
// message, whatever the request carries: a secret conversation runs
// between the two secret devices, so that an old device (or a copy of an
// old key) cannot speak for its account once another device holds the
// secret; and the sender, when it says which identity key it holds for the
// recipient, must hold the current one.
func (s *Server) checkSecret(ctx context.Context, p Principal, to *userEntry, o *Outgoing) error {
	from, err := s.lookupUser(ctx, p.Username)
	if err != nil {
		return err
	}
	if from.secret != p.Device {
		return errSenderNotSecret
	}
	if to.secret != o.Device || len(o.Msg.RecipientIdentity) > 0 && !bytes.Equal(to.identity, o.Msg.RecipientIdentity) {
		return errStaleSecret
	}
	return nil
}

// newMessageID draws the id clients see for a message: 63 random bits
// (positive, so that every client stores it as is), for every message,
// queued or dropped because the recipient blocks the sender. Neither the
// shape of an id nor the difference between two ids tells a sender
// anything: not a block, nor how many messages the server carries.
func newMessageID() int64 {
	for {
		if id := int64(binary.BigEndian.Uint64(randomBytes(8)) >> 1); id != 0 {
			return id
		}
	}
}

// toAPI converts a stored message to its API form.
func (s *Server) toAPI(ctx context.Context, m *store.Message) (api.Message, error) {
	from, err := s.username(ctx, m.From.Account)
	if err != nil {
		return api.Message{}, err
	}
	return api.Message{ID: m.PublicID, Timestamp: m.Timestamp, From: from, FromDevice: m.From.Device,
		Type: m.Type, Content: m.Content, ExpiresAt: m.ExpiresAt, Franking: toAPIFranking(m.Franking)}, nil
}

// username returns an account's username for deliveries: the store keeps
// the sender's account beside a message, not its username. Usernames never
// change, so entries are never forgotten.
func (s *Server) username(ctx context.Context, account int64) (string, error) {
	if name, ok := s.names.get(account); ok {
		return name, nil
	}
	t := s.names.ticket(account)
	a, err := s.st.AccountByID(ctx, account)
	if err != nil {
		return "", err
	}
	s.names.fill(account, t, a.Username)
	return a.Username, nil
}
