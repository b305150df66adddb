package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/key"
)

// maxKeyID is the largest prekey id; libsignal's ids are 24 bits.
const maxKeyID = 0xffffff

// keyBatch is a set of freshly made prekeys: what is uploaded and what is
// kept.
type keyBatch struct {
	upload     api.KeyUpload
	ec         []*key.PreKey
	kyber      []*key.KyberPreKey
	signed     *key.SignedPreKey
	lastResort *key.KyberPreKey
}

// keySpace is one key space's prekeys as MaintainKeys keeps them stocked
// (docs/multidevice.md, "What each device holds"): the secret space (the
// secret identity, GET and PUT /v1/keys, secret device only) or the
// ordinary one (the account identity, GET and PUT /v1/ordinary/keys, every
// device that holds the account identity).
type keySpace struct {
	space store.Space
	// meta is the prefix of the space's meta keys: id counters and the
	// times of the last look and rotation.
	meta     string
	identity func() *key.IdentityKeyPair
	counts   func(context.Context) (api.KeyCounts, error)
	upload   func(context.Context, api.KeyUpload) error
}

func (c *Client) secretSpace() *keySpace {
	return &keySpace{space: store.SecretSpace, meta: "", identity: c.st.Identity,
		counts: func(ctx context.Context) (api.KeyCounts, error) { return c.apic().KeyCounts(ctx) },
		upload: func(ctx context.Context, k api.KeyUpload) error { return c.apic().UploadKeys(ctx, k) }}
}

// ordinaryMeta is the prefix of the ordinary key space's meta keys.
const ordinaryMeta = "o_"

func (c *Client) ordinarySpace() *keySpace {
	return &keySpace{space: store.OrdinarySpace, meta: ordinaryMeta, identity: c.st.AccountIdentity,
		counts: c.ordinaryKeyCounts, upload: c.uploadOrdinaryKeys}
}

// nextIDs takes n consecutive ids of a kind from the store's counter.
func nextIDs(ctx context.Context, tx *store.Tx, counter string, n int) ([]uint32, error) {
	next, err := tx.MetaInt(ctx, counter, 1)
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, n)
	for i := range ids {
		if next < 1 || next > maxKeyID {
			next = 1
		}
		ids[i] = uint32(next)
		next++
	}
	return ids, tx.SetMetaInt(ctx, counter, next)
}

