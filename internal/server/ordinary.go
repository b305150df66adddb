package server

import (
	"context"
	"errors"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/key"
)

// Ordinary conversations on every device (issue 9, docs/multidevice.md):
// the account identity, ordinary prekeys of every device, and the fan-out
// of one message to every device of each account.

var (
	errNoAccountIdentity = newError(api.CodeConflict, "the account has no account identity yet: set it with PUT /v1/ordinary/identity first")
	errFirstOrdinaryKeys = badRequest("a device's first ordinary upload must have signedPreKey and kyberLastResort")
)

// SetAccountIdentity sets the caller's account identity key, once: the
// same key again is accepted, another key is a conflict.
func (s *Server) SetAccountIdentity(ctx context.Context, p Principal, r api.SetAccountIdentity) error {
	ik, err := key.ParseIdentityKey(r.IdentityKey)
	if err != nil {
		return badRequest("identityKey: %v", err)
	}
	switch err := s.st.SetAccountIdentity(ctx, p.Account, ik.Bytes()); {
	case errors.Is(err, store.ErrConflict):
		return newError(api.CodeConflict, "the account identity is set already, to another key")
	case err != nil:
		return s.internal("set account identity", err)
	}
	s.forget(Forget{Username: p.Username})
	return nil
}

// UploadOrdinaryKeys stores the caller's ordinary prekeys, from any
// device, every signature checked against the account identity key.
func (s *Server) UploadOrdinaryKeys(ctx context.Context, p Principal, u api.OrdinaryKeyUpload) error {
	if u.RegistrationID == 0 || u.RegistrationID > key.MaxRegistrationID {
		return badRequest("registrationId must be 1-%d", key.MaxRegistrationID)
	}
	if err := checkUploadShape(u.KeyUpload); err != nil {
		return err
	}
	acc, err := s.st.AccountByID(ctx, p.Account)
	if err != nil {
		return s.internal("upload ordinary keys", err)
	}
	if acc.AccountIdentityKey == nil {
		return errNoAccountIdentity
	}
	// The account identity is set once and never changes: what was
	// verified here is what the store holds when it writes.
	ik, err := key.ParseIdentityKey(acc.AccountIdentityKey)
	if err != nil {
		return s.internal("upload ordinary keys: stored account identity", err)
	}
	k, err := checkKeys(ik, u.KeyUpload)
	if err != nil {
		return err
	}
	switch err := s.st.SetOrdinaryKeys(ctx, p.DeviceRef, u.RegistrationID, k); {
	case errors.Is(err, store.ErrNoKeys):
		return errFirstOrdinaryKeys
	case errors.Is(err, store.ErrNotFound):
		return errNoDevice
	case err != nil:
		return s.internal("upload ordinary keys", err)
	}
	return nil
}

// OrdinaryKeyCounts tells the caller how many ordinary one-time keys it
// has left.
func (s *Server) OrdinaryKeyCounts(ctx context.Context, p Principal) (api.KeyCounts, error) {
	c, err := s.st.OrdinaryKeyCounts(ctx, p.DeviceRef)
	if err != nil {
		return api.KeyCounts{}, s.internal("ordinary key counts", err)
	}
	return api.KeyCounts{PreKeys: c.PreKeys, KyberPreKeys: c.KyberPreKeys, SignedPreKeyID: c.SignedPreKeyID, KyberLastResort: c.KyberLastResort}, nil
}

