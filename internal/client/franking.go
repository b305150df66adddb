package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/termsafe"
)

// Message franking (docs/franking.md; spec/signal-digest.md section 11.3).
// Every message with a body (or files) is franked: a fresh franking key
// goes into the content (field 8), and the commitment HMAC-SHA256(key, P)
// over the whole encoded content P goes beside the ciphertext. Messages
// without a body (receipts, typing, control between one's own devices)
// are not: they carry nothing to report.

// frank draws a fresh franking key for cm, encodes it and returns the
// encoding P with its commitment.
func frank(cm *content.Message) (pt, commitment []byte, err error) {
	k := franking.NewKey()
	cm.FrankingKey = k[:]
	if pt, err = cm.Marshal(); err != nil {
		return nil, nil, err
	}
	c := franking.Commit(k[:], pt)
	if testOnlyCommitment != nil {
		return pt, testOnlyCommitment(c[:]), nil
	}
	return pt, c[:], nil
}

// testOnlyCommitment, set by tests only, replaces the commitment frank
// returns: what a dishonest sender's client sends.
var testOnlyCommitment func([]byte) []byte

// checkFranking checks a received message's franking against what it
// decrypted to (pt, parsed as cm): a message whose content carries a
// franking key must open the commitment it was delivered with, in
// constant time, and a delivered commitment needs a key in the content.
// It returns what a report needs, nil for a message that is not franked
// (from a client before franking), or an error for one to drop.
func (c *Client) checkFranking(m *api.Message, pt []byte, cm *content.Message) (*store.Franking, error) {
	switch {
	case cm.FrankingKey == nil && m.Franking == nil:
		return nil, nil
	case cm.FrankingKey == nil, m.Franking == nil,
		!franking.Verify(cm.FrankingKey, pt, m.Franking.Commitment),
		len(m.Franking.Tag) != api.FrankingTagSize:
		return nil, errFrankingMismatch
	}
	return &store.Franking{Content: pt, Key: cm.FrankingKey, Commitment: m.Franking.Commitment, Tag: m.Franking.Tag,
		KeyID: m.Franking.KeyID, Timestamp: m.Timestamp, FromDevice: m.FromDevice, ToDevice: c.acct.DeviceID}, nil
}

var errFrankingMismatch = errors.New("franking commitment does not match")

// frankingNotice is the notice of a dropped message.
func frankingNotice(from string) string {
	return fmt.Sprintf("A message from %s was dropped: it does not match the franking commitment it came with, so it could not be reported (a faulty or dishonest client).", from)
}

// MaxReportContext is the most messages before the reported one that a
// report may carry (api.MaxReportMessages less the reported one).
const MaxReportContext = api.MaxReportMessages - 1

// reportBudget keeps a report's body under the server's 1 MiB: context
// messages, oldest first, are left out past it.
const reportBudget = 900 << 10

// ReportResult says what a report sent.
type ReportResult struct {
	ID       int64 // the server's report id
	Messages int   // the reported message and those before it
}

// Report sends an abuse report of the message with id (as history shows
// it) that name sent to this account, in a one-to-one or a group
// conversation, with up to n franked messages before it from them in the
// same conversation (docs/franking.md): the server
// verifies each against its franking and keeps the report for the
// operator; name is not told. Only a franked message received here (not
// one that disappeared, nor one from a client before franking) can be
// reported, and each once.
func (c *Client) Report(ctx context.Context, name string, id content.ID, n int, reason string) (ReportResult, error) {
	peer := NormalizeUsername(name)
	switch {
	case n < 0 || n > MaxReportContext:
		return ReportResult{}, fmt.Errorf("--context must be 0 to %d", MaxReportContext)
	case len(reason) > api.MaxReportReasonLen:
		return ReportResult{}, fmt.Errorf("the reason is %d bytes; the most is %d", len(reason), api.MaxReportReasonLen)
	case !termsafe.IsLine(reason):
		return ReportResult{}, errors.New("the reason must be one line of text, without control characters")
	}
	r := c.st.Read()
	m, err := r.ReceivedByID(ctx, peer, id)
	sender := "" // a one-to-one conversation's lines are all peer's
	if errors.Is(err, store.ErrNotFound) {
		// Or a line peer said in a group (docs/groups.md).
		if m, err = r.ReceivedInGroupByID(ctx, peer, id); err == nil {
			sender = peer
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return ReportResult{}, fmt.Errorf("no message %s from %s here (hush history --ids %s shows the ids)", id, peer, peer)
	} else if err != nil {
		return ReportResult{}, err
	}
	if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(time.Now()) {
		return ReportResult{}, errors.New("that message has disappeared")
	}
	fr, err := r.Franking(ctx, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return ReportResult{}, errors.New("that message cannot be reported: it was not franked (sent by a hush from before franking)")
	} else if err != nil {
		return ReportResult{}, err
	}
	before, err := r.ReportableBefore(ctx, m.Peer, sender, m.Secret, m.ID, n, time.Now())
	if err != nil {
		return ReportResult{}, err
	}
	msgs := []api.ReportedMessage{reportedMessage(peer, fr)}
	size := len(fr.Content) * 4 / 3
	for _, b := range before {
		s := len(b.Franking.Content) * 4 / 3
		if size+s > reportBudget {
			break
		}
		size += s
		msgs = append(msgs, reportedMessage(peer, b.Franking))
	}
	res, err := c.apic().Report(ctx, api.Report{Reason: reason, Messages: msgs})
	var e *apiclient.Error
	if errors.As(err, &e) && e.Code == api.CodeReportRefused {
		return ReportResult{}, fmt.Errorf("the server refused the report: %s", e.Message)
	} else if err != nil {
		return ReportResult{}, explain(err)
	}
	return ReportResult{ID: res.ID, Messages: len(msgs)}, nil
}

func reportedMessage(from string, f *store.Franking) api.ReportedMessage {
	return api.ReportedMessage{From: from, FromDevice: f.FromDevice, ToDevice: f.ToDevice, Timestamp: f.Timestamp,
		Franking:    api.Franking{Commitment: f.Commitment, Tag: f.Tag, KeyID: f.KeyID},
		FrankingKey: f.Key, Content: f.Content}
}
