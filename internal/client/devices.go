package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/internal/link"
	"github.com/hushmsg/hush/key"
)

// This file: linking a device from a device (docs/multidevice.md section
// 2). The old device runs [Client.OfferLink] and [LinkOffer.Complete]; the
// new one [LinkWithCode]. The cryptography is package link's; the server
// only relays.

// Errors of linking a person may see.
var (
	// ErrNoSuchLink: the code names no open link: mistyped, used already,
	// or expired.
	ErrNoSuchLink = errors.New("no such link code: it was mistyped, used already, or it expired")
	// ErrLinkExpired: the link expired before a new device completed it.
	ErrLinkExpired = errors.New("the link code expired before a new device used it")
	// ErrLinkTampered: what came back through the server was not made with
	// the code; nothing was sent or saved.
	ErrLinkTampered = errors.New("the link was tampered with on its way through the server: nothing was sent or saved")
)

// Both sides of a link look at its state every linkPollFast for the first
// linkFastFor, when the other side is most likely busy with it too, then
// every linkPoll: within the server's limit (a burst of 60, then one a
// second per link), and a link completes in well under a second when both
// people are at their devices.
const (
	linkPollFast = 200 * time.Millisecond
	linkFastFor  = 10 * time.Second
	linkPoll     = time.Second
)

// linkPoller paces the looks.
type linkPoller struct{ start time.Time }

func (p *linkPoller) wait(ctx context.Context) error {
	d := linkPoll
	if time.Since(p.start) < linkFastFor {
		d = linkPollFast
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LinkOffer is a link opened by an existing device, waiting for a new one.
type LinkOffer struct {
	Code      link.Code
	ExpiresAt time.Time
	c         *Client
}

// OfferLink opens a link for a new device of this account, valid for
// expiresIn (0: 5 minutes; at most 10), and returns its code, to show to
// the person. [LinkOffer.Complete] then waits for the new device.
func (c *Client) OfferLink(ctx context.Context, expiresIn time.Duration) (*LinkOffer, error) {
	if c.st.AccountIdentity() == nil {
		return nil, ErrNoAccountIdentity
	}
	if expiresIn <= 0 {
		expiresIn = 5 * time.Minute
	}
	if expiresIn > api.MaxLinkExpiresIn*time.Second {
		return nil, fmt.Errorf("a link code lasts at most %v", api.MaxLinkExpiresIn*time.Second)
	}
	if _, err := c.keyring(ctx); err != nil {
		return nil, err
	}
	code := link.NewCode()
	id, claim := code.ID(), code.Claim()
	hash := claim.Hash()
	secs := int64((expiresIn + time.Second - 1) / time.Second)
	err := c.apic().Do(ctx, "POST", "/v1/links", api.NewLink{ID: id.Bytes(), ClaimHash: hash.Bytes(), ExpiresIn: secs}, nil)
	if err != nil {
		return nil, explain(err)
	}
	return &LinkOffer{Code: code, ExpiresAt: time.Now().Add(expiresIn), c: c}, nil
}

// Complete waits for the new device: it checks its hello, sends it the
// provisioning box (the account identity, the history keyring, the
// contacts' account keys), and returns the new device's number once the
// server has made it. It gives up at the link's expiry, or when ctx ends.
func (o *LinkOffer) Complete(ctx context.Context) (uint32, error) {
	c := o.c
	path := "/v1/links/" + o.Code.ID().String()
	ctx, cancel := context.WithDeadline(ctx, o.ExpiresAt.Add(5*time.Second))
	defer cancel()
	poll := linkPoller{start: time.Now()}
	boxed := false
	for {
		var st api.LinkState
		err := c.apic().Do(ctx, "GET", path, nil, &st)
		switch {
		case apiclient.IsCode(err, api.CodeNotFound):
			return 0, ErrLinkExpired
		case err != nil && ctx.Err() != nil:
			if time.Now().After(o.ExpiresAt) {
				return 0, ErrLinkExpired
			}
			return 0, ctx.Err()
		case err != nil:
			return 0, explain(err)
		}
		switch st.State {
		case api.LinkHelloed:
			if boxed {
				break
			}
			en, err := link.CheckHello(&o.Code, st.Ephemeral, st.MAC)
			if err != nil {
				// Nothing goes to whoever sent that: the link is closed.
				_ = c.apic().Do(ctx, "DELETE", path, nil, nil)
				return 0, ErrLinkTampered
			}
			b, err := c.provisioningBox(ctx)
			if err != nil {
				return 0, err
			}
			eo, sealed, err := link.Seal(&o.Code, en, b)
			if err != nil {
				return 0, err
			}
			if err := c.apic().Do(ctx, "PUT", path+"/box", api.LinkBox{Ephemeral: eo.Bytes(), Box: sealed}, nil); err != nil {
				return 0, explain(err)
			}
			boxed = true
		case api.LinkDone:
			return st.DeviceID, nil
		}
		if err := poll.wait(ctx); err != nil {
			if time.Now().After(o.ExpiresAt) {
				return 0, ErrLinkExpired
			}
			return 0, err
		}
	}
}

// provisioningBox gathers what a new device needs.
func (c *Client) provisioningBox(ctx context.Context) (*link.Box, error) {
	kr, err := c.keyring(ctx)
	if err != nil {
		return nil, err
	}
	r := c.st.Read()
	contacts, err := r.OrdinaryContacts(ctx)
	if err != nil {
		return nil, err
	}
	if len(contacts) > link.MaxContacts {
		contacts = contacts[:link.MaxContacts]
	}
	v, err := r.RecoveryVersion(ctx)
	if err != nil {
		return nil, err
	}
	b := &link.Box{Username: c.acct.Username, Identity: c.st.AccountIdentity(), History: kr, RecoveryBlobVersion: v}
	for _, ct := range contacts {
		b.Contacts = append(b.Contacts, link.Contact{Name: ct.Name, Identity: ct.Identity})
	}
	return b, nil
}

// keyring returns the account's history keyring, making the first one if
// this device has none (an account made before history existed).
func (c *Client) keyring(ctx context.Context) (*history.Keyring, error) {
	b, err := c.st.Read().HistoryKeyring(ctx)
	if err != nil {
		return nil, err
	}
	if b != nil {
		return history.ParseKeyring(b)
	}
	kr := history.NewKeyring(time.Now())
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetHistoryKeyring(ctx, kr.Marshal()) }); err != nil {
		return nil, err
	}
	return kr, nil
}

