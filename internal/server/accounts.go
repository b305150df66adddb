package server

import (
	"context"
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/ratelimit"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/key"
)

// ValidUsername reports whether u is a valid username ([api.ValidUsername]).
func ValidUsername(u string) bool { return api.ValidUsername(u) }

// validText reports whether s may be a display or device name: valid
// UTF-8, at most max characters, and no control (Cc), format (Cf: bidi
// overrides and isolates, zero-width characters) or line and paragraph
// separator (Zl, Zp) characters, which could reorder or hide what a
// terminal shows around the name.
func validText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return false
		}
	}
	return true
}

func validPassword(p string) bool {
	return len(p) >= api.MinPasswordLen && len(p) <= api.MaxPasswordLen
}

// Register creates an account with its first device. ip is the client's
// address, for rate limiting.
func (s *Server) Register(ctx context.Context, ip string, r api.Register) (api.DeviceCredential, error) {
	switch {
	case !ValidUsername(r.Username):
		return api.DeviceCredential{}, badRequest("username must be 3-32 characters of a-z, 0-9 and _, starting with a letter")
	case !validPassword(r.Password):
		return api.DeviceCredential{}, badRequest("password must be %d-%d bytes", api.MinPasswordLen, api.MaxPasswordLen)
	case !validText(r.DisplayName, api.MaxDisplayNameLen):
		return api.DeviceCredential{}, badRequest("display name must be at most %d characters, no control or format characters", api.MaxDisplayNameLen)
	case !validText(r.DeviceName, api.MaxDeviceNameLen):
		return api.DeviceCredential{}, badRequest("device name must be at most %d characters, no control or format characters", api.MaxDeviceNameLen)
	}
	if !s.limRegister.Allow(addrKey(ip), 1) {
		return api.DeviceCredential{}, errRateLimited
	}
	ph, err := s.hashPassword(ctx, r.Password)
	if err != nil {
		return api.DeviceCredential{}, s.internal("hash password", err)
	}
	now := s.nowMs()
	secret, hash := newToken()
	acc, dev, err := s.st.CreateAccount(ctx, store.NewAccount{Username: r.Username, DisplayName: r.DisplayName, PasswordHash: ph, Created: now},
		store.NewDevice{Name: r.DeviceName, TokenHash: hash, Created: now})
	if errors.Is(err, store.ErrUsernameTaken) {
		return api.DeviceCredential{}, newError(api.CodeUsernameTaken, "username is taken")
	} else if err != nil {
		return api.DeviceCredential{}, s.internal("create account", err)
	}
	s.m.registrations.Inc()
	s.log.Info("account registered", "account", acc.ID)
	return api.DeviceCredential{AccountID: acc.ID, Username: acc.Username, DeviceID: dev.Ref.Device, Credential: credential(dev.Ref, secret)}, nil
}

// checkLogin verifies a username and password, rate limited per address
// and per username. Every failure is the same 401. The username is
// validated before it keys a limiter, so that what a stranger sends is not
// what the server keeps.
func (s *Server) checkLogin(ctx context.Context, ip, username, password string) (store.Account, error) {
	if !s.limLoginIP.Allow(addrKey(ip), 1) {
		return store.Account{}, errRateLimited
	}
	if !ValidUsername(username) || !validPassword(password) {
		return store.Account{}, errUnauthorized
	}
	if !s.limLoginUser.Allow(username, 1) {
		return store.Account{}, errRateLimited
	}
	acc, err := s.st.AccountByUsername(ctx, username)
	hash := acc.PasswordHash
	if errors.Is(err, store.ErrNotFound) {
		hash = s.dummyHash
	} else if err != nil {
		return store.Account{}, s.internal("login", err)
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return store.Account{}, s.internal("check password", err)
	}
	if !ok || acc.ID == 0 {
		return store.Account{}, errUnauthorized
	}
	return acc, nil
}

// AddDevice gives an account a new device, authorized by its password.
func (s *Server) AddDevice(ctx context.Context, ip string, r api.AddDevice) (api.DeviceCredential, error) {
	if !validText(r.DeviceName, api.MaxDeviceNameLen) {
		return api.DeviceCredential{}, badRequest("device name must be at most %d characters, no control or format characters", api.MaxDeviceNameLen)
	}
	acc, err := s.checkLogin(ctx, ip, r.Username, r.Password)
	if err != nil {
		return api.DeviceCredential{}, err
	}
	secret, hash := newToken()
	dev, err := s.st.AddDevice(ctx, acc.ID, store.NewDevice{Name: r.DeviceName, TokenHash: hash, Created: s.nowMs()}, s.cfg.MaxDevices)
	if errors.Is(err, store.ErrTooManyDevices) {
		return api.DeviceCredential{}, newError(api.CodeTooManyDevices, "the account has %d devices already", s.cfg.MaxDevices)
	} else if err != nil {
		return api.DeviceCredential{}, s.internal("add device", err)
	}
	s.forget(Forget{Username: acc.Username})
	return api.DeviceCredential{AccountID: acc.ID, Username: acc.Username, DeviceID: dev.Ref.Device, Credential: credential(dev.Ref, secret)}, nil
}

