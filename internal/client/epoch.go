package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// This file: history epochs and removing a device (docs/multidevice.md
// sections 3 and 4).

// metaEpochUnsent is set while the current epoch has not reached every
// other device of the account: the next command sends it.
const metaEpochUnsent = "epoch_unsent"

// ErrRemoveSelf refuses removing this device from itself: the device that
// removes one must open the next history epoch, which the removed one must
// not get.
var ErrRemoveSelf = errors.New("a device cannot remove itself: remove it from another of your devices, so that the history key can change behind it")

// RemoveDevice removes another device of this account: the server revokes
// its credential and deletes its keys and mailbox; then this device opens
// a new history epoch, sends its key to the remaining devices, and seals
// the recovery blob anew, so that the removed device can read nothing
// stored from now on.
func (c *Client) RemoveDevice(ctx context.Context, id uint32) error {
	if id == c.acct.DeviceID {
		return ErrRemoveSelf
	}
	if err := c.apic().RemoveDevice(ctx, id); err != nil {
		return explain(err)
	}
	self := session.Address{Name: c.acct.Username, Device: key.DeviceID(id)}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.Ordinary().DeleteSession(ctx, self) }); err != nil {
		return err
	}
	if c.st.AccountIdentity() == nil {
		return nil // no ordinary conversations, no history to protect
	}
	return c.RotateHistory(ctx)
}

// RotateHistory opens a new history epoch: a fresh key that this device
// writes with from now on, sent to the other devices of the account
// (end to end encrypted, as a control message only they accept) and sealed
// into the recovery blob. If the key cannot be sent now, the next command
// that reaches the server sends it.
func (c *Client) RotateHistory(ctx context.Context) error {
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		kr, err := c.txKeyring(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := kr.Rotate(tx.Now); err != nil {
			return err
		}
		if err := tx.SetHistoryKeyring(ctx, kr.Marshal()); err != nil {
			return err
		}
		return tx.SetMetaInt(ctx, metaEpochUnsent, 1)
	})
	if err != nil {
		return err
	}
	if err := c.sendEpoch(ctx); err != nil {
		return fmt.Errorf("the new history key is made but not yet on your other devices (the next command sends it): %w", err)
	}
	return c.uploadRecovery(ctx)
}

// txKeyring is the keyring as tx sees it, made if there is none.
func (c *Client) txKeyring(ctx context.Context, tx *store.Tx) (*history.Keyring, error) {
	b, err := tx.HistoryKeyring(ctx)
	if err != nil {
		return nil, err
	}
	if b == nil {
		kr := history.NewKeyring(tx.Now)
		return kr, tx.SetHistoryKeyring(ctx, kr.Marshal())
	}
	return history.ParseKeyring(b)
}

// sendEpoch sends the current epoch to every other device of the account
// with ordinary keys, if it is still unsent. The server checks the device
// list as for any ordinary message; devices it names as missing get a
// session from their bundles, and the key is sent again, up to
// ordinaryAttempts times.
func (c *Client) sendEpoch(ctx context.Context) error {
	if v, err := c.st.Read().MetaInt(ctx, metaEpochUnsent, 0); err != nil || v == 0 {
		return err
	}
	kr, err := c.keyring(ctx)
	if err != nil {
		return err
	}
	cur := kr.Current()
	cm := &content.Message{ID: content.NewID(), SentAt: time.Now().Truncate(time.Millisecond), Ordinary: true,
		Control: &content.Control{HistoryEpoch: cur.Content()}}
	pt, err := cm.Marshal()
	if err != nil {
		return err
	}
	self := c.acct.Username
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	fs := &fanState{}
	for attempt := 1; ; attempt++ {
		r := api.OrdinaryRecipient{Username: self, Devices: []api.OrdinaryDeviceMessage{}}
		err := c.st.Update(ctx, func(tx *store.Tx) error {
			r.Devices = r.Devices[:0]
			for _, a := range fs.drop {
				if err := tx.Ordinary().DeleteSession(ctx, a); err != nil {
					return err
				}
			}
			st, err := newFanStore(ctx, tx, self)
			if err != nil {
				return err
			}
			ci := c.ordinaryCipher(st)
			for _, pb := range fs.bundles {
				if uint32(pb.b.DeviceID) == c.acct.DeviceID {
					continue
				}
				if err := ci.ProcessBundle(ctx, session.Address{Name: self, Device: pb.b.DeviceID}, pb.b); err != nil {
					return fmt.Errorf("starting a session with your device %d: %w", pb.b.DeviceID, err)
				}
			}
			for _, d := range st.devices(self) {
				if d == c.acct.DeviceID {
					continue
				}
				ct, err := ci.Encrypt(ctx, session.Address{Name: self, Device: key.DeviceID(d)}, pt)
				if err != nil {
					return fmt.Errorf("encrypting for your device %d: %w", d, err)
				}
				typ := api.TypeOrdinarySignal
				if ct.Type == session.TypePreKey {
					typ = api.TypeOrdinaryPreKey
				}
				r.Devices = append(r.Devices, api.OrdinaryDeviceMessage{Device: d, RegistrationID: uint32(st.reg), Type: typ, Content: ct.Body})
			}
			return st.flush(ctx)
		})
		if err != nil {
			return err
		}
		var res api.OrdinarySendResult
		err = c.apic().Do(ctx, "POST", "/v1/ordinary/messages", api.OrdinarySend{Recipients: []api.OrdinaryRecipient{r}}, &res)
		if err == nil {
			return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetMetaInt(ctx, metaEpochUnsent, 0) })
		}
		mm := mismatches(err)
		if mm == nil || attempt == ordinaryAttempts {
			return explain(err)
		}
		fs = &fanState{}
		for _, x := range mm {
			if x.Username != self {
				continue
			}
			for _, d := range slices.Concat(x.Extra, x.Stale) {
				fs.drop = append(fs.drop, session.Address{Name: self, Device: key.DeviceID(d)})
			}
			if fetch := slices.Concat(x.Missing, x.Stale); len(fetch) > 0 {
				bs, err := c.fetchOrdinaryBundles(ctx, self, fetch)
				if err != nil {
					return err
				}
				for _, b := range bs {
					fs.bundles = append(fs.bundles, peerBundle{self, b})
				}
			}
		}
	}
}

// acceptControl takes a control message of an own device, in the
// transaction that decrypted it: a history epoch joins the keyring (the
// newest one is written with from now on). From anyone else it is refused
// with a notice: only the person's own devices hold their history keys.
func (c *Client) acceptControl(ctx context.Context, tx *store.Tx, from session.Address, cm *content.Message) error {
	if cm.Control == nil || cm.Control.HistoryEpoch == nil {
		return nil // a part of a later version
	}
	if from.Name != c.acct.Username {
		_, err := tx.AddNoticeIn(ctx, from.Name, false, fmt.Sprintf("%s sent a history key, which only your own devices may: it was ignored.", from.Name))
		return err
	}
	e, err := history.EpochFromContent(cm.Control.HistoryEpoch, cm.SentAt)
	if err != nil {
		return nil // malformed: ignored, as an unreadable content would be
	}
	kr, err := c.txKeyring(ctx, tx)
	if err != nil {
		return err
	}
	if added, err := kr.Add(e); err != nil || !added {
		return nil
	}
	return tx.SetHistoryKeyring(ctx, kr.Marshal())
}
