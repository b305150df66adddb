package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/key"
)

// Linking a device from a device (docs/multidevice.md section 2). The
// server relays: it holds a hash of the claim token, the new device's
// ephemeral key and MAC, and the sealed box, none of which it can use.

const (
	linkIDLen              = 16
	linkClaimLen           = 32 // the claim token; the server keeps its SHA-256
	linkKeyLen             = 32 // X25519 public keys and the hello MAC
	defaultLinkExpiresIn   = 300
	linkNotFoundMessage    = "no such link code: mistyped or expired"
	linkUsedMessage        = "the link code was used already"
	linkNotReadyMessage    = "the other device has not answered yet"
	linkNoIdentityMessage  = "the account has no account identity: set it with PUT /v1/ordinary/identity first"
	linkTooManyOpenMessage = "the account has its most open links: wait for one to expire, or delete one"
)

var (
	// errNoLink answers an unknown, expired or other account's link and a
	// wrong claim alike, so that link ids cannot be probed.
	errNoLink       = newError(api.CodeNotFound, linkNotFoundMessage)
	errLinkUsed     = newError(api.CodeLinkUsed, linkUsedMessage)
	errLinkNotReady = newError(api.CodeNotReady, linkNotReadyMessage)
	// dummyClaimHash is compared against when a link does not exist, so
	// that the answer costs what a wrong claim does.
	dummyClaimHash = make([]byte, sha256.Size)
)

func checkLinkID(id []byte) error {
	if len(id) != linkIDLen {
		return badRequest("a link id is %d bytes", linkIDLen)
	}
	return nil
}

func toLinkState(l store.Link) api.LinkState {
	out := api.LinkState{ExpiresAt: l.ExpiresAt}
	switch l.State {
	case store.LinkWaiting:
		out.State = api.LinkWaiting
	case store.LinkHelloed:
		out.State = api.LinkHelloed
	case store.LinkBoxed:
		out.State = api.LinkBoxed
	case store.LinkDone:
		out.State, out.DeviceID = api.LinkDone, l.Device
	}
	if l.State != store.LinkWaiting {
		out.Ephemeral, out.MAC = l.HelloEphemeral, l.HelloMAC
	}
	return out
}

// stateError is the refusal of an operation that needs the link further
// on (not ready) or not as far (used).
func stateError(l store.Link, need store.LinkState) error {
	if l.State < need {
		return errLinkNotReady
	}
	return errLinkUsed
}

// CreateLink opens a link for the caller's account (step 1): at most
// api.MaxOpenLinks at once, for at most api.MaxLinkExpiresIn seconds.
func (s *Server) CreateLink(ctx context.Context, p Principal, r api.NewLink) (api.LinkState, error) {
	switch {
	case checkLinkID(r.ID) != nil:
		return api.LinkState{}, checkLinkID(r.ID)
	case len(r.ClaimHash) != sha256.Size:
		return api.LinkState{}, badRequest("claimHash is %d bytes", sha256.Size)
	case r.ExpiresIn < 0 || r.ExpiresIn > api.MaxLinkExpiresIn:
		return api.LinkState{}, badRequest("expiresIn must be 1-%d seconds", api.MaxLinkExpiresIn)
	case r.ExpiresIn == 0:
		r.ExpiresIn = defaultLinkExpiresIn
	}
	acc, err := s.st.AccountByID(ctx, p.Account)
	if err != nil {
		return api.LinkState{}, s.internal("create link", err)
	}
	if acc.AccountIdentityKey == nil {
		return api.LinkState{}, newError(api.CodeConflict, linkNoIdentityMessage)
	}
	now := s.nowMs()
	l := store.Link{ID: r.ID, Account: p.Account, ClaimHash: r.ClaimHash, ExpiresAt: now + r.ExpiresIn*1000}
	switch err := s.st.CreateLink(ctx, l, api.MaxOpenLinks, now); {
	case errors.Is(err, store.ErrConflict):
		return api.LinkState{}, newError(api.CodeConflict, "a link with this id exists")
	case errors.Is(err, store.ErrTooManyLinks):
		return api.LinkState{}, newError(api.CodeRateLimited, linkTooManyOpenMessage)
	case err != nil:
		return api.LinkState{}, s.internal("create link", err)
	}
	return toLinkState(l), nil
}