// Login issues a new credential for an existing device; the old one stops
// working at once.
func (s *Server) Login(ctx context.Context, ip string, r api.Login) (api.DeviceCredential, error) {
	acc, err := s.checkLogin(ctx, ip, r.Username, r.Password)
	if err != nil {
		return api.DeviceCredential{}, err
	}
	ref := store.DeviceRef{Account: acc.ID, Device: r.DeviceID}
	secret, hash := newToken()
	if err := s.st.SetDeviceToken(ctx, ref, hash); errors.Is(err, store.ErrNotFound) {
		return api.DeviceCredential{}, errNoDevice
	} else if err != nil {
		return api.DeviceCredential{}, s.internal("set token", err)
	}
	s.forget(Forget{Device: &ref}) // a session on the old credential ends
	return api.DeviceCredential{AccountID: acc.ID, Username: acc.Username, DeviceID: ref.Device, Credential: credential(ref, secret)}, nil
}

// Account describes the caller's account.
func (s *Server) Account(ctx context.Context, p Principal) (api.Account, error) {
	acc, err := s.st.AccountByID(ctx, p.Account)
	if err != nil {
		return api.Account{}, s.internal("account", err)
	}
	out := api.Account{AccountID: acc.ID, Username: acc.Username, DisplayName: acc.DisplayName, DeviceID: p.Device, IdentityKey: acc.IdentityKey,
		AccountIdentityKey: acc.AccountIdentityKey}
	if acc.SecretDevice != 0 {
		out.SecretDeviceID = &acc.SecretDevice
	}
	return out, nil
}

// Devices lists the caller's devices.
func (s *Server) Devices(ctx context.Context, p Principal) (api.Devices, error) {
	acc, err := s.st.AccountByID(ctx, p.Account)
	if err != nil {
		return api.Devices{}, s.internal("account", err)
	}
	ds, err := s.st.Devices(ctx, p.Account)
	if err != nil {
		return api.Devices{}, s.internal("devices", err)
	}
	out := api.Devices{Devices: []api.Device{}}
	for _, d := range ds {
		out.Devices = append(out.Devices, api.Device{ID: d.Ref.Device, Name: d.Name, Secret: d.Ref.Device == acc.SecretDevice,
			Ordinary: d.OrdinaryRegistrationID != 0, Created: d.Created, LastSeen: d.LastSeen})
	}
	return out, nil
}

// RemoveDevice removes one of the caller's devices (possibly itself), with
// its keys (secret and ordinary) and mailbox.
func (s *Server) RemoveDevice(ctx context.Context, p Principal, device uint32) error {
	ref := store.DeviceRef{Account: p.Account, Device: device}
	if err := s.st.RemoveDevice(ctx, ref); errors.Is(err, store.ErrNotFound) {
		return errNoDevice
	} else if err != nil {
		return s.internal("remove device", err)
	}
	s.forget(Forget{Device: &ref, Username: p.Username})
	return nil
}

// MakeSecret makes the caller's device the secret device with a new
// identity key, removing the account's old prekeys.
func (s *Server) MakeSecret(ctx context.Context, p Principal, r api.MakeSecret) error {
	ik, err := key.ParseIdentityKey(r.IdentityKey)
	if err != nil {
		return badRequest("identityKey: %v", err)
	}
	if r.RegistrationID == 0 || r.RegistrationID > key.MaxRegistrationID {
		return badRequest("registrationId must be 1-%d", key.MaxRegistrationID)
	}
	var keys *store.Keys
	if r.Keys != nil {
		k, err := checkKeys(ik, *r.Keys)
		if err != nil {
			return err
		}
		keys = &k
	}
	if err := s.st.MakeSecretDevice(ctx, p.DeviceRef, ik.Bytes(), r.RegistrationID, keys); errors.Is(err, store.ErrNotFound) {
		return errNoDevice
	} else if err != nil {
		return s.internal("make secret device", err)
	}
	s.forget(Forget{Username: p.Username})
	s.log.Info("secret device changed", "account", p.Account, "device", p.Device)
	return nil
}

