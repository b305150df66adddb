package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushmsg/hush/fingerprint"
	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/key"
)

// SafetyNumber is the safety number between this device and a person's
// secret identity.
type SafetyNumber struct {
	Name      string
	Digits    string // 60 digits
	Scannable []byte // for a QR code
	Identity  key.IdentityKey
	Device    uint32
	Verified  bool
	// Changed says this is a new key, not yet confirmed after a change.
	Changed bool
}

// Grouped is the number in twelve groups of five digits.
func (s *SafetyNumber) Grouped() string {
	var b strings.Builder
	for i := 0; i < len(s.Digits); i += 5 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Digits[i:min(i+5, len(s.Digits))])
	}
	return b.String()
}

// SafetyNumber computes the safety number with name: for the key awaiting
// confirmation if there is one, else the known key, else the one the
// server's directory publishes.
func (c *Client) SafetyNumber(ctx context.Context, name string) (*SafetyNumber, error) {
	name = NormalizeUsername(name)
	sn := &SafetyNumber{Name: name}
	ct, err := c.st.Read().Contact(ctx, name)
	switch {
	case err == nil && ct.Pending != nil:
		sn.Identity, sn.Device, sn.Changed = *ct.Pending, ct.PendingDevice, true
	case err == nil && ct.Identity != nil:
		sn.Identity, sn.Device, sn.Verified, sn.Changed = *ct.Identity, ct.Device, ct.Verified, ct.NeedsConfirm
	case err == nil || errors.Is(err, store.ErrNotFound):
		d, err := c.apic().Directory(ctx, name)
		if err != nil {
			return nil, explain(err)
		}
		if d.SecretDeviceID == nil || d.IdentityKey == nil {
			return nil, fmt.Errorf("%s has no secret device", name)
		}
		if sn.Identity, err = key.ParseIdentityKey(d.IdentityKey); err != nil {
			return nil, fmt.Errorf("the server sent a bad identity key for %s", name)
		}
		sn.Device = *d.SecretDeviceID
		c.flushQueued(ctx)
	default:
		return nil, err
	}
	ours := c.st.Identity()
	f, err := fingerprint.New(fingerprint.ScannableVersion, fingerprint.Iterations,
		[]byte(c.acct.Username), ours.Public, []byte(name), sn.Identity)
	if err != nil {
		return nil, err
	}
	sn.Digits, sn.Scannable = f.Display(), f.Scannable()
	return sn, nil
}

// ErrNumberMismatch: the person typed 60 digits, and they are not the
// safety number.
var ErrNumberMismatch = errors.New("that is not the safety number: do not verify, the conversation may be intercepted")

// NotANumberError: what the person typed is not 60 digits, so not a safety
// number at all (a typo, a part of it): it does not match, but it is no
// sign of interception either.
type NotANumberError struct {
	Digits int // how many digits it had
}

func (e *NotANumberError) Error() string {
	return fmt.Sprintf("that does not match: a safety number has 60 digits, and this has %d", e.Digits)
}

// Verify marks name's key (the one SafetyNumber shows) verified. If number
// is not empty, it must equal the safety number (spaces ignored):
// [ErrNumberMismatch] if it is 60 other digits, a [*NotANumberError] if it
// is not 60 digits.
func (c *Client) Verify(ctx context.Context, name, number string) (*SafetyNumber, error) {
	sn, err := c.SafetyNumber(ctx, name)
	if err != nil {
		return nil, err
	}
	if number != "" {
		typed := strings.Join(strings.Fields(number), "")
		digits, other := 0, false
		for _, r := range typed {
			if r >= '0' && r <= '9' {
				digits++
			} else {
				other = true
			}
		}
		if other || digits != len(sn.Digits) {
			return sn, &NotANumberError{Digits: digits}
		}
		if typed != sn.Digits {
			return sn, ErrNumberMismatch
		}
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		return tx.Confirm(ctx, sn.Name, sn.Identity, sn.Device, true)
	})
	sn.Verified, sn.Changed = true, false
	return sn, err
}

// Trust accepts name's changed key without verifying it, so that sending
// can go on.
func (c *Client) Trust(ctx context.Context, name string) error {
	name = NormalizeUsername(name)
	ct, err := c.st.Read().Contact(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("you have no conversation with %s", name)
	} else if err != nil {
		return err
	}
	k, dev := ct.Identity, ct.Device
	if ct.Pending != nil {
		k, dev = ct.Pending, ct.PendingDevice
	} else if !ct.NeedsConfirm {
		return fmt.Errorf("%s's safety number has not changed: there is nothing to confirm", name)
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.Confirm(ctx, name, *k, dev, false) })
}

// History returns both conversations with name (ordinary and secret)
// merged, oldest first (the last limit messages if limit > 0).
func (c *Client) History(ctx context.Context, name string, limit int) ([]*store.Message, error) {
	return c.st.Read().History(ctx, NormalizeUsername(name), limit, time.Now())
}

// Conversation returns the secret or the ordinary conversation with name,
// oldest first (the last limit messages if limit > 0).
func (c *Client) Conversation(ctx context.Context, name string, secret bool, limit int) ([]*store.Message, error) {
	return c.st.Read().Conversation(ctx, NormalizeUsername(name), secret, limit, time.Now())
}

// Conversations lists conversations, most recent first: the ordinary and
// the secret one with the same person apart.
func (c *Client) Conversations(ctx context.Context) ([]store.Conversation, error) {
	return c.st.Read().Conversations(ctx)
}

// Version changes whenever anything in the home changes, in this process
// (a message received, a queued one sent on reconnecting, a countdown
// ended) or in another hush process on the same home (hush send beside
// hush chat). A UI polls it and reads again when it differs.
func (c *Client) Version(ctx context.Context) (store.Version, error) {
	return c.st.Version(ctx)
}

// Contact returns what is known of name.
func (c *Client) Contact(ctx context.Context, name string) (*store.Contact, error) {
	return c.st.Read().Contact(ctx, NormalizeUsername(name))
}

// Devices lists this account's devices.
func (c *Client) Devices(ctx context.Context) ([]api.Device, error) {
	d, err := c.apic().Devices(ctx)
	if err != nil {
		return nil, explain(err)
	}
	c.flushQueued(ctx)
	return d.Devices, nil
}

// Status is what the server says of this account.
func (c *Client) Status(ctx context.Context) (api.Account, error) {
	a, err := c.apic().Account(ctx)
	if err != nil {
		return a, explain(err)
	}
	c.flushQueued(ctx)
	return a, nil
}
