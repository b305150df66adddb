package session

import (
	"errors"
	"fmt"

	"github.com/hushmsg/hush/key"
)

// ErrDecrypt is the one error of every failed decryption: a bad MAC, a
// message for a session we do not have, a malformed or replayed message.
// It says nothing about why, so that it gives an attacker no oracle; the
// reason, where useful to a developer, is only in errors.Is chains of
// sentinels that say nothing secret ([ErrDuplicate]).
var ErrDecrypt = errors.New("session: decryption failed")

// ErrDuplicate marks (in the chain of an [ErrDecrypt]) a message whose key
// was already used: a replay or a duplicate delivery, which a client may
// acknowledge and drop.
var ErrDuplicate = errors.New("session: duplicate message")

// ErrNoSession is returned by Encrypt when there is no usable session with
// the address (none, or an initiation left unanswered for 30 days).
var ErrNoSession = errors.New("session: no session")

// ErrBadSignature is returned by ProcessBundle when a prekey's signature
// does not verify with the bundle's identity key.
var ErrBadSignature = errors.New("session: bundle signature does not verify")

// ErrInvalidState is returned when a stored session record is damaged.
var ErrInvalidState = errors.New("session: invalid session state")

// UntrustedIdentityError is returned when the peer's identity key is not
// the one the identity store trusts for that address, typically because it
// changed (the peer moved to a new device or reinstalled). Known is the key
// the store holds, if any.
type UntrustedIdentityError struct {
	Address  Address
	Known    *key.IdentityKey
	Received key.IdentityKey
}

func (e *UntrustedIdentityError) Error() string {
	return fmt.Sprintf("session: untrusted identity key for %s", e.Address)
}

// decryptError wraps a cause for logs and tests while matching ErrDecrypt.
// Its message is always the same.
type decryptError struct{ cause error }

func (e *decryptError) Error() string        { return ErrDecrypt.Error() }
func (e *decryptError) Is(target error) bool { return target == ErrDecrypt }
func (e *decryptError) Unwrap() error        { return e.cause }

func failDecrypt(cause error) error {
	var d *decryptError
	if errors.As(cause, &d) {
		return cause
	}
	return &decryptError{cause}
}
