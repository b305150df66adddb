package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// ordinaryRoutes serves the endpoints of ordinary conversations on every
// device (docs/multidevice.md, docs/api.md).
func (h *Handler) ordinaryRoutes(m *http.ServeMux) {
	srv := h.srv
	m.HandleFunc("PUT /v1/ordinary/identity", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.SetAccountIdentity) (none, error) {
		return none{}, srv.SetAccountIdentity(r.Context(), p, req)
	})))
	m.HandleFunc("PUT /v1/ordinary/keys", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.OrdinaryKeyUpload) (none, error) {
		return none{}, srv.UploadOrdinaryKeys(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/ordinary/keys", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.KeyCounts, error) {
		return srv.OrdinaryKeyCounts(r.Context(), p)
	})))
	m.HandleFunc("GET /v1/ordinary/keys/{username}", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.OrdinaryBundles, error) {
		devices, err := devicesParam(r)
		if err != nil {
			return api.OrdinaryBundles{}, err
		}
		return srv.FetchOrdinaryBundles(r.Context(), p, r.PathValue("username"), devices)
	})))
	m.HandleFunc("POST /v1/ordinary/messages", h.authed(endpoint(200, func(r *http.Request, p server.Principal, req api.OrdinarySend) (api.OrdinarySendResult, error) {
		return srv.SendOrdinary(r.Context(), p, req)
	})))
	// Group sends (issue 10, docs/groups.md): one SenderKeyMessage fanned
	// out to the devices listed.
	m.HandleFunc("POST /v1/groups/messages", h.authed(endpoint(200, func(r *http.Request, p server.Principal, req api.GroupSend) (api.GroupSendResult, error) {
		return srv.SendGroup(r.Context(), p, req)
	})))
}

// devicesParam reads the optional devices query parameter: nil when it is
// absent.
func devicesParam(r *http.Request) ([]uint32, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query")
	}
	if !q.Has("devices") {
		return nil, nil
	}
	if len(q["devices"]) != 1 {
		return nil, badRequest("devices: give it once")
	}
	return ParseDeviceList(q.Get("devices"))
}

// ParseDeviceList parses the devices query parameter of GET
// /v1/ordinary/keys/{username}: device ids (positive, decimal) joined by
// commas, at most api.MaxDevices of them. Present but empty is an error.
func ParseDeviceList(s string) ([]uint32, error) {
	parts := strings.Split(s, ",")
	if len(parts) > api.MaxDevices {
		return nil, badRequest("devices: at most %d device ids", api.MaxDevices)
	}
	out := make([]uint32, 0, len(parts))
	for _, p := range parts {
		d, err := parseDevice(p)
		if err != nil {
			return nil, badRequest("devices: a comma-separated list of device ids (positive integers)")
		}
		out = append(out, d)
	}
	return out, nil
}
