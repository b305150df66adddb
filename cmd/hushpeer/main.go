// Command hushpeer is hush's Signal Protocol peer for interoperability
// tests. It follows the command-line contract that the libsignal peers
// follow (docs/interop.md): all state in one JSON file, one JSON object
// on stdout, exit 0 on success, 1 on a protocol error (one line on stderr)
// and 2 on a usage error. A failed call leaves the state file as it was.
//
//	hushpeer init    --state S --name NAME [--device N] [--no-prekey] [--no-kyber] [--pq-ratchet on|off|offered]
//	hushpeer bundle  --state S
//	hushpeer start   --state S --peer NAME --bundle FILE|- [--pq-ratchet on|off|offered]
//	hushpeer encrypt --state S --peer NAME [--peer-device N] (--text T | --plaintext B64 | stdin JSON)
//	hushpeer decrypt --state S --peer NAME [--peer-device N] (--type T --body B64 | stdin JSON) [--pq-ratchet on|off|offered]
//	hushpeer group-distribution --state S --group UUID
//	hushpeer group-process --state S --peer NAME [--peer-device N] --distribution B64
//	hushpeer group-encrypt --state S --group UUID (--text T | --plaintext B64 | stdin JSON)
//	hushpeer group-decrypt --state S --peer NAME [--peer-device N] (--body B64 | stdin JSON)
//	hushpeer info
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// usageError exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	out, err := run(os.Args[1:], os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hushpeer: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
	b, _ := json.Marshal(out)
	os.Stdout.Write(append(b, '\n'))
}

const usage = `usage: hushpeer init|bundle|start|encrypt|decrypt|group-distribution|group-process|group-encrypt|group-decrypt|info [flags]
see docs/interop.md for the contract`

// pqModes maps --pq-ratchet to the session's SPQR mode. "on" runs SPQR and
// requires it of the peer (libsignal >= 0.92); "off" runs none (libsignal
// before 0.74); "offered", an extension of the contract, runs SPQR but falls
// back to none for a peer that sends none (libsignal 0.74 to 0.91).
var pqModes = map[string]session.PQRatchetMode{
	"on":      session.PQRequired,
	"offered": session.PQOffered,
	"off":     session.PQOff,
}

// pqFlag holds --pq-ratchet.
type pqFlag struct{ v string }

func (p *pqFlag) String() string { return p.v }
func (p *pqFlag) Set(s string) error {
	switch s {
	case "on", "off", "offered":
		p.v = s
		return nil
	}
	return fmt.Errorf("want on or off, got %q", s)
}

