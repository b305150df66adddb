package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/session"
)

// The four group calls of the contract (docs/interop.md, "Groups (Sender
// Keys)"), on senderkey.Cipher with the state file as its store.

// groupArgs are the flags the group calls read.
type groupArgs struct {
	set                                    map[string]bool
	group, peer, distribution, text, plain string
	body                                   string
	peerDevice                             uint
	stdin                                  io.Reader
}

var groupCalls = map[string]func(context.Context, *peerState, groupArgs) (any, error){
	"group-distribution": groupDistribution,
	"group-process":      groupProcess,
	"group-encrypt":      groupEncrypt,
	"group-decrypt":      groupDecrypt,
}

func (s *peerState) groupCipher() *senderkey.Cipher {
	return &senderkey.Cipher{Store: s, Local: session.Address{Name: s.Name, Device: key.DeviceID(s.DeviceID)}}
}

// groupID reads --group: a UUID, or exit 2.
func groupID(cmd, s string) (senderkey.DistributionID, error) {
	if s == "" {
		return senderkey.DistributionID{}, usagef("%s: --group UUID is required", cmd)
	}
	id, err := senderkey.ParseDistributionID(s)
	if err != nil {
		return id, usagef("%s: --group: %v", cmd, err)
	}
	return id, nil
}

// groupPeer reads --peer and --peer-device.
func groupPeer(cmd string, a groupArgs) (session.Address, error) {
	if a.peer == "" {
		return session.Address{}, usagef("%s: --peer is required", cmd)
	}
	return session.Address{Name: a.peer, Device: key.DeviceID(a.peerDevice)}, nil
}

func groupDistribution(ctx context.Context, st *peerState, a groupArgs) (any, error) {
	id, err := groupID("group-distribution", a.group)
	if err != nil {
		return nil, err
	}
	d, err := st.groupCipher().Distribution(ctx, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"distribution": base64.StdEncoding.EncodeToString(d.Bytes())}, nil
}

func groupProcess(ctx context.Context, st *peerState, a groupArgs) (any, error) {
	sender, err := groupPeer("group-process", a)
	if err != nil {
		return nil, err
	}
	if !a.set["distribution"] {
		return nil, usagef("group-process: --distribution B64 is required")
	}
	raw, err := base64.StdEncoding.DecodeString(a.distribution)
	if err != nil {
		return nil, usagef("group-process: --distribution is not base64: %v", err)
	}
	d, err := senderkey.ParseDistributionMessage(raw)
	if err != nil {
		return nil, fmt.Errorf("group-process: %w", err)
	}
	if err := st.groupCipher().Process(ctx, sender, d); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func groupEncrypt(ctx context.Context, st *peerState, a groupArgs) (any, error) {
	id, err := groupID("group-encrypt", a.group)
	if err != nil {
		return nil, err
	}
	pt, err := readPlaintext("group-encrypt", a.set, a.text, a.plain, a.stdin)
	if err != nil {
		return nil, err
	}
	m, err := st.groupCipher().Encrypt(ctx, id, pt)
	if err != nil {
		return nil, fmt.Errorf("group-encrypt: %w", err)
	}
	return map[string]any{"type": senderkey.TypeSenderKey, "body": base64.StdEncoding.EncodeToString(m.Bytes())}, nil
}

func groupDecrypt(ctx context.Context, st *peerState, a groupArgs) (any, error) {
	sender, err := groupPeer("group-decrypt", a)
	if err != nil {
		return nil, err
	}
	b64 := a.body
	if !a.set["body"] {
		var in struct {
			Type *int   `json:"type"`
			Body string `json:"body"`
		}
		if err := json.NewDecoder(a.stdin).Decode(&in); err != nil {
			return nil, usagef("group-decrypt: need --body or stdin JSON: %v", err)
		}
		if in.Type != nil && *in.Type != senderkey.TypeSenderKey {
			return nil, usagef("group-decrypt takes SenderKey messages (type 7), got type %d", *in.Type)
		}
		b64 = in.Body
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, usagef("group-decrypt: body is not base64: %v", err)
	}
	pt, err := st.groupCipher().Decrypt(ctx, sender, raw)
	switch {
	case errors.Is(err, senderkey.ErrNoSenderKey):
		return nil, fmt.Errorf("group-decrypt: %w (no sender key from %s for this distribution and chain)", err, sender)
	case errors.Is(err, senderkey.ErrDuplicate):
		return nil, fmt.Errorf("group-decrypt: %w (duplicate message)", err)
	case err != nil:
		return nil, fmt.Errorf("group-decrypt: %w", err)
	}
	return decryptedOutput(pt), nil
}
