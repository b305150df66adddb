package server

import (
	"context"
	"errors"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server/store"
)

// Group sends (issue 10, docs/groups.md, docs/api.md): one
// SenderKeyMessage for a list of devices. The server knows no groups: it
// sees a list of devices, checks it as an ordinary send's (every ordinary
// device of each account named, and of the sender's own account), and
// stores one copy for each device in one transaction. Signal's server does
// the same for its multi-recipient sends (PUT /v1/messages/multi_recipient:
// 409 with the missing and extra devices); it checks registration ids
// too, which a SenderKeyMessage, the same for every device, does not need.

// SendGroup stores r.Content for every device of r.Devices, all or nothing,
// and answers once it is durable. Copies for accounts that block the
// sender are dropped without a word; a full mailbox is skipped, never a
// failure of the send, so that one member who never reads does not stop
// the group.
func (s *Server) SendGroup(ctx context.Context, p Principal, r api.GroupSend) (api.GroupSendResult, error) {
	start := time.Now()
	if s.closing() {
		return api.GroupSendResult{}, errClosing
	}
	accts, err := s.checkGroupSend(p, &r)
	if err != nil {
		return api.GroupSendResult{}, err
	}
	hist, err := s.checkHistory(p, r.History)
	if err != nil {
		return api.GroupSendResult{}, err
	}
	// Charged before anything is looked up, per recipient device: one
	// request to 4,096 mailboxes costs what 4,096 single sends would, in
	// copies and in bytes, and once as a message of the device.
	n := len(r.Devices)
	dev := accountKey(p.Account) + "." + accountKey(int64(p.Device))
	if !s.limMsgs.Allow(dev, 1) || !s.limGroupCopies.Allow(dev, float64(n)) || !s.limBytes.Allow(dev, float64(n*len(r.Content))) {
		return api.GroupSendResult{}, errRateLimited
	}
	blobs, err := s.checkBlobs(ctx, p, r.Blobs)
	if err != nil {
		return api.GroupSendResult{}, err
	}
	now := s.now()
	ttl := s.cfg.MessageTTL
	if r.ExpiresIn > 0 && time.Duration(r.ExpiresIn) < ttl/time.Second {
		ttl = time.Duration(r.ExpiresIn) * time.Second
	}
	f := store.Fanout{MaxQueue: s.cfg.MaxQueue, MaxPerSender: s.cfg.MaxQueuePerSender, SkipFull: true,
		History: hist, HistoryAccount: p.Account, MaxHistory: s.cfg.MaxHistoryRecords,
		Messages: make([]*store.Message, 0, n)}
	names := make(map[int64]string, len(accts)+1)
	own := false
	for _, a := range accts {
		u, err := s.lookupUser(ctx, a.username)
		if err != nil {
			return api.GroupSendResult{}, err
		}
		names[u.id] = a.username
		fa := store.FanoutAccount{Account: u.id, Devices: make(map[uint32]uint32, len(a.devices))}
		for _, d := range a.devices {
			fa.Devices[d] = 0 // a SenderKeyMessage has no registration id to check
		}
		drop := false
		if u.id == p.Account {
			own = true
			fa.Except = p.Device
		} else {
			// Per sender and recipient account, as for every send.
			if !s.limMsgPair.Allow(accountKey(p.Account)+">"+accountKey(u.id), 1) {
				return api.GroupSendResult{}, errRateLimited
			}
			if drop, err = s.blockedBy(ctx, u.id, p.Account); err != nil {
				return api.GroupSendResult{}, err
			}
		}
		f.Accounts = append(f.Accounts, fa)
		if drop {
			s.m.blocked.Add(float64(len(a.devices)))
			continue
		}
		for _, d := range a.devices {
			// One reporting tag per recipient device (docs/franking.md):
			// the one commitment, bound to each device it goes to.
			fr, err := s.frank(r.Commitment, franking.Context{Sender: p.Username, SenderDevice: p.Device,
				Recipient: a.username, RecipientDevice: d, Timestamp: now.UnixMilli()})
			if err != nil {
				return api.GroupSendResult{}, err
			}
			f.Messages = append(f.Messages, &store.Message{
				PublicID:  newMessageID(),
				To:        store.DeviceRef{Account: u.id, Device: d},
				From:      p.DeviceRef,
				Type:      api.TypeSenderKey,
				Content:   r.Content, // one slice for every copy
				Timestamp: now.UnixMilli(),
				ExpiresAt: now.Add(ttl).UnixMilli(),
				Franking:  fr,
				Blobs:     blobs,
			})
		}
	}
	if !own {
		// The sender's other devices take part in the group as its
		// other members' do: left out, the account must have none.
		f.Accounts = append(f.Accounts, store.FanoutAccount{Account: p.Account, Except: p.Device})
		names[p.Account] = p.Username
	}
	res, err := s.st.EnqueueFanout(ctx, f)
	var me *store.MismatchError
	switch {
	case errors.As(err, &me):
		return api.GroupSendResult{}, s.mismatchError(p, me, names)
	case errors.Is(err, store.ErrHistoryFull):
		return api.GroupSendResult{}, errHistoryFull
	case errors.Is(err, store.ErrBlobUnusable):
		return api.GroupSendResult{}, errBlobUnusable
	case err != nil:
		return api.GroupSendResult{}, s.internal("enqueue group", err)
	}
	d := time.Since(start).Seconds()
	for _, r := range res {
		if r.Err == nil {
			s.m.received.Inc()
			s.m.sendLatency.Observe(d)
		} // else the device's mailbox is full: skipped
	}
	return api.GroupSendResult{Timestamp: now.UnixMilli()}, nil
}

