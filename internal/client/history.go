package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/history"
)

// This file: the account's history on the server (docs/multidevice.md
// section 3). Each device deposits the lines of its ordinary conversations
// (the sender's device within the send request itself; the others here),
// and a new device reads them all back. Secret conversations never enter
// it.

// historyRecord seals one ordinary line for the account's history.
func historyRecord(kr *history.Keyring, m *store.Message) (api.HistoryRecord, error) {
	id, blob, err := kr.Seal(&history.Record{Peer: m.Peer, Outgoing: m.Outgoing, Device: m.Device,
		ID: m.MsgID, SentAt: m.SentAt, Body: m.Body})
	if err != nil {
		return api.HistoryRecord{}, err
	}
	return api.HistoryRecord{ID: id.Bytes(), Blob: blob}, nil
}

// sealingKeyring is the keyring parsed for sealing a send's history
// record, kept with the bytes it was parsed from, so that a send parses
// the keyring (JSON) only when it changed: that was a twentieth of a
// send's CPU (BenchmarkOrdinaryFanOut). It is never handed out, so that
// nothing changes it (Rotate, Add, Merge) but a new keyring read from the
// store; Seal only reads it.
type sealingKeyring struct {
	mu sync.Mutex
	b  []byte
	kr *history.Keyring
}

// sendHistoryRecord seals m's line for the account's history with the
// keyring as tx sees it (made if there is none).
func (c *Client) sendHistoryRecord(ctx context.Context, tx *store.Tx, m *store.Message) (api.HistoryRecord, error) {
	b, err := tx.HistoryKeyring(ctx)
	if err != nil {
		return api.HistoryRecord{}, err
	}
	if b == nil {
		kr, err := c.txKeyring(ctx, tx)
		if err != nil {
			return api.HistoryRecord{}, err
		}
		return historyRecord(kr, m)
	}
	k := &c.sealing
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kr == nil || !bytes.Equal(b, k.b) {
		kr, err := history.ParseKeyring(b)
		if err != nil {
			return api.HistoryRecord{}, err
		}
		k.b, k.kr = b, kr
	}
	return historyRecord(k.kr, m)
}

// DepositHistory puts the ordinary lines this device stored since its last
// deposit (received messages, and sync copies of what its other devices
// sent; what it sent itself went with the send) into the account's history, in batches, and returns how many it
// sent. The server keeps the first copy of each record, so a line another
// device deposited already, or one deposited twice after a crash, costs
// nothing more.
func (c *Client) DepositHistory(ctx context.Context) (int, error) {
	if c.st.AccountIdentity() == nil {
		return 0, nil
	}
	kr, err := c.keyring(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		after, err := c.st.Read().Deposited(ctx)
		if err != nil {
			return n, err
		}
		ms, err := c.st.Read().ToDeposit(ctx, after, c.acct.DeviceID, api.MaxHistoryPerRequest)
		if err != nil || len(ms) == 0 {
			return n, err
		}
		var dep api.HistoryDeposit
		for _, m := range ms {
			if _, group := store.ParseGroupPeer(m.Peer); m.MsgID == ([16]byte{}) || group {
				continue // group lines stay out of the history (docs/groups.md)
			}
			r, err := historyRecord(kr, m)
			if err != nil {
				return n, err
			}
			dep.Records = append(dep.Records, r)
		}
		if len(dep.Records) > 0 {
			if err := c.apic().Do(ctx, "POST", "/v1/history", dep, nil); err != nil {
				return n, explain(err)
			}
		}
		n += len(dep.Records)
		last := ms[len(ms)-1].ID
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetDeposited(ctx, last) }); err != nil {
			return n, err
		}
	}
}

// HistoryReport says what SyncHistory did.
type HistoryReport struct {
	Read    int // records read from the server
	Added   int // lines added to conversations (the others were here already)
	Unread  int // records of an epoch this device does not hold (yet)
	Refused int // records that failed to open: altered, or not this account's
}

// SyncHistory reads the account's history from where this device last
// stopped and adds what it does not have to its conversations, each page in
// one transaction, in the order the messages were sent. A record that does
// not open is counted and skipped, never shown; a line already here is not
// added twice.
func (c *Client) SyncHistory(ctx context.Context) (HistoryReport, error) {
	var rep HistoryReport
	if c.st.AccountIdentity() == nil {
		return rep, ErrNoAccountIdentity
	}
	kr, err := c.keyring(ctx)
	if err != nil {
		return rep, err
	}
	for {
		after, err := c.st.Read().HistoryAfter(ctx)
		if err != nil {
			return rep, err
		}
		var page api.HistoryPage
		q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(api.MaxHistoryPerRequest)}}
		if err := c.apic().Do(ctx, "GET", "/v1/history?"+q.Encode(), nil, &page); err != nil {
			return rep, explain(err)
		}
		var lines []*store.Message
		last := after
		for _, r := range page.Records {
			rep.Read++
			last = max(last, r.Seq)
			id, err := history.ParseRecordID(r.ID)
			if err != nil {
				rep.Refused++
				continue
			}
			rec, err := kr.Open(id, r.Blob)
			if errors.Is(err, history.ErrUnknownEpoch) {
				rep.Unread++
				continue
			} else if err != nil {
				rep.Refused++
				continue
			}
			// Stored at its sending time: it was not received now.
			m := &store.Message{Peer: rec.Peer, MsgID: rec.ID, Outgoing: rec.Outgoing, Kind: store.KindText,
				Body: rec.Body, SentAt: rec.SentAt, At: rec.SentAt, Shown: true, State: store.StateReceived, Device: rec.Device}
			if rec.Outgoing {
				m.State = store.StateSent
			}
			lines = append(lines, m)
		}
		slices.SortStableFunc(lines, func(a, b *store.Message) int { return a.SentAt.Compare(b.SentAt) })
		err = c.st.Update(ctx, func(tx *store.Tx) error {
			added := 0
			before, err := tx.MaxMessageID(ctx)
			if err != nil {
				return err
			}
			dep, err := tx.Deposited(ctx)
			if err != nil {
				return err
			}
			for _, m := range lines {
				cp := *m
				ok, err := tx.AddMessage(ctx, &cp)
				if err != nil {
					return err
				}
				if ok {
					added++
				}
			}
			if dep >= before {
				// Nothing was waiting to be deposited: what came from the
				// history need not go back to it.
				now, err := tx.MaxMessageID(ctx)
				if err != nil {
					return err
				}
				if err := tx.SetDeposited(ctx, now); err != nil {
					return err
				}
			}
			rep.Added += added
			return tx.SetHistoryAfter(ctx, last)
		})
		if err != nil {
			return rep, fmt.Errorf("storing the history: %w", err)
		}
		if page.Next == nil || len(page.Records) == 0 {
			return rep, nil
		}
	}
}

// historyUpkeep sends a history epoch that has not reached the other
// devices yet, and deposits what this device received. Errors are for a
// warning: both are tried again by the next command.
func (c *Client) historyUpkeep(ctx context.Context) error {
	if c.st.AccountIdentity() == nil {
		return nil
	}
	err := c.sendEpoch(ctx)
	_, derr := c.DepositHistory(ctx)
	return errors.Join(err, derr)
}
