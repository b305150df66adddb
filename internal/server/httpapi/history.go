package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// historyRoutes serves the history records and the recovery blob
// (docs/multidevice.md section 3, docs/api.md).
func (h *Handler) historyRoutes(m *http.ServeMux) {
	srv := h.srv
	m.HandleFunc("POST /v1/history", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.HistoryDeposit) (none, error) {
		return none{}, srv.DepositHistory(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/history", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.HistoryPage, error) {
		after, limit, err := ParseHistoryQuery(r.URL.RawQuery)
		if err != nil {
			return api.HistoryPage{}, err
		}
		return srv.History(r.Context(), p, after, limit)
	})))
	m.HandleFunc("PUT /v1/recovery", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.Recovery) (none, error) {
		return none{}, srv.PutRecovery(r.Context(), p, req)
	})))
	m.HandleFunc("POST /v1/recovery/fetch", public(endpoint(200, func(r *http.Request, _ server.Principal, req api.RecoveryFetch) (api.Recovery, error) {
		return srv.FetchRecovery(r.Context(), h.clientIP(r), req)
	})))
}

// ParseHistoryQuery parses the query of GET /v1/history: after (a seq, 0
// if absent) and limit (0 if absent: the server's page size), each a
// decimal number given at most once.
func ParseHistoryQuery(raw string) (after int64, limit int, err error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return 0, 0, badRequest("malformed query")
	}
	num := func(name string, bits int) (int64, error) {
		vs := q[name]
		switch {
		case len(vs) == 0:
			return 0, nil
		case len(vs) > 1:
			return 0, badRequest("%s: give it once", name)
		}
		n, err := strconv.ParseInt(vs[0], 10, bits)
		if err != nil || n < 0 {
			return 0, badRequest("%s must be a number, not negative", name)
		}
		return n, nil
	}
	if after, err = num("after", 63); err != nil {
		return 0, 0, err
	}
	l, err := num("limit", 32)
	if err != nil {
		return 0, 0, err
	}
	if _, given := q["limit"]; given && l == 0 {
		return 0, 0, badRequest("limit must be 1-%d", api.MaxHistoryPerRequest)
	}
	return after, int(l), nil
}
