package spqr

import (
	"errors"
	"fmt"
)

// Errors mirror the crate's Error enum (src/lib.rs). Functions wrap them
// with non-secret detail (epoch numbers, chain indices); test with
// errors.Is. No error carries key material.
var (
	// ErrStateDecode: a serialized state is malformed (Error::StateDecode).
	ErrStateDecode = errors.New("spqr: state decode failed")
	// ErrMsgDecode: the SPQR message bytes are malformed (Error::MsgDecode).
	ErrMsgDecode = errors.New("spqr: message decode failed")
	// ErrMacVerifyFailed: a header or ciphertext MAC did not verify
	// (Error::MacVerifyFailed).
	ErrMacVerifyFailed = errors.New("spqr: MAC verification failed")
	// ErrEpochOutOfRange: a message or key epoch is not acceptable in the
	// current state (Error::EpochOutOfRange).
	ErrEpochOutOfRange = errors.New("spqr: epoch not in valid range")
	// ErrVersionMismatch: the peer sent a lower version after negotiation
	// had finished (Error::VersionMismatch).
	ErrVersionMismatch = errors.New("spqr: version mismatch after negotiation")
	// ErrMinimumVersion: the peer's version is below our minimum
	// (Error::MinimumVersion).
	ErrMinimumVersion = errors.New("spqr: peer version below minimum")
	// ErrKeyJump: the message index is more than MaxJump ahead
	// (Error::KeyJump).
	ErrKeyJump = errors.New("spqr: key jump too large")
	// ErrKeyTrimmed: the message is older than the kept out-of-order keys
	// (Error::KeyTrimmed).
	ErrKeyTrimmed = errors.New("spqr: key trimmed")
	// ErrKeyAlreadyRequested: the key for this index was already used
	// (Error::KeyAlreadyRequested).
	ErrKeyAlreadyRequested = errors.New("spqr: key already requested")
	// ErrErroneousDataReceived: the peer's encapsulation key does not match
	// its authenticated header (Error::ErroneousDataReceived).
	ErrErroneousDataReceived = errors.New("spqr: erroneous data received from peer")
	// ErrSendKeyEpochDecreased: internal consistency failure
	// (Error::SendKeyEpochDecreased).
	ErrSendKeyEpochDecreased = errors.New("spqr: send key epoch decreased")
	// ErrInvalidParams: NewState was given unusable parameters
	// (Error::InvalidParams).
	ErrInvalidParams = errors.New("spqr: invalid params")
	// ErrChainNotAvailable: the state has neither a chain nor the data to
	// make one (Error::ChainNotAvailable).
	ErrChainNotAvailable = errors.New("spqr: chain not available")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("spqr: random source failed")
)

func errEpoch(epoch uint64) error {
	return fmt.Errorf("%w: %d", ErrEpochOutOfRange, epoch)
}
