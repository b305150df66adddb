package apiclient

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/hushmsg/hush/internal/api"
)

// Ordinary conversations on every device (docs/multidevice.md).

// SetAccountIdentity sets the account identity key, once (the same key
// again is fine; another key gets 409 conflict).
func (c *Client) SetAccountIdentity(ctx context.Context, r api.SetAccountIdentity) error {
	return c.Do(ctx, "PUT", "/v1/ordinary/identity", r, nil)
}

// UploadOrdinaryKeys uploads the calling device's ordinary prekeys.
func (c *Client) UploadOrdinaryKeys(ctx context.Context, k api.OrdinaryKeyUpload) error {
	return c.Do(ctx, "PUT", "/v1/ordinary/keys", k, nil)
}

// OrdinaryKeyCounts tells how many ordinary one-time keys the calling
// device has left.
func (c *Client) OrdinaryKeyCounts(ctx context.Context) (api.KeyCounts, error) {
	var out api.KeyCounts
	return out, c.Do(ctx, "GET", "/v1/ordinary/keys", nil, &out)
}

// OrdinaryBundles fetches a bundle of each of username's devices with
// ordinary keys, or of those listed in devices when it is not empty.
func (c *Client) OrdinaryBundles(ctx context.Context, username string, devices ...uint32) (api.OrdinaryBundles, error) {
	var out api.OrdinaryBundles
	p := "/v1/ordinary/keys/" + url.PathEscape(username)
	if len(devices) > 0 {
		ds := make([]string, len(devices))
		for i, d := range devices {
			ds[i] = strconv.FormatUint(uint64(d), 10)
		}
		p += "?devices=" + strings.Join(ds, ",")
	}
	return out, c.Do(ctx, "GET", p, nil, &out)
}

// SendOrdinary posts one ordinary message to every device of each
// recipient; it returns once the server has every copy on disk. A device
// list that is not current gets an *Error with Code
// api.CodeDeviceMismatch and its Mismatches.
func (c *Client) SendOrdinary(ctx context.Context, m api.OrdinarySend) (api.OrdinarySendResult, error) {
	var out api.OrdinarySendResult
	return out, c.Do(ctx, "POST", "/v1/ordinary/messages", m, &out)
}