// makeKeys draws keys for identity and stores them in tx, in the key
// space ks: nEC one-time EC keys, nKyber one-time Kyber keys, and a signed
// and a last-resort key if asked.
func makeKeys(ctx context.Context, tx *store.Tx, ks *keySpace, ik *key.IdentityKeyPair, nEC, nKyber int, signed, lastResort bool) (*keyBatch, error) {
	b := &keyBatch{}
	now := tx.Now
	ids, err := nextIDs(ctx, tx, ks.meta+"next_prekey_id", nEC)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		k, err := key.GeneratePreKey(rand.Reader, key.PreKeyID(id))
		if err != nil {
			return nil, err
		}
		b.ec = append(b.ec, k)
		b.upload.PreKeys = append(b.upload.PreKeys, api.PreKey{KeyID: id, PublicKey: k.KeyPair.Public.Bytes()})
	}
	n := nKyber
	if lastResort {
		n++
	}
	if ids, err = nextIDs(ctx, tx, ks.meta+"next_kyber_id", n); err != nil {
		return nil, err
	}
	for i, id := range ids {
		k, err := key.GenerateKyberPreKey(rand.Reader, key.KyberPreKeyID(id), ik, now)
		if err != nil {
			return nil, err
		}
		sk := api.SignedKey{KeyID: id, PublicKey: k.KeyPair.Public.Bytes(), Signature: k.Signature}
		if lastResort && i == len(ids)-1 {
			b.lastResort = k
			b.upload.KyberLastResort = &sk
		} else {
			b.kyber = append(b.kyber, k)
			b.upload.KyberPreKeys = append(b.upload.KyberPreKeys, sk)
		}
	}
	if signed {
		if ids, err = nextIDs(ctx, tx, ks.meta+"next_signed_id", 1); err != nil {
			return nil, err
		}
		k, err := key.GenerateSignedPreKey(rand.Reader, key.SignedPreKeyID(ids[0]), ik, now)
		if err != nil {
			return nil, err
		}
		b.signed = k
		b.upload.SignedPreKey = &api.SignedKey{KeyID: ids[0], PublicKey: k.KeyPair.Public.Bytes(), Signature: k.Signature}
	}
	keys := tx.Keys(ks.space)
	if err := keys.StorePreKeys(ctx, b.ec); err != nil {
		return nil, err
	}
	if err := keys.StoreKyberPreKeys(ctx, b.kyber, false); err != nil {
		return nil, err
	}
	if b.lastResort != nil {
		if err := keys.StoreKyberPreKeys(ctx, []*key.KyberPreKey{b.lastResort}, true); err != nil {
			return nil, err
		}
	}
	if b.signed != nil {
		if err := keys.StoreSignedPreKey(ctx, b.signed); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// MakeSecret makes this device the account's secret device: a new
// identity key and registration id, new prekeys, published in one request
// (the server drops the account's old prekeys). Sessions made under the
// old identity are archived; peers see a changed safety number. If a
// previous call was interrupted after the server took the new identity,
// that identity is used again.
func (c *Client) MakeSecret(ctx context.Context) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	ik, reg, err := c.st.Read().PendingIdentity(ctx)
	if err != nil {
		return err
	}
	fresh := ik == nil
	if fresh {
		if ik, err = key.GenerateIdentityKeyPair(rand.Reader); err != nil {
			return err
		}
		for reg == 0 || reg == c.acct.RegistrationID {
			if reg, err = key.GenerateRegistrationID(rand.Reader); err != nil {
				return err
			}
		}
	}
	// The new keys are kept before they are published; those of the old
	// identity are deleted once the server has switched.
	var batch *keyBatch
	var made time.Time
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		made = tx.Now
		if fresh {
			if err := tx.SetPendingIdentity(ctx, ik, reg); err != nil {
				return err
			}
		}
		var err error
		batch, err = makeKeys(ctx, tx, c.secretSpace(), ik, c.opts.PreKeys, c.opts.PreKeys, true, true)
		return err
	})
	if err != nil {
		return err
	}
	if err := c.apic().MakeSecret(ctx, api.MakeSecret{RegistrationID: uint32(reg), IdentityKey: ik.Public.Bytes(), Keys: &batch.upload}); err != nil {
		return explain(err)
	}
	acct := *c.acct
	acct.RegistrationID = reg
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeletePreKeysBefore(ctx, made); err != nil {
			return err
		}
		if err := tx.SetAccount(ctx, &acct, ik); err != nil {
			return err
		}
		if err := tx.ArchiveAllSessions(ctx); err != nil {
			return err
		}
		if err := tx.SetPendingIdentity(ctx, nil, 0); err != nil {
			return err
		}
		if err := tx.SetMetaInt(ctx, "secret", 1); err != nil {
			return err
		}
		if err := tx.SetMetaInt(ctx, "rotated_at", tx.Now.UnixMilli()); err != nil {
			return err
		}
		return tx.SetMetaInt(ctx, "keys_checked_at", tx.Now.UnixMilli())
	})
	if err != nil {
		return err
	}
	c.acct = c.st.Account()
	return nil
}

// SpaceReport says what MaintainKeys did in one key space.
type SpaceReport struct {
	Checked     bool // the server's counts were fetched
	UploadedEC  int
	UploadedKEM int
	Rotated     bool
}

// KeyReport says what MaintainKeys did: in the secret space (the embedded
// report) and in the ordinary one.
type KeyReport struct {
	SpaceReport
	Ordinary SpaceReport
}

