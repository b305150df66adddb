package client

import (
	"context"
	"errors"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/key"
)

// This file: the recovery code (docs/multidevice.md section 3), for a
// person who lost every device.

// ErrWrongRecoveryCode: the code does not open the account's recovery
// blob. Nothing was created.
var ErrWrongRecoveryCode = errors.New("that recovery code does not open this account's history (mistyped, or an older code that was replaced): nothing was created")

// ErrNoRecovery: the account has no recovery blob on the server.
var ErrNoRecovery = errors.New("this account has no recovery code on the server: its history cannot be restored")

// NewRecoveryCode makes a new recovery code for the account, seals the
// account identity and the history keyring to it, and stores that blob on
// the server in place of the last one. It returns the code, which no device
// keeps: the person must write it down. When the account had a code
// already, a new history epoch comes first, so that the old code cannot
// read what is stored from now on.
func (c *Client) NewRecoveryCode(ctx context.Context) (history.RecoveryCode, error) {
	if c.st.AccountIdentity() == nil {
		return history.RecoveryCode{}, ErrNoAccountIdentity
	}
	old, err := c.st.Read().RecoveryPublic(ctx)
	if err != nil {
		return history.RecoveryCode{}, err
	}
	if old != nil {
		if err := c.RotateHistory(ctx); err != nil {
			return history.RecoveryCode{}, err
		}
	}
	code := history.NewRecoveryCode()
	pub := code.PublicKey()
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetRecoveryPublic(ctx, pub.Bytes()) }); err != nil {
		return history.RecoveryCode{}, err
	}
	if err := c.uploadRecovery(ctx); err != nil {
		return history.RecoveryCode{}, err
	}
	return code, nil
}

// uploadRecovery seals the account identity and the keyring as they are
// now to the recovery public key, and puts the blob on the server as the
// next version. Nothing when the account has no recovery code.
func (c *Client) uploadRecovery(ctx context.Context) error {
	r := c.st.Read()
	pb, err := r.RecoveryPublic(ctx)
	if err != nil || pb == nil {
		return err
	}
	pub, err := history.ParseRecoveryPublicKey(pb)
	if err != nil {
		return err
	}
	kr, err := c.keyring(ctx)
	if err != nil {
		return err
	}
	blob, err := history.SealRecovery(pub, &history.Account{Username: c.acct.Username, Identity: c.st.AccountIdentity(), History: kr})
	if err != nil {
		return err
	}
	v, err := r.RecoveryVersion(ctx)
	if err != nil {
		return err
	}
	// The server takes version n+1 only: another device may have uploaded
	// versions this one has not heard of, so step up until one is taken.
	for try := int64(1); ; try++ {
		err = c.apic().Do(ctx, "PUT", "/v1/recovery", api.Recovery{Version: v + try, Blob: blob}, nil)
		if err == nil {
			return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetRecoveryVersion(ctx, v+try) })
		}
		if !apiclient.IsCode(err, api.CodeConflict) || try >= 64 {
			return explain(err)
		}
	}
}

// RecoverParams are what Recover needs.
type RecoverParams struct {
	Server       string // https://HOST:PORT, or several (RegisterParams.Server)
	Fingerprint  string
	Username     string
	Password     string
	RecoveryCode string
	DeviceName   string
}

// Recover makes this home a new device of an account whose devices are
// all lost, with its password and recovery code: the code opens the
// recovery blob (the account identity and the history keyring) before
// anything is created, then the password adds the device, which publishes
// its ordinary keys and reads the history. A wrong code creates nothing.
func Recover(ctx context.Context, home string, p RecoverParams, o Options) (*Client, error) {
	o.defaults()
	p.Username = NormalizeUsername(p.Username)
	code, err := history.ParseRecoveryCode(p.RecoveryCode)
	if err != nil {
		return nil, &plainError{err, "history: "}
	}
	if err := CheckName("device name", p.DeviceName, api.MaxDeviceNameLen); err != nil {
		return nil, err
	}
	if p.Fingerprint == "" {
		return nil, errors.New("the server's certificate fingerprint is needed")
	}
	servers, err := ParseServers(p.Server)
	if err != nil {
		return nil, err
	}
	if err := checkFreeHome(home); err != nil {
		return nil, err
	}
	ac, err := apiclient.NewCluster(servers, apiclient.Options{Fingerprint: p.Fingerprint, Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	defer ac.CloseIdle()
	var rb api.Recovery
	err = ac.Do(ctx, "POST", "/v1/recovery/fetch", api.RecoveryFetch{Username: p.Username, Password: p.Password}, &rb)
	if apiclient.IsCode(err, api.CodeNotFound) {
		return nil, ErrNoRecovery
	} else if err != nil {
		return nil, explain(err)
	}
	acct, err := history.OpenRecovery(&code, p.Username, rb.Blob)
	if err != nil {
		return nil, ErrWrongRecoveryCode
	}
	pub := code.PublicKey()
	c, err := createHome(ctx, home, o, func(tx *store.Tx, secretIK *key.IdentityKeyPair, secretReg key.RegistrationID) error {
		cred, err := ac.AddDevice(ctx, api.AddDevice{Username: p.Username, Password: p.Password, DeviceName: p.DeviceName})
		if err != nil {
			return explain(err)
		}
		a := &store.Account{Servers: servers, Fingerprint: p.Fingerprint, Username: cred.Username,
			DeviceID: cred.DeviceID, Credential: cred.Credential, RegistrationID: secretReg}
		return errors.Join(tx.SetAccount(ctx, a, secretIK), tx.SetAccountIdentity(ctx, acct.Identity),
			tx.SetHistoryKeyring(ctx, acct.History.Marshal()), tx.SetRecoveryVersion(ctx, rb.Version),
			tx.SetRecoveryPublic(ctx, pub.Bytes()))
	})
	if err != nil {
		return nil, err
	}
	// The device exists now: what fails from here is reported, and the
	// next command finishes it.
	if err := c.EnsureOrdinary(ctx); err != nil {
		return c, err
	}
	if _, err := c.SyncHistory(ctx); err != nil {
		return c, err
	}
	return c, nil
}