// FetchOrdinaryBundles hands out a bundle of each of username's devices
// with ordinary keys (of those in devices, if not nil), consuming one-time
// keys, under the same limits as FetchBundle (one request is one fetch).
func (s *Server) FetchOrdinaryBundles(ctx context.Context, p Principal, username string, devices []uint32) (api.OrdinaryBundles, error) {
	if len(devices) > s.cfg.MaxDevices {
		return api.OrdinaryBundles{}, badRequest("at most %d devices", s.cfg.MaxDevices)
	}
	req := accountKey(p.Account)
	if !s.limBundleUser.Allow(req, 1) {
		return api.OrdinaryBundles{}, errRateLimited
	}
	if !ValidUsername(username) {
		return api.OrdinaryBundles{}, errNoUser
	}
	if !s.limBundlePair.Allow(req+">"+username, 1) || !s.limBundleTarget.Allow(username, 1) {
		return api.OrdinaryBundles{}, errRateLimited
	}
	u, err := s.lookupUser(ctx, username)
	if err != nil {
		return api.OrdinaryBundles{}, err
	}
	acc, err := s.st.AccountByID(ctx, u.id)
	if err != nil {
		return api.OrdinaryBundles{}, s.internal("fetch ordinary bundles", err)
	}
	if acc.AccountIdentityKey == nil {
		return api.OrdinaryBundles{}, newError(api.CodeNotFound, "%s has no account identity", username)
	}
	bs, err := s.st.TakeOrdinaryBundles(ctx, u.id, devices)
	if errors.Is(err, store.ErrNotFound) {
		return api.OrdinaryBundles{}, errNoUser
	} else if err != nil {
		return api.OrdinaryBundles{}, s.internal("fetch ordinary bundles", err)
	}
	out := api.OrdinaryBundles{IdentityKey: acc.AccountIdentityKey, Devices: make([]api.Bundle, 0, len(bs))}
	for _, b := range bs {
		s.m.bundles.Inc()
		out.Devices = append(out.Devices, toAPIBundle(b))
		// As for the secret device: tell the owner to replenish.
		ref := store.DeviceRef{Account: u.id, Device: b.Device}
		if c, err := s.st.OrdinaryKeyCounts(ctx, ref); err == nil && (c.PreKeys < api.KeysLowMark || c.KyberPreKeys < api.KeysLowMark) {
			s.hub.keysLow(ref)
		}
	}
	return out, nil
}

func toAPIBundle(b store.Bundle) api.Bundle {
	out := api.Bundle{
		RegistrationID: b.RegistrationID, DeviceID: b.Device, IdentityKey: b.IdentityKey,
		SignedPreKeyID: b.SignedPreKey.ID, SignedPreKey: b.SignedPreKey.PublicKey, SignedPreKeySignature: b.SignedPreKey.Signature,
		KyberPreKeyID: &b.KyberPreKey.ID, KyberPreKey: b.KyberPreKey.PublicKey, KyberPreKeySignature: b.KyberPreKey.Signature,
	}
	if b.PreKey != nil {
		out.PreKeyID = &b.PreKey.ID
		out.PreKey = b.PreKey.PublicKey
	}
	return out
}

