package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server/store"
)

// Message franking (docs/franking.md; spec/signal-digest.md section 11.3):
// the server never sees a message's content or franking key. It binds the
// sender's commitment to who sent it to whom and when with a reporting tag
// under a key of its own, and verifies the opening a recipient sends in a
// report.

// SetFrankingKeys replaces the keyring (after `hushd franking-key
// rotate`): new messages are tagged with its current key; reports are
// checked against every key in it.
func (s *Server) SetFrankingKeys(r *franking.Keyring) { s.franking.Store(r) }

// frank checks a sent commitment and returns the message's franking, nil
// when there is no commitment.
func (s *Server) frank(commitment []byte, c franking.Context) (*store.Franking, error) {
	if len(commitment) == 0 {
		return nil, nil
	}
	if len(commitment) != api.FrankingCommitmentSize {
		return nil, badRequest("frankingCommitment must be %d bytes", api.FrankingCommitmentSize)
	}
	k := s.franking.Load().Current()
	tag, err := franking.Tag(k.Key[:], commitment, c)
	if err != nil {
		return nil, s.internal("franking tag", err)
	}
	return &store.Franking{Commitment: bytes.Clone(commitment), Tag: tag[:], KeyID: k.ID}, nil
}

func toAPIFranking(f *store.Franking) *api.Franking {
	if f == nil {
		return nil
	}
	return &api.Franking{Commitment: f.Commitment, Tag: f.Tag, KeyID: f.KeyID}
}

// StoredReport is a report as hushd stores it (store.Report.Body, JSON):
// who reported, their reason, and the messages as verified.
type StoredReport struct {
	Reporter       string                `json:"reporter"`
	ReporterDevice uint32                `json:"reporterDevice"`
	Reason         string                `json:"reason,omitempty"`
	Messages       []api.ReportedMessage `json:"messages"`
}

// ParseStoredReport decodes a store.Report's body.
func ParseStoredReport(b []byte) (*StoredReport, error) {
	var r StoredReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("a stored report that does not decode: %w", err)
	}
	return &r, nil
}

func refused(format string, args ...any) *Error {
	return newError(api.CodeReportRefused, format, args...)
}

// Report verifies and stores an abuse report from p (POST /v1/reports).
// Every message must open to its commitment under its franking key (the
// content's own, field 8), and its tag must be the server's, under the key
// named, for that commitment sent by From's device FromDevice to p's
// account's device ToDevice at Timestamp: so that p can report only what
// was delivered to p, as it was sent. Every message is from the same
// person. The reported message (the first) can be reported once. The
// person reported is not told.
func (s *Server) Report(ctx context.Context, p Principal, r api.Report) (api.ReportResult, error) {
	if s.closing() {
		return api.ReportResult{}, errClosing
	}
	// Charged first, forged and refused reports included, so that tags
	// cannot be guessed at the server's expense.
	if !s.limReport.Allow(accountKey(p.Account), 1) {
		return api.ReportResult{}, errRateLimited
	}
	if err := checkReport(&r, s.cfg.MaxContentBytes); err != nil {
		return api.ReportResult{}, err
	}
	keys := s.franking.Load()
	for i, m := range r.Messages {
		k, ok := keys.Key(m.Franking.KeyID)
		if !ok {
			return api.ReportResult{}, refused("messages[%d]: no franking key %d on this server", i, m.Franking.KeyID)
		}
		// The commitment first: it is the sender's word on the content.
		if !franking.Verify(m.FrankingKey, m.Content, m.Franking.Commitment) {
			return api.ReportResult{}, refused("messages[%d]: the content and franking key do not open the commitment", i)
		}
		c := franking.Context{Sender: m.From, SenderDevice: m.FromDevice, Recipient: p.Username, RecipientDevice: m.ToDevice, Timestamp: m.Timestamp}
		if !franking.CheckTag(k.Key[:], m.Franking.Commitment, c, m.Franking.Tag) {
			return api.ReportResult{}, refused("messages[%d]: the tag does not verify: not a message this server delivered to you from %s", i, m.From)
		}
		// The key that opens it must be the content's own, as the
		// recipient's client checked (docs/franking.md).
		cm, err := content.Parse(m.Content)
		if err != nil || !bytes.Equal(cm.FrankingKey, m.FrankingKey) {
			return api.ReportResult{}, refused("messages[%d]: the content does not carry its franking key", i)
		}
	}
	body, err := json.Marshal(StoredReport{Reporter: p.Username, ReporterDevice: p.Device, Reason: r.Reason, Messages: r.Messages})
	if err != nil {
		return api.ReportResult{}, s.internal("report", err)
	}
	id, err := s.st.AddReport(ctx, store.Report{Reporter: p.DeviceRef, Created: s.now().UnixMilli(),
		Tag: r.Messages[0].Franking.Tag, Body: body})
	switch {
	case errors.Is(err, store.ErrConflict):
		return api.ReportResult{}, refused("messages[0]: that message was reported already")
	case err != nil:
		return api.ReportResult{}, s.internal("add report", err)
	}
	s.log.Info("abuse report", "id", id)
	return api.ReportResult{ID: id}, nil
}

// checkReport validates what needs no key: sizes, names, the reason, one
// sender, no message twice.
func checkReport(r *api.Report, maxContent int) error {
	switch {
	case len(r.Messages) == 0:
		return badRequest("messages is empty")
	case len(r.Messages) > api.MaxReportMessages:
		return badRequest("more than %d messages", api.MaxReportMessages)
	case len(r.Reason) > api.MaxReportReasonLen:
		return badRequest("reason is longer than %d bytes", api.MaxReportReasonLen)
	case !utf8.ValidString(r.Reason):
		return badRequest("reason is not UTF-8")
	}
	for _, c := range r.Reason {
		if unicode.IsControl(c) || c == 0x2028 || c == 0x2029 || unicode.In(c, unicode.Bidi_Control) {
			return badRequest("reason holds a control character")
		}
	}
	tags := make(map[string]bool, len(r.Messages))
	for i, m := range r.Messages {
		switch {
		case !ValidUsername(m.From):
			return badRequest("messages[%d]: from is not a username", i)
		case m.From != r.Messages[0].From:
			return badRequest("messages[%d]: every message of a report is from the same person", i)
		case m.FromDevice == 0 || m.ToDevice == 0:
			return badRequest("messages[%d]: fromDevice and toDevice must be given", i)
		case len(m.Franking.Commitment) != api.FrankingCommitmentSize:
			return badRequest("messages[%d]: franking.commitment must be %d bytes", i, api.FrankingCommitmentSize)
		case len(m.Franking.Tag) != api.FrankingTagSize:
			return badRequest("messages[%d]: franking.tag must be %d bytes", i, api.FrankingTagSize)
		case len(m.FrankingKey) != franking.KeySize:
			return badRequest("messages[%d]: frankingKey must be %d bytes", i, franking.KeySize)
		case len(m.Content) == 0 || len(m.Content) > maxContent:
			return badRequest("messages[%d]: content must be 1 to %d bytes", i, maxContent)
		case tags[string(m.Franking.Tag)]:
			return badRequest("messages[%d]: a message appears twice", i)
		}
		tags[string(m.Franking.Tag)] = true
	}
	return nil
}