// groupAccount is one account's devices in a GroupSend, in request order.
type groupAccount struct {
	username string
	devices  []uint32
}

// checkGroupSend validates what needs no lookup and groups the devices
// by account, in the order the accounts first appear.
func (s *Server) checkGroupSend(p Principal, r *api.GroupSend) ([]groupAccount, error) {
	switch {
	case r.Type != api.TypeSenderKey:
		return nil, badRequest("type must be %d (a SenderKeyMessage)", api.TypeSenderKey)
	case len(r.Devices) == 0:
		return nil, badRequest("devices is empty")
	case len(r.Devices) > api.MaxGroupDevices:
		return nil, badRequest("at most %d devices per request", api.MaxGroupDevices)
	case len(r.Content) == 0:
		return nil, badRequest("content is empty")
	case len(r.Content) > s.cfg.MaxContentBytes:
		return nil, newError(api.CodeTooLarge, "content is %d bytes, more than %d", len(r.Content), s.cfg.MaxContentBytes)
	case r.ExpiresIn < 0:
		return nil, badRequest("expiresIn must not be negative")
	case len(r.Commitment) != 0 && len(r.Commitment) != api.FrankingCommitmentSize:
		return nil, badRequest("frankingCommitment must be %d bytes", api.FrankingCommitmentSize)
	}
	idx := make(map[string]int)
	var out []groupAccount
	seen := make(map[api.GroupDevice]bool, len(r.Devices))
	for i, d := range r.Devices {
		switch {
		case d.Device == 0:
			return nil, badRequest("devices[%d]: device must be given", i)
		case d.Username == p.Username && d.Device == p.Device:
			return nil, badRequest("devices[%d]: the sending device", i)
		case seen[d]:
			return nil, badRequest("devices[%d]: appears twice", i)
		}
		seen[d] = true
		j, ok := idx[d.Username]
		if !ok {
			j = len(out)
			idx[d.Username] = j
			out = append(out, groupAccount{username: d.Username})
		}
		if len(out[j].devices) == s.cfg.MaxDevices {
			return nil, badRequest("devices[%d]: more than %d devices of one account", i, s.cfg.MaxDevices)
		}
		out[j].devices = append(out[j].devices, d.Device)
	}
	return out, nil
}