// LinkParams are what LinkWithCode needs.
type LinkParams struct {
	Server      string // https://HOST:PORT, or several (RegisterParams.Server)
	Fingerprint string // hex SHA-256 of the server's certificate
	Code        string // as the old device shows it
	DeviceName  string
	// Waiting, if set, is called once the server took the hello, while
	// the other device seals the box.
	Waiting func()
}

// LinkWithCode makes this home a new device of the account whose device
// showed code: it says hello through the server, waits for the
// provisioning box, opens it, and has the server make the device with
// ordinary prekeys signed by the account identity from the box. Nothing is
// left in home unless it all succeeds. It gives up when ctx ends.
func LinkWithCode(ctx context.Context, home string, p LinkParams, o Options) (*Client, error) {
	o.defaults()
	code, err := link.ParseCode(p.Code)
	if err != nil {
		return nil, &plainError{err, "link: "}
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
	j, err := link.NewJoiner(&code)
	if err != nil {
		return nil, err
	}
	claim := code.Claim()
	path := "/v1/links/" + code.ID().String()
	h := j.Hello()
	err = ac.Do(ctx, "POST", path+"/hello", api.LinkHello{Claim: claim.Bytes(), Ephemeral: h.Ephemeral.Bytes(), MAC: h.MAC[:]}, nil)
	if apiclient.IsCode(err, api.CodeNotFound) || apiclient.IsCode(err, api.CodeLinkUsed) {
		return nil, ErrNoSuchLink
	} else if err != nil {
		return nil, explain(err)
	}
	if p.Waiting != nil {
		p.Waiting()
	}
	// The old device checks the hello and seals the box.
	var lb api.LinkBox
	poll := linkPoller{start: time.Now()}
	for {
		err := ac.Do(ctx, "POST", path+"/box", api.LinkClaim{Claim: claim.Bytes()}, &lb)
		if err == nil {
			break
		}
		var ae *apiclient.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeNotReady {
			if apiclient.IsCode(err, api.CodeNotFound) {
				return nil, ErrLinkExpired
			}
			return nil, explain(err)
		}
		if err := poll.wait(ctx); err != nil {
			return nil, err
		}
	}
	box, err := j.Open(lb.Ephemeral, lb.Box)
	if err != nil {
		return nil, ErrLinkTampered
	}
	reg, err := key.GenerateRegistrationID(rand.Reader)
	if err != nil {
		return nil, err
	}
	// One transaction: the keys are made and kept, the server makes the
	// device with them, and only then does it commit. A refusal rolls it
	// all back.
	return createHome(ctx, home, o, func(tx *store.Tx, secretIK *key.IdentityKeyPair, secretReg key.RegistrationID) error {
		batch, err := makeKeys(ctx, tx, &keySpace{space: store.OrdinarySpace, meta: ordinaryMeta}, box.Identity, o.PreKeys, o.PreKeys, true, true)
		if err != nil {
			return err
		}
		var cred api.DeviceCredential
		err = ac.Do(ctx, "POST", path+"/device", api.LinkDevice{Claim: claim.Bytes(), DeviceName: p.DeviceName,
			Keys: api.OrdinaryKeyUpload{RegistrationID: uint32(reg), KeyUpload: batch.upload}}, &cred)
		if apiclient.IsCode(err, api.CodeNotFound) {
			return ErrLinkExpired
		} else if err != nil {
			return explain(err)
		}
		acct := &store.Account{Servers: servers, Fingerprint: p.Fingerprint, Username: cred.Username,
			DeviceID: cred.DeviceID, Credential: cred.Credential, RegistrationID: secretReg}
		if err := tx.SetAccount(ctx, acct, secretIK); err != nil {
			return err
		}
		if err := tx.SetAccountIdentity(ctx, box.Identity); err != nil {
			return err
		}
		if err := tx.SetOrdinaryRegistrationID(ctx, reg); err != nil {
			return err
		}
		if err := tx.SetHistoryKeyring(ctx, box.History.Marshal()); err != nil {
			return err
		}
		if err := tx.SetRecoveryVersion(ctx, box.RecoveryBlobVersion); err != nil {
			return err
		}
		for _, ct := range box.Contacts {
			if err := tx.SetAccountIdentityOf(ctx, ct.Name, ct.Identity); err != nil {
				return err
			}
		}
		// Its keys are new: the first look at the server's counts and the
		// first rotation are a period away.
		for _, k := range []string{ordinaryMeta + "keys_checked_at", ordinaryMeta + "rotated_at"} {
			if err := tx.SetMetaInt(ctx, k, tx.Now.UnixMilli()); err != nil {
				return err
			}
		}
		return tx.SetMetaInt(ctx, metaOrdinaryReady, 1)
	})
}

// checkFreeHome refuses a home that holds an account already, before any
// request is made for a new one.
func checkFreeHome(home string) error {
	if _, err := os.Stat(filepath.Join(home, store.DBFile)); err == nil {
		return ErrRegistered
	}
	return nil
}

// createHome makes the store of a new device in home and runs fill in one
// transaction with it: fill has the server make the device and records it
// (SetAccount, with the placeholder secret identity and registration id it
// is given). If anything fails, nothing is left in home.
func createHome(ctx context.Context, home string, o Options, fill func(tx *store.Tx, secretIK *key.IdentityKeyPair, secretReg key.RegistrationID) error) (*Client, error) {
	_, err := os.Stat(home)
	created := errors.Is(err, os.ErrNotExist)
	st, err := openNew(ctx, home, o)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Client, error) {
		st.Close()
		removeNewHome(home, created)
		return nil, err
	}
	secretIK, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		return fail(err)
	}
	secretReg, err := key.GenerateRegistrationID(rand.Reader)
	if err != nil {
		return fail(err)
	}
	if err := st.Update(ctx, func(tx *store.Tx) error { return fill(tx, secretIK, secretReg) }); err != nil {
		return fail(err)
	}
	a := st.Account()
	writeServerHint(st.Home(), a.Server, a.Fingerprint, a.Servers)
	c, err := newClient(st, a, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	return c, nil
}

// removeNewHome removes what openNew made in a home that a failed link
// leaves unused: the folder itself if it did not exist before, else the
// store's files.
func removeNewHome(home string, created bool) {
	if created {
		os.RemoveAll(home)
		return
	}
	for _, f := range []string{store.DBFile, store.DBFile + "-wal", store.DBFile + "-shm", "key", serverHint} {
		os.Remove(filepath.Join(home, f))
	}
}

// plainError is an error of a package that a person reads without the
// package's name ("link: not a link code" is "not a link code"), and that
// still unwraps to it.
type plainError struct {
	err    error
	prefix string
}

func (e *plainError) Error() string { return strings.TrimPrefix(e.err.Error(), e.prefix) }
func (e *plainError) Unwrap() error { return e.err }
