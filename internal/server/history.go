package server

import (
	"context"
	"errors"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
)

// History that follows the person, and the recovery blob
// (docs/multidevice.md section 3). The server keeps the records and the
// blob as opaque bytes; only the account's devices can open them.

// historyIDLen is the length of a history record id.
const historyIDLen = 16

// maxHistoryPageBytes is where a history page stops (after at least one
// record), so that a page of large records stays a few MiB.
const maxHistoryPageBytes = 4 << 20

var errHistoryFull = newError(api.CodeHistoryFull, "the account's history holds its most records")

// checkHistory validates records (what is there) and charges the
// device's history limits, in records and bytes.
func (s *Server) checkHistory(p Principal, recs []api.HistoryRecord) ([]store.HistoryRecord, error) {
	if len(recs) > api.MaxHistoryPerRequest {
		return nil, badRequest("at most %d history records per request", api.MaxHistoryPerRequest)
	}
	out := make([]store.HistoryRecord, len(recs))
	size := 0
	for i, r := range recs {
		switch {
		case r.Seq != 0:
			return nil, badRequest("history[%d]: seq is the server's", i)
		case len(r.ID) != historyIDLen:
			return nil, badRequest("history[%d]: id must be %d bytes", i, historyIDLen)
		case len(r.Blob) == 0:
			return nil, badRequest("history[%d]: blob is empty", i)
		case len(r.Blob) > api.MaxHistoryRecordBytes:
			return nil, newError(api.CodeTooLarge, "history[%d]: blob is %d bytes, more than %d", i, len(r.Blob), api.MaxHistoryRecordBytes)
		}
		size += len(r.Blob)
		out[i] = store.HistoryRecord{ID: r.ID, Blob: r.Blob}
	}
	if len(recs) > 0 {
		dev := accountKey(p.Account) + "." + accountKey(int64(p.Device))
		if !s.limHistory.Allow(dev, float64(len(recs))) || !s.limHistoryBytes.Allow(dev, float64(size)) {
			return nil, errRateLimited
		}
	}
	return out, nil
}

// DepositHistory stores history records for the caller's account; a
// record whose id is stored already is ignored (the first copy stays).
func (s *Server) DepositHistory(ctx context.Context, p Principal, r api.HistoryDeposit) error {
	if len(r.Records) == 0 {
		return badRequest("records is empty")
	}
	recs, err := s.checkHistory(p, r.Records)
	if err != nil {
		return err
	}
	switch _, err := s.st.DepositHistory(ctx, p.Account, recs, s.cfg.MaxHistoryRecords); {
	case errors.Is(err, store.ErrHistoryFull):
		return errHistoryFull
	case err != nil:
		return s.internal("deposit history", err)
	}
	return nil
}

// History returns a page of the caller's account's history records, in
// server order, after seq after; limit 0 means api.MaxHistoryPerRequest.
func (s *Server) History(ctx context.Context, p Principal, after int64, limit int) (api.HistoryPage, error) {
	switch {
	case after < 0:
		return api.HistoryPage{}, badRequest("after must not be negative")
	case limit < 0 || limit > api.MaxHistoryPerRequest:
		return api.HistoryPage{}, badRequest("limit must be 1-%d", api.MaxHistoryPerRequest)
	case limit == 0:
		limit = api.MaxHistoryPerRequest
	}
	recs, more, err := s.st.History(ctx, p.Account, after, limit, maxHistoryPageBytes)
	if err != nil {
		return api.HistoryPage{}, s.internal("history", err)
	}
	out := api.HistoryPage{Records: make([]api.HistoryRecord, len(recs))}
	for i, r := range recs {
		out.Records[i] = api.HistoryRecord{Seq: r.Seq, ID: r.ID, Blob: r.Blob}
	}
	if more {
		next := recs[len(recs)-1].Seq
		out.Next = &next
	}
	return out, nil
}

// PutRecovery replaces the caller's account's recovery blob when the
// version is the stored one plus one (two devices racing: one gets 409
// conflict). It is charged to the device's history limits.
func (s *Server) PutRecovery(ctx context.Context, p Principal, r api.Recovery) error {
	switch {
	case r.Version < 1:
		return badRequest("version must be positive")
	case len(r.Blob) == 0:
		return badRequest("blob is empty")
	case len(r.Blob) > api.MaxRecoveryBlobBytes:
		return newError(api.CodeTooLarge, "blob is %d bytes, more than %d", len(r.Blob), api.MaxRecoveryBlobBytes)
	}
	dev := accountKey(p.Account) + "." + accountKey(int64(p.Device))
	if !s.limHistory.Allow(dev, 1) || !s.limHistoryBytes.Allow(dev, float64(len(r.Blob))) {
		return errRateLimited
	}
	switch err := s.st.SetRecovery(ctx, p.Account, r.Version, r.Blob); {
	case errors.Is(err, store.ErrConflict):
		return newError(api.CodeConflict, "version %d is not the stored version plus one: fetch it and try again", r.Version)
	case err != nil:
		return s.internal("put recovery", err)
	}
	return nil
}

// FetchRecovery returns an account's recovery blob to whoever has its
// password (a person who lost every device has no credential): rate
// limited and answered as every password check is, then 404 when the
// account has no blob.
func (s *Server) FetchRecovery(ctx context.Context, ip string, r api.RecoveryFetch) (api.Recovery, error) {
	acc, err := s.checkLogin(ctx, ip, r.Username, r.Password)
	if err != nil {
		return api.Recovery{}, err
	}
	v, blob, err := s.st.Recovery(ctx, acc.ID)
	if errors.Is(err, store.ErrNotFound) {
		return api.Recovery{}, newError(api.CodeNotFound, "the account has no recovery blob")
	} else if err != nil {
		return api.Recovery{}, s.internal("fetch recovery", err)
	}
	return api.Recovery{Version: v, Blob: blob}, nil
}
