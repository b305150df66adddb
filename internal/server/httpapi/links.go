package httpapi

import (
	"encoding/base64"
	"net/http"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// linkRoutes serves the links that relay the linking of a new device
// (docs/multidevice.md section 2, docs/api.md). The new device has no
// credential: its requests prove the link code with the claim token.
func (h *Handler) linkRoutes(m *http.ServeMux) {
	srv := h.srv
	m.HandleFunc("POST /v1/links", h.authed(endpoint(201, func(r *http.Request, p server.Principal, req api.NewLink) (api.LinkState, error) {
		return srv.CreateLink(r.Context(), p, req)
	})))
	m.HandleFunc("GET /v1/links/{id}", h.authed(endpoint(200, func(r *http.Request, p server.Principal, _ none) (api.LinkState, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return api.LinkState{}, err
		}
		return srv.LinkState(r.Context(), p, id)
	})))
	m.HandleFunc("DELETE /v1/links/{id}", h.authed(endpoint(204, func(r *http.Request, p server.Principal, _ none) (none, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return none{}, err
		}
		return none{}, srv.DeleteLink(r.Context(), p, id)
	})))
	m.HandleFunc("PUT /v1/links/{id}/box", h.authed(endpoint(204, func(r *http.Request, p server.Principal, req api.LinkBox) (none, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return none{}, err
		}
		return none{}, srv.PutLinkBox(r.Context(), p, id, req)
	})))
	m.HandleFunc("POST /v1/links/{id}/hello", public(endpoint(204, func(r *http.Request, _ server.Principal, req api.LinkHello) (none, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return none{}, err
		}
		return none{}, srv.LinkHello(r.Context(), h.clientIP(r), id, req)
	})))
	m.HandleFunc("POST /v1/links/{id}/box", public(endpoint(200, func(r *http.Request, _ server.Principal, req api.LinkClaim) (api.LinkBox, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return api.LinkBox{}, err
		}
		return srv.FetchLinkBox(r.Context(), h.clientIP(r), id, req)
	})))
	m.HandleFunc("POST /v1/links/{id}/device", public(endpoint(201, func(r *http.Request, _ server.Principal, req api.LinkDevice) (api.DeviceCredential, error) {
		id, err := ParseLinkID(r.PathValue("id"))
		if err != nil {
			return api.DeviceCredential{}, err
		}
		return srv.LinkDevice(r.Context(), h.clientIP(r), id, req)
	})))
}

// ParseLinkID decodes a link id in a path: 16 bytes as unpadded base64url
// (22 characters), in its one canonical spelling (the decoder alone would
// skip line breaks).
func ParseLinkID(s string) ([]byte, error) {
	id, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(id) != 16 || base64.RawURLEncoding.EncodeToString(id) != s {
		return nil, badRequest("a link id is 16 bytes in unpadded base64url (22 characters)")
	}
	return id, nil
}