func run(args []string, stdin io.Reader) (any, error) {
	if len(args) == 0 {
		return nil, usagef("%s", usage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	statePath := fs.String("state", "", "state file")
	name := fs.String("name", "", "this party's name (init)")
	device := fs.Uint("device", 1, "this party's device id (init)")
	noPreKey := fs.Bool("no-prekey", false, "publish no one-time prekey (init)")
	noKyber := fs.Bool("no-kyber", false, "publish no Kyber prekey (init)")
	peer := fs.String("peer", "", "the peer's name")
	peerDevice := fs.Uint("peer-device", 1, "the peer's device id")
	bundlePath := fs.String("bundle", "", "the peer's bundle: a file or - for stdin (start)")
	text := fs.String("text", "", "plaintext as UTF-8 (encrypt)")
	plaintext := fs.String("plaintext", "", "plaintext as base64 (encrypt)")
	msgType := fs.Int("type", 0, "message type 2 or 3 (decrypt)")
	body := fs.String("body", "", "message as base64 (decrypt, group-decrypt)")
	group := fs.String("group", "", "the group's distribution id, a UUID (group-distribution, group-encrypt)")
	distribution := fs.String("distribution", "", "a distribution message as base64 (group-process)")
	var pq pqFlag
	fs.Var(&pq, "pq-ratchet", "on or off: run SPQR")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, usagef("%s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("%s: unexpected argument %q", cmd, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cmd == "info" {
		return map[string]any{"implementation": "hush", "x3dh": true, "pqxdh": true,
			"pqRatchet": "selectable", "spqrMinVersion": "V1 (on), V0 (offered)", "groups": true}, nil
	}
	if *statePath == "" {
		return nil, usagef("%s: --state is required", cmd)
	}
	ctx := context.Background()
	if cmd == "init" {
		if *name == "" {
			return nil, usagef("init: --name is required")
		}
		st, err := initState(*name, uint32(*device), !*noPreKey, !*noKyber, pq.v)
		if err != nil {
			return nil, err
		}
		if err := st.save(*statePath); err != nil {
			return nil, err
		}
		return st.bundle(ctx)
	}

	st, err := loadState(*statePath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usagef("state file %s does not exist (run init first)", *statePath)
		}
		return nil, err
	}
	if cmd == "bundle" {
		return st.bundle(ctx)
	}
	if g, ok := groupCalls[cmd]; ok {
		out, err := g(ctx, st, groupArgs{
			set: set, group: *group, peer: *peer, peerDevice: *peerDevice, distribution: *distribution,
			text: *text, plain: *plaintext, body: *body, stdin: stdin,
		})
		if err != nil {
			return nil, err
		}
		if err := st.save(*statePath); err != nil {
			return nil, err
		}
		return out, nil
	}
	if *peer == "" {
		return nil, usagef("%s: --peer is required", cmd)
	}
	mode := st.PQRatchet
	if pq.v != "" {
		mode = pq.v
	}
	c := &session.Cipher{
		Store:     st,
		Local:     session.Address{Name: st.Name, Device: key.DeviceID(st.DeviceID)},
		AllowX3DH: true,
		PQRatchet: pqModes[mode],
	}
	remote := session.Address{Name: *peer, Device: key.DeviceID(*peerDevice)}

	var out any
	switch cmd {
	case "start":
		if *bundlePath == "" {
			return nil, usagef("start: --bundle FILE or - is required")
		}
		var raw []byte
		if *bundlePath == "-" {
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(*bundlePath)
		}
		if err != nil {
			return nil, usagef("start: reading the bundle: %v", err)
		}
		var b session.Bundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
		remote.Device = b.DeviceID
		if err := c.ProcessBundle(ctx, remote, &b); err != nil {
			return nil, err
		}
		out = map[string]any{"ok": true, "peer": remote.String()}
	case "encrypt":
		pt, err := readPlaintext(cmd, set, *text, *plaintext, stdin)
		if err != nil {
			return nil, err
		}
		ct, err := c.Encrypt(ctx, remote, pt)
		if err != nil {
			return nil, err
		}
		out = map[string]any{"type": ct.Type, "body": base64.StdEncoding.EncodeToString(ct.Body)}
	case "decrypt":
		t, b64 := *msgType, *body
		if !set["type"] || !set["body"] {
			var in struct {
				Type int    `json:"type"`
				Body string `json:"body"`
			}
			if err := json.NewDecoder(stdin).Decode(&in); err != nil {
				return nil, usagef("decrypt: need --type and --body or stdin JSON: %v", err)
			}
			t, b64 = in.Type, in.Body
		}
		if t != session.TypeSignal && t != session.TypePreKey {
			return nil, usagef("decrypt: message type %d (want 2 or 3)", t)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, usagef("decrypt: body is not base64: %v", err)
		}
		pt, err := c.Decrypt(ctx, remote, t, raw)
		if err != nil {
			return nil, err
		}
		out = decryptedOutput(pt)
	default:
		return nil, usagef("unknown command %q\n%s", cmd, usage)
	}
	if err := st.save(*statePath); err != nil {
		return nil, err
	}
	return out, nil
}

// readPlaintext takes the plaintext from --text, --plaintext (base64) or
// stdin JSON {"text"} or {"plaintext"}.
func readPlaintext(cmd string, set map[string]bool, text, plaintext string, stdin io.Reader) ([]byte, error) {
	switch {
	case set["text"]:
		return []byte(text), nil
	case set["plaintext"]:
		pt, err := base64.StdEncoding.DecodeString(plaintext)
		if err != nil {
			return nil, usagef("%s: --plaintext is not base64: %v", cmd, err)
		}
		return pt, nil
	}
	var in struct {
		Text      *string `json:"text"`
		Plaintext *string `json:"plaintext"`
	}
	if err := json.NewDecoder(stdin).Decode(&in); err != nil {
		return nil, usagef("%s: need --text, --plaintext or stdin JSON: %v", cmd, err)
	}
	switch {
	case in.Plaintext != nil:
		pt, err := base64.StdEncoding.DecodeString(*in.Plaintext)
		if err != nil {
			return nil, usagef("%s: plaintext is not base64: %v", cmd, err)
		}
		return pt, nil
	case in.Text != nil:
		return []byte(*in.Text), nil
	}
	return nil, usagef("%s: stdin JSON needs text or plaintext", cmd)
}

// decryptedOutput is the output of decrypt and group-decrypt: "text" is
// null when the plaintext is not UTF-8.
func decryptedOutput(pt []byte) map[string]any {
	var text any
	if utf8.Valid(pt) {
		text = string(pt)
	}
	return map[string]any{"text": text, "plaintext": base64.StdEncoding.EncodeToString(pt)}
}

func initState(name string, device uint32, withPreKey, withKyber bool, pq string) (*peerState, error) {
	id, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		return nil, err
	}
	reg, err := key.GenerateRegistrationID(rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	spk, err := key.GenerateSignedPreKey(rand.Reader, 1, id, now)
	if err != nil {
		return nil, err
	}
	kpk, err := key.GenerateKyberPreKey(rand.Reader, 1, id, now)
	if err != nil {
		return nil, err
	}
	if pq == "" {
		pq = "on"
	}
	st := &peerState{
		Name: name, DeviceID: device, RegistrationID: uint32(reg), PQRatchet: pq,
		PreKeys: map[string][]byte{}, SignedPreKeys: map[string][]byte{}, KyberPreKeys: map[string][]byte{},
		KyberUsed: map[string][]string{}, Identities: map[string][]byte{}, Sessions: map[string][]byte{},
		SenderKeys: map[string][]byte{},
		identity:   id,
	}
	if st.IdentityPair, err = id.MarshalBinary(); err != nil {
		return nil, err
	}
	st.Bundle.SignedPreKeyID = 1
	if st.SignedPreKeys["1"], err = spk.MarshalBinary(); err != nil {
		return nil, err
	}
	// The Kyber key is made even with --no-kyber, as the libsignal peers do;
	// it is just not published.
	if st.KyberPreKeys["1"], err = kpk.MarshalBinary(); err != nil {
		return nil, err
	}
	if withKyber {
		one := uint32(1)
		st.Bundle.KyberPreKeyID = &one
	}
	if withPreKey {
		pk, err := key.GeneratePreKey(rand.Reader, 1)
		if err != nil {
			return nil, err
		}
		if st.PreKeys["1"], err = pk.MarshalBinary(); err != nil {
			return nil, err
		}
		one := uint32(1)
		st.Bundle.PreKeyID = &one
	}
	return st, nil
}

// bundle builds the public bundle from the keys the state publishes.
func (s *peerState) bundle(ctx context.Context) (*session.Bundle, error) {
	spk, err := s.LoadSignedPreKey(ctx, key.SignedPreKeyID(s.Bundle.SignedPreKeyID))
	if err != nil {
		return nil, err
	}
	b := &session.Bundle{
		RegistrationID:        key.RegistrationID(s.RegistrationID),
		DeviceID:              key.DeviceID(s.DeviceID),
		IdentityKey:           s.identity.Public,
		SignedPreKeyID:        spk.ID,
		SignedPreKey:          spk.KeyPair.Public,
		SignedPreKeySignature: spk.Signature,
	}
	if s.Bundle.PreKeyID != nil {
		if pk, err := s.LoadPreKey(ctx, key.PreKeyID(*s.Bundle.PreKeyID)); err == nil {
			b.PreKeyID, b.PreKey = &pk.ID, &pk.KeyPair.Public
		}
	}
	if s.Bundle.KyberPreKeyID != nil {
		kpk, err := s.LoadKyberPreKey(ctx, key.KyberPreKeyID(*s.Bundle.KyberPreKeyID))
		if err != nil {
			return nil, err
		}
		b.KyberPreKeyID, b.KyberPreKey, b.KyberPreKeySignature = &kpk.ID, kpk.KeyPair.Public, kpk.Signature
	}
	return b, nil
}
