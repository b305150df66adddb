package apiclient

import (
	"context"
	"encoding/base64"
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

// SendGroup posts one SenderKeyMessage (m.Type api.TypeSenderKey) for
// every device listed, at most api.MaxGroupDevices; it returns once the
// server has every copy on disk. The list must name every ordinary device
// of each account in it, and the caller's other ordinary devices; else an
// *Error with Code api.CodeDeviceMismatch and its Mismatches (Missing and
// Extra; never Stale) tells what to change.
func (c *Client) SendGroup(ctx context.Context, m api.GroupSend) (api.GroupSendResult, error) {
	var out api.GroupSendResult
	return out, c.Do(ctx, "POST", "/v1/groups/messages", m, &out)
}

// DepositHistory stores history records for the caller's account; records
// whose ids are stored already are ignored.
func (c *Client) DepositHistory(ctx context.Context, d api.HistoryDeposit) error {
	return c.Do(ctx, "POST", "/v1/history", d, nil)
}

// History fetches a page of the account's history records after seq after
// (0: from the start); limit 0 is the server's page size. Page.Next is nil
// on the last page.
func (c *Client) History(ctx context.Context, after int64, limit int) (api.HistoryPage, error) {
	var out api.HistoryPage
	p := "/v1/history?after=" + strconv.FormatInt(after, 10)
	if limit > 0 {
		p += "&limit=" + strconv.Itoa(limit)
	}
	return out, c.Do(ctx, "GET", p, nil, &out)
}

// PutRecovery replaces the account's recovery blob; r.Version must be the
// stored version plus one (else 409 conflict).
func (c *Client) PutRecovery(ctx context.Context, r api.Recovery) error {
	return c.Do(ctx, "PUT", "/v1/recovery", r, nil)
}

// FetchRecovery fetches an account's recovery blob with its password (no
// credential needed).
func (c *Client) FetchRecovery(ctx context.Context, r api.RecoveryFetch) (api.Recovery, error) {
	var out api.Recovery
	return out, c.Do(ctx, "POST", "/v1/recovery/fetch", r, &out)
}

// linkPath is the path of a link: its id in unpadded base64url.
func linkPath(id []byte, rest string) string {
	return "/v1/links/" + base64.RawURLEncoding.EncodeToString(id) + rest
}

// CreateLink opens a link for the caller's account (the old device).
func (c *Client) CreateLink(ctx context.Context, l api.NewLink) (api.LinkState, error) {
	var out api.LinkState
	return out, c.Do(ctx, "POST", "/v1/links", l, &out)
}

// LinkState tells the opening account where its link stands.
func (c *Client) LinkState(ctx context.Context, id []byte) (api.LinkState, error) {
	var out api.LinkState
	return out, c.Do(ctx, "GET", linkPath(id, ""), nil, &out)
}

// DeleteLink deletes the caller's account's link.
func (c *Client) DeleteLink(ctx context.Context, id []byte) error {
	return c.Do(ctx, "DELETE", linkPath(id, ""), nil, nil)
}

// PutLinkBox leaves the provisioning box (the old device, after the
// hello).
func (c *Client) PutLinkBox(ctx context.Context, id []byte, b api.LinkBox) error {
	return c.Do(ctx, "PUT", linkPath(id, "/box"), b, nil)
}

// LinkHello says hello on a link (the new device; no credential needed).
func (c *Client) LinkHello(ctx context.Context, id []byte, h api.LinkHello) error {
	return c.Do(ctx, "POST", linkPath(id, "/hello"), h, nil)
}

// FetchLinkBox fetches the box (the new device): an *Error with Code
// api.CodeNotReady until the old device left it.
func (c *Client) FetchLinkBox(ctx context.Context, id []byte, claim []byte) (api.LinkBox, error) {
	var out api.LinkBox
	return out, c.Do(ctx, "POST", linkPath(id, "/box"), api.LinkClaim{Claim: claim}, &out)
}

// LinkDevice creates the new device on a link and uses its credential
// from then on.
func (c *Client) LinkDevice(ctx context.Context, id []byte, d api.LinkDevice) (api.DeviceCredential, error) {
	var out api.DeviceCredential
	err := c.Do(ctx, "POST", linkPath(id, "/device"), d, &out)
	if err == nil {
		c.cred = out.Credential
	}
	return out, err
}