// ownLink returns the caller's account's unexpired link.
func (s *Server) ownLink(ctx context.Context, p Principal, id []byte) (store.Link, error) {
	if err := checkLinkID(id); err != nil {
		return store.Link{}, err
	}
	l, err := s.st.Link(ctx, id, s.nowMs())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Link{}, errNoLink
	case err != nil:
		return store.Link{}, s.internal("link", err)
	case l.Account != p.Account:
		return store.Link{}, errNoLink
	}
	return l, nil
}

// LinkState tells the opening account where its link stands (the old
// device polls it).
func (s *Server) LinkState(ctx context.Context, p Principal, id []byte) (api.LinkState, error) {
	l, err := s.ownLink(ctx, p, id)
	if err != nil {
		return api.LinkState{}, err
	}
	return toLinkState(l), nil
}

// DeleteLink deletes the caller's account's link (the old device gives up,
// or found the hello's MAC wrong).
func (s *Server) DeleteLink(ctx context.Context, p Principal, id []byte) error {
	if err := checkLinkID(id); err != nil {
		return err
	}
	switch err := s.st.DeleteLink(ctx, id, p.Account); {
	case errors.Is(err, store.ErrNotFound):
		return errNoLink
	case err != nil:
		return s.internal("delete link", err)
	}
	return nil
}

// PutLinkBox leaves the provisioning box on the caller's account's link,
// after the new device's hello (step 3).
func (s *Server) PutLinkBox(ctx context.Context, p Principal, id []byte, r api.LinkBox) error {
	switch {
	case len(r.Ephemeral) != linkKeyLen:
		return badRequest("ephemeral is %d bytes", linkKeyLen)
	case len(r.Box) == 0:
		return badRequest("box is empty")
	case len(r.Box) > api.MaxLinkBoxBytes:
		return newError(api.CodeTooLarge, "box is %d bytes, more than %d", len(r.Box), api.MaxLinkBoxBytes)
	}
	l, err := s.ownLink(ctx, p, id)
	if err != nil {
		return err
	}
	if l.State != store.LinkHelloed {
		return stateError(l, store.LinkHelloed)
	}
	switch err := s.st.SetLinkBox(ctx, id, p.Account, s.nowMs(), r.Ephemeral, r.Box); {
	case errors.Is(err, store.ErrNotFound):
		return errNoLink
	case errors.Is(err, store.ErrLinkState):
		return errLinkUsed // another request moved it on meanwhile
	case err != nil:
		return s.internal("link box", err)
	}
	return nil
}

// claimed returns the unexpired link id when claim is its claim token.
// The requests are charged per client address and per link before the
// link is looked up, and an unknown link and a wrong claim get the same
// answer after the same work, so that ids cannot be probed.
func (s *Server) claimed(ctx context.Context, ip string, id, claim []byte) (store.Link, error) {
	if err := checkLinkID(id); err != nil {
		return store.Link{}, err
	}
	if len(claim) != linkClaimLen {
		return store.Link{}, badRequest("claim is %d bytes", linkClaimLen)
	}
	if !s.limLinkIP.Allow(addrKey(ip), 1) || !s.limLink.Allow(base64.RawURLEncoding.EncodeToString(id), 1) {
		return store.Link{}, errRateLimited
	}
	l, err := s.st.Link(ctx, id, s.nowMs())
	want := l.ClaimHash
	switch {
	case errors.Is(err, store.ErrNotFound):
		want = dummyClaimHash
	case err != nil:
		return store.Link{}, s.internal("link", err)
	}
	h := sha256.Sum256(claim)
	if subtle.ConstantTimeCompare(h[:], want) != 1 || err != nil {
		return store.Link{}, errNoLink
	}
	return l, nil
}