// SendOrdinary stores one ordinary message for every device of each
// recipient account and the sender's other devices, all or nothing
// (docs/multidevice.md section 1), and answers once it is durable.
func (s *Server) SendOrdinary(ctx context.Context, p Principal, r api.OrdinarySend) (api.OrdinarySendResult, error) {
	start := time.Now()
	if s.closing() {
		return api.OrdinarySendResult{}, errClosing
	}
	if err := s.checkOrdinarySend(&r); err != nil {
		return api.OrdinarySendResult{}, err
	}
	// The sender's history records of the message go in the same
	// transaction (docs/multidevice.md section 3).
	hist, err := s.checkHistory(p, r.History)
	if err != nil {
		return api.OrdinarySendResult{}, err
	}
	// The per-device limits are charged before anything is looked up:
	// once per ciphertext (and once for a recipient named with none, so
	// that looking usernames up costs what a single send does), and by
	// the bytes of all of them.
	n, size := 0, 0
	for _, rc := range r.Recipients {
		n += max(len(rc.Devices), 1)
		for _, d := range rc.Devices {
			size += len(d.Content)
		}
	}
	dev := accountKey(p.Account) + "." + accountKey(int64(p.Device))
	if !s.limMsgs.Allow(dev, float64(n)) || !s.limBytes.Allow(dev, float64(size)) {
		return api.OrdinarySendResult{}, errRateLimited
	}
	blobs, err := s.checkBlobs(ctx, p, r.Blobs)
	if err != nil {
		return api.OrdinarySendResult{}, err
	}
	now := s.now()
	ttl := s.cfg.MessageTTL
	if r.ExpiresIn > 0 && time.Duration(r.ExpiresIn) < ttl/time.Second {
		ttl = time.Duration(r.ExpiresIn) * time.Second
	}
	f := store.Fanout{MaxQueue: s.cfg.MaxQueue, MaxPerSender: s.cfg.MaxQueuePerSender,
		History: hist, HistoryAccount: p.Account, MaxHistory: s.cfg.MaxHistoryRecords}
	names := make(map[int64]string, len(r.Recipients)+1)
	out := api.OrdinarySendResult{Timestamp: now.UnixMilli(), IDs: make([][]int64, len(r.Recipients))}
	// idx[i][j] is the index in f.Messages of recipient i's device j, or
	// -1 when the copy is dropped (the recipient blocks the sender).
	idx := make([][]int, len(r.Recipients))
	own := false
	for i, rc := range r.Recipients {
		u, err := s.lookupUser(ctx, rc.Username)
		if err != nil {
			return api.OrdinarySendResult{}, err
		}
		names[u.id] = rc.Username
		fa := store.FanoutAccount{Account: u.id, Devices: make(map[uint32]uint32, len(rc.Devices))}
		for _, d := range rc.Devices {
			fa.Devices[d.Device] = d.RegistrationID
		}
		drop := false
		if u.id == p.Account {
			own = true
			fa.Except = p.Device
		} else {
			// Per sender and recipient account, as for single sends
			// (charged for blocked senders too: they cannot tell). The
			// sender's own devices are not another person to protect.
			if !s.limMsgPair.Allow(accountKey(p.Account)+">"+accountKey(u.id), 1) {
				return api.OrdinarySendResult{}, errRateLimited
			}
			if drop, err = s.blockedBy(ctx, u.id, p.Account); err != nil {
				return api.OrdinarySendResult{}, err
			}
		}
		f.Accounts = append(f.Accounts, fa)
		out.IDs[i] = make([]int64, len(rc.Devices))
		idx[i] = make([]int, len(rc.Devices))
		for j, d := range rc.Devices {
			if drop {
				// Dropped, but answered like the others, so that a
				// blocked sender cannot tell.
				out.IDs[i][j] = newMessageID()
				idx[i][j] = -1
				s.m.blocked.Inc()
				continue
			}
			// One reporting tag per device copy (docs/franking.md).
			fr, err := s.frank(d.Commitment, franking.Context{Sender: p.Username, SenderDevice: p.Device,
				Recipient: rc.Username, RecipientDevice: d.Device, Timestamp: now.UnixMilli()})
			if err != nil {
				return api.OrdinarySendResult{}, err
			}
			idx[i][j] = len(f.Messages)
			f.Messages = append(f.Messages, &store.Message{
				PublicID:  newMessageID(),
				To:        store.DeviceRef{Account: u.id, Device: d.Device},
				From:      p.DeviceRef,
				Type:      d.Type,
				Content:   d.Content,
				Timestamp: now.UnixMilli(),
				ExpiresAt: now.Add(ttl).UnixMilli(),
				Franking:  fr,
				Blobs:     blobs,
			})
		}
	}
	if !own {
		// Left out, the sender's own account must have no other
		// ordinary device: the store checks it as an empty list.
		f.Accounts = append(f.Accounts, store.FanoutAccount{Account: p.Account, Except: p.Device})
		names[p.Account] = p.Username
	}
	res, err := s.st.EnqueueFanout(ctx, f)
	var me *store.MismatchError
	switch {
	case errors.As(err, &me):
		return api.OrdinarySendResult{}, s.mismatchError(p, me, names)
	case errors.Is(err, store.ErrMailboxFull):
		return api.OrdinarySendResult{}, newError(api.CodeMailboxFull, "the mailboxes of every device of a recipient are full")
	case errors.Is(err, store.ErrHistoryFull):
		return api.OrdinarySendResult{}, errHistoryFull
	case errors.Is(err, store.ErrBlobUnusable):
		return api.OrdinarySendResult{}, errBlobUnusable
	case err != nil:
		return api.OrdinarySendResult{}, s.internal("enqueue fanout", err)
	}
	d := time.Since(start).Seconds()
	for i := range idx {
		for j, k := range idx[i] {
			if k < 0 {
				continue
			}
			if res[k].Err == nil {
				out.IDs[i][j] = f.Messages[k].PublicID
				s.m.received.Inc()
				s.m.sendLatency.Observe(d)
			} // else the device's mailbox is full: skipped, id 0
		}
	}
	return out, nil
}

