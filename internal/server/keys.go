package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/key"
)

func errBadSignature(what string) *Error {
	return newError(api.CodeBadSignature, "%s: signature does not verify with the identity key", what)
}

func checkSignedEC(ik key.IdentityKey, sk *api.SignedKey, what string) (*store.SignedKey, error) {
	pk, err := key.ParseECPublic(sk.PublicKey)
	if err != nil {
		return nil, badRequest("%s: %v", what, err)
	}
	if !ik.Verify(sk.Signature, pk.Bytes()) {
		return nil, errBadSignature(what)
	}
	return &store.SignedKey{ID: sk.KeyID, PublicKey: pk.Bytes(), Signature: sk.Signature}, nil
}

func checkSignedKEM(ik key.IdentityKey, sk *api.SignedKey, what string) (*store.SignedKey, error) {
	pk, err := key.ParseKEMPublic(sk.PublicKey)
	if err != nil {
		return nil, badRequest("%s: %v", what, err)
	}
	if !ik.Verify(sk.Signature, pk.Bytes()) {
		return nil, errBadSignature(what)
	}
	return &store.SignedKey{ID: sk.KeyID, PublicKey: pk.Bytes(), Signature: sk.Signature}, nil
}

// checkUploadShape checks what needs no key: that the upload has keys,
// and not too many.
func checkUploadShape(u api.KeyUpload) error {
	if u.SignedPreKey == nil && len(u.PreKeys) == 0 && len(u.KyberPreKeys) == 0 && u.KyberLastResort == nil {
		return badRequest("the upload has no keys")
	}
	if len(u.PreKeys) > api.MaxKeysPerUpload || len(u.KyberPreKeys) > api.MaxKeysPerUpload {
		return badRequest("at most %d one-time keys of each kind per upload", api.MaxKeysPerUpload)
	}
	return nil
}

// checkKeys parses every key of an upload and verifies every signature
// against ik, refusing the whole upload on the first problem.
func checkKeys(ik key.IdentityKey, u api.KeyUpload) (store.Keys, error) {
	var k store.Keys
	var err error
	if err := checkUploadShape(u); err != nil {
		return k, err
	}
	if u.SignedPreKey != nil {
		if k.SignedPreKey, err = checkSignedEC(ik, u.SignedPreKey, "signedPreKey"); err != nil {
			return k, err
		}
	}
	if u.KyberLastResort != nil {
		if k.KyberLastResort, err = checkSignedKEM(ik, u.KyberLastResort, "kyberLastResort"); err != nil {
			return k, err
		}
	}
	seen := make(map[uint32]bool)
	for i, p := range u.PreKeys {
		pk, err := key.ParseECPublic(p.PublicKey)
		if err != nil {
			return k, badRequest("preKeys[%d]: %v", i, err)
		}
		if seen[p.KeyID] {
			return k, badRequest("preKeys[%d]: key id %d repeated", i, p.KeyID)
		}
		seen[p.KeyID] = true
		k.PreKeys = append(k.PreKeys, store.PreKey{ID: p.KeyID, PublicKey: pk.Bytes()})
	}
	clear(seen)
	for i := range u.KyberPreKeys {
		what := fmt.Sprintf("kyberPreKeys[%d]", i)
		sk, err := checkSignedKEM(ik, &u.KyberPreKeys[i], what)
		if err != nil {
			return k, err
		}
		if seen[sk.ID] {
			return k, badRequest("%s: key id %d repeated", what, sk.ID)
		}
		seen[sk.ID] = true
		k.KyberPreKeys = append(k.KyberPreKeys, *sk)
	}
	return k, nil
}

var errNotSecret = newError(api.CodeNotSecretDevice, "only the secret device has prekeys; make this device the secret device first")

// UploadKeys stores the caller's prekeys; the caller must be the secret
// device, and every signature must verify with the account's identity key.
func (s *Server) UploadKeys(ctx context.Context, p Principal, u api.KeyUpload) error {
	acc, err := s.st.AccountByID(ctx, p.Account)
	if err != nil {
		return s.internal("upload keys", err)
	}
	if acc.SecretDevice != p.Device {
		return errNotSecret
	}
	ik, err := key.ParseIdentityKey(acc.IdentityKey)
	if err != nil {
		return s.internal("upload keys: stored identity key", err)
	}
	k, err := checkKeys(ik, u)
	if err != nil {
		return err
	}
	// The store checks again, in the transaction, that p is still the
	// secret device: a concurrent MakeSecret must not get our keys.
	if err := s.st.SetKeys(ctx, p.DeviceRef, k); errors.Is(err, store.ErrNotSecretDevice) {
		return errNotSecret
	} else if err != nil {
		return s.internal("upload keys", err)
	}
	return nil
}

// KeyCounts tells the caller how many one-time keys it has left.
func (s *Server) KeyCounts(ctx context.Context, p Principal) (api.KeyCounts, error) {
	c, err := s.st.KeyCounts(ctx, p.DeviceRef)
	if err != nil {
		return api.KeyCounts{}, s.internal("key counts", err)
	}
	return api.KeyCounts{PreKeys: c.PreKeys, KyberPreKeys: c.KyberPreKeys, SignedPreKeyID: c.SignedPreKeyID, KyberLastResort: c.KyberLastResort}, nil
}

// FetchBundle hands out a prekey bundle of username's secret device
// (device 0: whichever it is), consuming one-time keys. It is rate limited
// per requester, per requester and target, and per target (so that many
// throwaway accounts cannot drain a person's one-time keys).
func (s *Server) FetchBundle(ctx context.Context, p Principal, username string, device uint32) (api.Bundle, error) {
	// Every fetch is charged before the username is looked up, keyed by
	// the name asked for, so that a missing person costs what an existing
	// one does and answers alike once the budget is spent.
	req := accountKey(p.Account)
	if !s.limBundleUser.Allow(req, 1) {
		return api.Bundle{}, errRateLimited
	}
	if !ValidUsername(username) {
		return api.Bundle{}, errNoUser
	}
	if !s.limBundlePair.Allow(req+">"+username, 1) || !s.limBundleTarget.Allow(username, 1) {
		return api.Bundle{}, errRateLimited
	}
	u, err := s.lookupUser(ctx, username)
	if err != nil {
		return api.Bundle{}, err
	}
	if device == 0 {
		acc, err := s.st.AccountByID(ctx, u.id)
		if err != nil {
			return api.Bundle{}, s.internal("fetch bundle", err)
		}
		if acc.SecretDevice == 0 {
			return api.Bundle{}, newError(api.CodeNotFound, "%s has no secret device", username)
		}
		device = acc.SecretDevice
	}
	b, err := s.st.TakeBundle(ctx, store.DeviceRef{Account: u.id, Device: device})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return api.Bundle{}, newError(api.CodeNotFound, "device %d of %s is not a secret device", device, username)
	case errors.Is(err, store.ErrNoKeys):
		return api.Bundle{}, newError(api.CodeNotFound, "%s has not published prekeys", username)
	case err != nil:
		return api.Bundle{}, s.internal("fetch bundle", err)
	}
	s.m.bundles.Inc()
	// Tell the owner's client to replenish before the one-time keys run
	// out (the fetch limits slow a drain; this refills behind it).
	ref := store.DeviceRef{Account: u.id, Device: b.Device}
	if c, err := s.st.KeyCounts(ctx, ref); err == nil && (c.PreKeys < api.KeysLowMark || c.KyberPreKeys < api.KeysLowMark) {
		s.hub.keysLow(ref)
	}
	return toAPIBundle(b), nil
}
