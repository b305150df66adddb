package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
)

// This file: blocking (issue 11 part 5; docs/client.md, "Blocking"). The
// block itself is the server's (docs/api.md, "Blocks"): it is kept per
// account, drops what the blocked person sends from then on, and deletes
// what they had queued for any of this account's devices. The client
// keeps a copy of the list, so that it can also
//
//   - drop what still arrives from them (a message in flight when the
//     block was made, or one a device took before it learned of a block
//     made on another device): it is decrypted, so that the sessions stay
//     in step for an unblock, and then neither stored nor shown, and adds
//     no notice;
//   - send them nothing unasked: no delivered or read receipt, no typing;
//   - refuse to send them a message until they are unblocked.
//
// What was stored before the block stays in the conversations.
//
// The copy is refreshed from the server by every Block, Unblock and
// Blocked, and when a receive run starts (so a block made on another
// device of the account is learned by the next receive run here).

// blockSyncTimeout bounds the refresh at the start of a receive run.
const blockSyncTimeout = 5 * time.Second

// BlockedError is returned when sending to a person this account blocks.
type BlockedError struct{ Name string }

func (e *BlockedError) Error() string { return fmt.Sprintf("you block %s", e.Name) }

// ErrBlockSelf: an account cannot block itself.
var ErrBlockSelf = errors.New("you cannot block yourself")

// checkBlockName normalizes and checks a username given to Block or
// Unblock before anything is sent.
func (c *Client) checkBlockName(name string) (string, error) {
	n := NormalizeUsername(name)
	if !api.ValidUsername(n) {
		return "", fmt.Errorf("%q is not a username: %d to %d of a-z, 0-9 and _, starting with a letter", n, api.MinUsernameLen, api.MaxUsernameLen)
	}
	if n == c.acct.Username {
		return "", ErrBlockSelf
	}
	return n, nil
}

// Block makes the server drop what name sends to this account, on every
// device, and delete what they had queued; this device stops showing and
// answering them too.
func (c *Client) Block(ctx context.Context, name string) error { return c.setBlock(ctx, name, true) }

// Unblock undoes Block. What the person sent while blocked is gone.
func (c *Client) Unblock(ctx context.Context, name string) error {
	return c.setBlock(ctx, name, false)
}

func (c *Client) setBlock(ctx context.Context, name string, block bool) error {
	n, err := c.checkBlockName(name)
	if err != nil {
		return err
	}
	if block {
		err = c.apic().Block(ctx, n)
	} else {
		err = c.apic().Unblock(ctx, n)
	}
	if apiclient.IsCode(err, api.CodeNotFound) {
		return fmt.Errorf("there is no %s on this server", n)
	} else if err != nil {
		return explain(err)
	}
	if _, err := c.syncBlocked(ctx); err == nil {
		return nil
	}
	// The list could not be read back: keep what is known to be true.
	return c.st.Update(ctx, func(tx *store.Tx) error {
		names, err := tx.Blocked(ctx)
		if err != nil {
			return err
		}
		if block {
			names = append(names, n)
		} else {
			names = deleteName(names, n)
		}
		return tx.SetBlocked(ctx, names)
	})
}

func deleteName(names []string, n string) []string {
	out := names[:0]
	for _, s := range names {
		if s != n {
			out = append(out, s)
		}
	}
	return out
}

// Blocked returns the people this account blocks, as the server lists
// them. When the server cannot be reached it returns the list this device
// last learned, with the error.
func (c *Client) Blocked(ctx context.Context) ([]string, error) {
	names, err := c.syncBlocked(ctx)
	if err != nil {
		local, lerr := c.st.Read().Blocked(ctx)
		return local, errors.Join(err, lerr)
	}
	return names, nil
}

// syncBlocked reads the list from the server and keeps it. Names that are
// not usernames (a server's error) are left out.
func (c *Client) syncBlocked(ctx context.Context) ([]string, error) {
	b, err := c.apic().Blocked(ctx)
	if err != nil {
		return nil, explain(err)
	}
	names := make([]string, 0, len(b.Usernames))
	for _, n := range b.Usernames {
		if api.ValidUsername(n) && n != c.acct.Username {
			names = append(names, n)
		}
	}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetBlocked(ctx, names) }); err != nil {
		return nil, err
	}
	return c.st.Read().Blocked(ctx)
}

// blockedSet is the blocked list as a set, for a batch of checks.
func (c *Client) blockedSet(ctx context.Context) (map[string]bool, error) {
	names, err := c.st.Read().Blocked(ctx)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set, nil
}

// refuseBlocked returns a *BlockedError when this account blocks to.
func (c *Client) refuseBlocked(ctx context.Context, to string) error {
	blocked, err := c.st.Read().IsBlocked(ctx, to)
	if err != nil {
		return err
	}
	if blocked {
		return &BlockedError{Name: to}
	}
	return nil
}