// checkOrdinarySend validates what needs no lookup.
func (s *Server) checkOrdinarySend(r *api.OrdinarySend) error {
	switch {
	case r.ExpiresIn < 0:
		return badRequest("expiresIn must not be negative")
	case len(r.Recipients) == 0:
		return badRequest("recipients is empty")
	}
	seen := make(map[string]bool, len(r.Recipients))
	for i, rc := range r.Recipients {
		if seen[rc.Username] {
			return badRequest("recipients[%d]: %q appears twice", i, rc.Username)
		}
		seen[rc.Username] = true
		if len(rc.Devices) > s.cfg.MaxDevices {
			return badRequest("recipients[%d]: more than %d devices", i, s.cfg.MaxDevices)
		}
		devs := make(map[uint32]bool, len(rc.Devices))
		for j, d := range rc.Devices {
			switch {
			case d.Device == 0:
				return badRequest("recipients[%d].devices[%d]: device must be given", i, j)
			case devs[d.Device]:
				return badRequest("recipients[%d].devices[%d]: device %d appears twice", i, j, d.Device)
			case d.RegistrationID == 0 || d.RegistrationID > key.MaxRegistrationID:
				return badRequest("recipients[%d].devices[%d]: registrationId must be 1-%d", i, j, key.MaxRegistrationID)
			case !api.IsOrdinary(d.Type):
				return badRequest("recipients[%d].devices[%d]: type must be %d or %d", i, j, api.TypeOrdinarySignal, api.TypeOrdinaryPreKey)
			case len(d.Content) == 0:
				return badRequest("recipients[%d].devices[%d]: content is empty", i, j)
			case len(d.Content) > s.cfg.MaxContentBytes:
				return newError(api.CodeTooLarge, "recipients[%d].devices[%d]: content is %d bytes, more than %d", i, j, len(d.Content), s.cfg.MaxContentBytes)
			case len(d.Commitment) != 0 && len(d.Commitment) != api.FrankingCommitmentSize:
				return badRequest("recipients[%d].devices[%d]: frankingCommitment must be %d bytes", i, j, api.FrankingCommitmentSize)
			}
			devs[d.Device] = true
		}
	}
	return nil
}

// mismatchError answers a fan-out (ordinary or group send) whose device
// lists are not the accounts' current ones: 409 device_mismatch naming the
// differences, by username (names). A mismatch tells device lists, as a
// directory lookup does: it is charged as lookups, so that sends with
// empty lists cannot list everyone's devices faster than the directory
// would.
func (s *Server) mismatchError(p Principal, me *store.MismatchError, names map[int64]string) error {
	if !s.limLookup.Allow(accountKey(p.Account), float64(len(me.Accounts))) {
		return errRateLimited
	}
	e := newError(api.CodeDeviceMismatch, "the device lists are not the accounts' current ones")
	for _, m := range me.Accounts {
		e.Mismatches = append(e.Mismatches, api.Mismatch{Username: names[m.Account], Missing: m.Missing, Extra: m.Extra, Stale: m.Stale})
	}
	return e
}