// Directory looks a person up by username.
func (s *Server) Directory(ctx context.Context, p Principal, username string) (api.DirectoryEntry, error) {
	if !s.limLookup.Allow(accountKey(p.Account), 1) {
		return api.DirectoryEntry{}, errRateLimited
	}
	if !ValidUsername(username) {
		return api.DirectoryEntry{}, errNoUser
	}
	acc, err := s.st.AccountByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return api.DirectoryEntry{}, errNoUser
	} else if err != nil {
		return api.DirectoryEntry{}, s.internal("directory", err)
	}
	ds, err := s.st.Devices(ctx, acc.ID)
	if err != nil {
		return api.DirectoryEntry{}, s.internal("directory", err)
	}
	e := api.DirectoryEntry{Username: acc.Username, DisplayName: acc.DisplayName, Devices: []api.PeerDevice{},
		AccountIdentityKey: acc.AccountIdentityKey}
	for _, d := range ds {
		e.Devices = append(e.Devices, api.PeerDevice{ID: d.Ref.Device, Secret: d.Ref.Device == acc.SecretDevice,
			Ordinary: d.OrdinaryRegistrationID != 0})
	}
	if acc.SecretDevice != 0 {
		e.SecretDeviceID = &acc.SecretDevice
		e.IdentityKey = acc.IdentityKey
		c, err := s.st.KeyCounts(ctx, store.DeviceRef{Account: acc.ID, Device: acc.SecretDevice})
		if err != nil {
			return api.DirectoryEntry{}, s.internal("directory", err)
		}
		e.CanReceiveSecret = c.SignedPreKeyID != nil && (c.KyberPreKeys > 0 || c.KyberLastResort != nil)
	}
	return e, nil
}

func accountKey(id int64) string { return strconv.FormatInt(id, 10) }

// addrKey is the rate-limit key of a client address: IPv4 /32, IPv6 /64
// (see ratelimit.AddrKey).
func addrKey(ip string) string {
	if k, ok := ratelimit.AddrKey(ip); ok {
		return k
	}
	return ip
}

// userEntry is what the user cache keeps per username for the send path.
// It is forgotten when the account's devices or identity change.
type userEntry struct {
	id       int64
	devices  map[uint32]bool
	secret   uint32 // the secret device, 0 if none
	identity []byte // its identity key
}

func (s *Server) lookupUser(ctx context.Context, username string) (*userEntry, error) {
	if e, ok := s.users.get(username); ok {
		return e, nil
	}
	if !ValidUsername(username) {
		return nil, errNoUser
	}
	t := s.users.ticket(username)
	acc, err := s.st.AccountByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoUser
	} else if err != nil {
		return nil, s.internal("lookup user", err)
	}
	ds, err := s.st.Devices(ctx, acc.ID)
	if err != nil {
		return nil, s.internal("lookup user", err)
	}
	e := &userEntry{id: acc.ID, devices: make(map[uint32]bool, len(ds)), secret: acc.SecretDevice, identity: acc.IdentityKey}
	for _, d := range ds {
		e.devices[d.Ref.Device] = true
	}
	s.users.fill(username, t, e)
	return e, nil
}

// blockedBy reports whether recipient blocks sender. The block cache
// holds, per recipient that was asked about, the set of accounts it blocks.
func (s *Server) blockedBy(ctx context.Context, recipient, sender int64) (bool, error) {
	set, ok := s.blocks.get(recipient)
	if !ok {
		t := s.blocks.ticket(recipient)
		ids, err := s.st.Blocked(ctx, recipient)
		if err != nil {
			return false, s.internal("blocks", err)
		}
		set = make(map[int64]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		s.blocks.fill(recipient, t, set)
	}
	return set[sender], nil
}

// Block makes the server drop what username sends to the caller.
func (s *Server) Block(ctx context.Context, p Principal, username string, block bool) error {
	if !s.limLookup.Allow(accountKey(p.Account), 1) {
		return errRateLimited
	}
	u, err := s.lookupUser(ctx, username)
	if err != nil {
		return err
	}
	if block {
		err = s.st.Block(ctx, p.Account, u.id)
	} else {
		err = s.st.Unblock(ctx, p.Account, u.id)
	}
	if err != nil {
		return s.internal("block", err)
	}
	// Drop the cached set: it is reloaded from the store on next use.
	s.forget(Forget{Blocker: p.Account})
	return nil
}

// Blocked lists the usernames the caller blocks.
func (s *Server) Blocked(ctx context.Context, p Principal) (api.Blocks, error) {
	ids, err := s.st.Blocked(ctx, p.Account)
	if err != nil {
		return api.Blocks{}, s.internal("blocks", err)
	}
	out := api.Blocks{Usernames: []string{}}
	for _, id := range ids {
		a, err := s.st.AccountByID(ctx, id)
		if err != nil {
			return api.Blocks{}, s.internal("blocks", err)
		}
		out.Usernames = append(out.Usernames, a.Username)
	}
	return out, nil
}
