package client

import (
	"context"

	"errors"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/session"
)

// Store gives the tests the client's store; the front ends have the
// Client's own calls.
func (c *Client) Store() *store.Store { return c.st }

// Explain is explain, for its test.
var Explain = explain

// ReceiptsSent is how many receipts c sent that the server accepted.
func (c *Client) ReceiptsSent() int64 { return c.receiptsSent.Load() }

// TypingSent is how many typing indicators c sent that the server accepted.
func (c *Client) TypingSent() int64 { return c.typingSent.Load() }

// DecryptTyping is Decrypt with the typing indicator it accepted.
func (c *Client) DecryptTyping(ctx context.Context, m *api.Message) ([]int64, *Typing, error) {
	return c.decrypt(ctx, m)
}

// SendRawOrdinary sends cm to every device of to as a receipt goes,
// starting sessions from their bundles first when there are none: what a
// hostile sender can make (a stranger's typing, a forged copy).
func (c *Client) SendRawOrdinary(ctx context.Context, to string, cm *content.Message) error {
	devs, err := c.st.Read().Keys(store.OrdinarySpace).SessionDevices(ctx, to)
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		bs, err := c.fetchOrdinaryBundles(ctx, to, nil)
		if err != nil {
			return err
		}
		err = c.st.Update(ctx, func(tx *store.Tx) error {
			ci := c.ordinaryCipher(tx.Ordinary())
			for _, b := range bs {
				if err := ci.ProcessBundle(ctx, session.Address{Name: to, Device: b.DeviceID}, b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return c.sendOrdinaryContent(ctx, to, cm)
}

// API is the client's connection to the server, with its credential.
func (c *Client) API() *apiclient.Client { return c.apic() }

// SetCommitmentHook makes every franked message carry f's commitment
// instead of its own (a dishonest sender), until the test ends.
func SetCommitmentHook(t interface{ Cleanup(func()) }, f func([]byte) []byte) {
	testOnlyCommitment = f
	t.Cleanup(func() { testOnlyCommitment = nil })
}

// SendGroupControl sends entries as a group control of the group id to
// the accounts, whatever they are (abuse tests).
func (c *Client) SendGroupControl(ctx context.Context, id [16]byte, to []string, entries [][]byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.fanControl(ctx, id, to, entries)
}

// GroupLogEntries is the log this device keeps of the group id.
func (c *Client) GroupLogEntries(ctx context.Context, id [16]byte) ([][]byte, error) {
	rec, err := loadGroup(ctx, c.st.Read(), id)
	if err != nil {
		return nil, err
	}
	return rec.log.Entries(), nil
}

// GroupDist is this device's current distribution id for the group id.
func (c *Client) GroupDist(ctx context.Context, id [16]byte) ([16]byte, error) {
	rec, err := loadGroup(ctx, c.st.Read(), id)
	if err != nil {
		return [16]byte{}, err
	}
	d, _ := rec.dist()
	return d, nil
}

// EncryptGroupRaw encrypts text for the group id with this device's
// current sender key, whatever the group's state (abuse tests: what a
// member who is then removed could keep and send later).
func (c *Client) EncryptGroupRaw(ctx context.Context, id [16]byte, text string) ([]byte, error) {
	var body []byte
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		rec, err := loadGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		d, ok := rec.dist()
		if !ok {
			return errors.New("no sender key")
		}
		cm := &content.Message{ID: content.NewID(), SentAt: time.Now(), Body: text, Ordinary: true, Group: &content.GroupContext{ID: id}}
		pt, err := cm.Marshal()
		if err != nil {
			return err
		}
		m, err := c.groupCipher(tx, id).Encrypt(ctx, d, pt)
		if err != nil {
			return err
		}
		body = m.Bytes()
		return nil
	})
	return body, err
}

// PostGroupRaw posts a SenderKeyMessage to devices.
func (c *Client) PostGroupRaw(ctx context.Context, body []byte, devices []api.GroupDevice) error {
	return c.apic().Do(ctx, "POST", "/v1/groups/messages", api.GroupSend{Devices: devices, Type: api.TypeSenderKey, Content: body}, nil)
}