// LinkHello records the new device's hello (step 2), once per link.
func (s *Server) LinkHello(ctx context.Context, ip string, id []byte, r api.LinkHello) error {
	if len(r.Ephemeral) != linkKeyLen || len(r.MAC) != linkKeyLen {
		return badRequest("ephemeral and mac are %d bytes", linkKeyLen)
	}
	l, err := s.claimed(ctx, ip, id, r.Claim)
	if err != nil {
		return err
	}
	if l.State != store.LinkWaiting {
		return errLinkUsed
	}
	switch err := s.st.LinkHello(ctx, id, s.nowMs(), r.Ephemeral, r.MAC); {
	case errors.Is(err, store.ErrNotFound):
		return errNoLink
	case errors.Is(err, store.ErrLinkState):
		return errLinkUsed
	case err != nil:
		return s.internal("link hello", err)
	}
	return nil
}

// FetchLinkBox hands the new device the box (step 4): 409 not_ready until
// the old device left it.
func (s *Server) FetchLinkBox(ctx context.Context, ip string, id []byte, r api.LinkClaim) (api.LinkBox, error) {
	l, err := s.claimed(ctx, ip, id, r.Claim)
	if err != nil {
		return api.LinkBox{}, err
	}
	if l.State != store.LinkBoxed {
		return api.LinkBox{}, stateError(l, store.LinkBoxed)
	}
	return api.LinkBox{Ephemeral: l.BoxEphemeral, Box: l.Box}, nil
}

// LinkDevice creates the new device with its ordinary keys, signed by the
// account identity (so that only a holder of the box can complete), and
// marks the link done (step 4); the link is of no more use.
func (s *Server) LinkDevice(ctx context.Context, ip string, id []byte, r api.LinkDevice) (api.DeviceCredential, error) {
	u := r.Keys
	switch {
	case !validText(r.DeviceName, api.MaxDeviceNameLen):
		return api.DeviceCredential{}, badRequest("device name must be at most %d characters, no control or format characters", api.MaxDeviceNameLen)
	case u.RegistrationID == 0 || u.RegistrationID > key.MaxRegistrationID:
		return api.DeviceCredential{}, badRequest("registrationId must be 1-%d", key.MaxRegistrationID)
	case u.SignedPreKey == nil || u.KyberLastResort == nil:
		return api.DeviceCredential{}, errFirstOrdinaryKeys
	}
	if err := checkUploadShape(u.KeyUpload); err != nil {
		return api.DeviceCredential{}, err
	}
	l, err := s.claimed(ctx, ip, id, r.Claim)
	if err != nil {
		return api.DeviceCredential{}, err
	}
	if l.State != store.LinkBoxed {
		return api.DeviceCredential{}, stateError(l, store.LinkBoxed)
	}
	acc, err := s.st.AccountByID(ctx, l.Account)
	if err != nil {
		return api.DeviceCredential{}, s.internal("link device", err)
	}
	if acc.AccountIdentityKey == nil {
		return api.DeviceCredential{}, newError(api.CodeConflict, linkNoIdentityMessage)
	}
	ik, err := key.ParseIdentityKey(acc.AccountIdentityKey)
	if err != nil {
		return api.DeviceCredential{}, s.internal("link device: stored account identity", err)
	}
	k, err := checkKeys(ik, u.KeyUpload)
	if err != nil {
		return api.DeviceCredential{}, err
	}
	secret, hash := newToken()
	dev, err := s.st.LinkDevice(ctx, id, s.nowMs(), store.NewDevice{Name: r.DeviceName, TokenHash: hash, Created: s.nowMs()},
		s.cfg.MaxDevices, u.RegistrationID, k)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return api.DeviceCredential{}, errNoLink
	case errors.Is(err, store.ErrLinkState):
		return api.DeviceCredential{}, errLinkUsed
	case errors.Is(err, store.ErrTooManyDevices):
		return api.DeviceCredential{}, newError(api.CodeTooManyDevices, "the account has %d devices already", s.cfg.MaxDevices)
	case errors.Is(err, store.ErrNoKeys):
		return api.DeviceCredential{}, errFirstOrdinaryKeys
	case err != nil:
		return api.DeviceCredential{}, s.internal("link device", err)
	}
	s.forget(Forget{Username: acc.Username})
	s.log.Info("device linked", "account", acc.ID, "device", dev.Ref.Device)
	return api.DeviceCredential{AccountID: acc.ID, Username: acc.Username, DeviceID: dev.Ref.Device, Credential: credential(dev.Ref, secret)}, nil
}