// MaintainKeys keeps the prekeys on the server stocked, in each key space
// this device takes part in (the secret one on the secret device, the
// ordinary one on a device that holds the account identity): it uploads a
// new set of one-time EC or Kyber keys when fewer than PreKeysLow are
// left, replaces the signed and last-resort keys every RotateEvery, and
// deletes keys replaced more than KeepRetired ago. It looks at the server
// at most every CheckKeysEvery unless force is set.
func (c *Client) MaintainKeys(ctx context.Context, force bool) (KeyReport, error) {
	var rep KeyReport
	var errs []error
	if secret, err := c.IsSecret(ctx); err != nil {
		return rep, err
	} else if secret {
		rep.SpaceReport, err = c.maintainSpace(ctx, c.secretSpace(), force)
		errs = append(errs, err)
	}
	if ready, err := c.ordinaryReady(ctx); err != nil {
		errs = append(errs, err)
	} else if ready {
		rep.Ordinary, err = c.maintainSpace(ctx, c.ordinarySpace(), force)
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

func (c *Client) maintainSpace(ctx context.Context, ks *keySpace, force bool) (SpaceReport, error) {
	var rep SpaceReport
	r := c.st.Read()
	now := time.Now()
	checked, err := r.MetaInt(ctx, ks.meta+"keys_checked_at", 0)
	if err != nil {
		return rep, err
	}
	if !force && now.Sub(time.UnixMilli(checked)) < c.opts.CheckKeysEvery {
		return rep, nil
	}
	counts, err := ks.counts(ctx)
	if err != nil {
		return rep, explain(err)
	}
	rep.Checked = true
	rotated, err := r.MetaInt(ctx, ks.meta+"rotated_at", 0)
	if err != nil {
		return rep, err
	}
	nEC, nKEM := 0, 0
	if counts.PreKeys < c.opts.PreKeysLow {
		nEC = c.opts.PreKeys
	}
	if counts.KyberPreKeys < c.opts.PreKeysLow {
		nKEM = c.opts.PreKeys
	}
	rotate := counts.SignedPreKeyID == nil || counts.KyberLastResort == nil || now.Sub(time.UnixMilli(rotated)) >= c.opts.RotateEvery
	var batch *keyBatch
	var made time.Time
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		made = tx.Now
		if nEC+nKEM > 0 || rotate {
			var err error
			if batch, err = makeKeys(ctx, tx, ks, ks.identity(), nEC, nKEM, rotate, rotate); err != nil {
				return err
			}
		}
		if err := tx.Keys(ks.space).DeleteRetired(ctx, tx.Now.Add(-c.opts.KeepRetired)); err != nil {
			return err
		}
		return tx.SetMetaInt(ctx, ks.meta+"keys_checked_at", tx.Now.UnixMilli())
	})
	if err != nil || batch == nil {
		return rep, err
	}
	// The server replaces each kind present in the upload: what it had of
	// that kind is retired here, but kept for messages already on their way.
	if err := ks.upload(ctx, batch.upload); err != nil {
		return rep, explain(err)
	}
	rep.UploadedEC, rep.UploadedKEM, rep.Rotated = len(batch.ec), len(batch.kyber), rotate
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		keys := tx.Keys(ks.space)
		if nEC > 0 {
			if err := keys.RetirePreKeys(ctx, store.OneTimeEC, made); err != nil {
				return err
			}
		}
		if nKEM > 0 {
			if err := keys.RetirePreKeys(ctx, store.OneTimeKyber, made); err != nil {
				return err
			}
		}
		if rotate {
			if err := keys.RetirePreKeys(ctx, store.Signed, made); err != nil {
				return err
			}
			if err := keys.RetirePreKeys(ctx, store.LastResortKyber, made); err != nil {
				return err
			}
			if err := tx.SetMetaInt(ctx, ks.meta+"rotated_at", tx.Now.UnixMilli()); err != nil {
				return err
			}
		}
		return keys.DeleteRetired(ctx, tx.Now.Add(-c.opts.KeepRetired))
	})
	if err != nil {
		return rep, fmt.Errorf("recording uploaded keys: %w", err)
	}
	return rep, nil
}
