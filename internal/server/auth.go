package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/hushmsg/hush/internal/server/store"
)

// Principal is an authenticated device.
type Principal struct {
	store.DeviceRef
	Username string
}

// Device credentials are "<account>.<device>.<secret>" with a 32-byte random
// secret in unpadded base64url. The server stores SHA-256(secret) only: the
// secret has 256 bits of entropy, so a fast hash is enough, and every
// request can be checked without Argon2's cost.
const tokenSecretLen = 32

// newToken returns a credential's secret and the hash the server stores.
// The hash does not depend on the device's ids, so that a new device is
// written with its real hash in one commit, before the store picks them.
func newToken() (secret, hash []byte) {
	secret = randomBytes(tokenSecretLen)
	h := sha256.Sum256(secret)
	return secret, h[:]
}

// credential is the string a device presents.
func credential(ref store.DeviceRef, secret []byte) string {
	return fmt.Sprintf("%d.%d.%s", ref.Account, ref.Device, base64.RawURLEncoding.EncodeToString(secret))
}

func parseCredential(c string) (store.DeviceRef, [32]byte, bool) {
	var ref store.DeviceRef
	a, rest, ok1 := strings.Cut(c, ".")
	d, sec, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return ref, [32]byte{}, false
	}
	acct, err1 := strconv.ParseInt(a, 10, 64)
	dev, err2 := strconv.ParseUint(d, 10, 32)
	secret, err3 := base64.RawURLEncoding.DecodeString(sec)
	if err1 != nil || err2 != nil || err3 != nil || len(secret) != tokenSecretLen || acct <= 0 || dev == 0 {
		return ref, [32]byte{}, false
	}
	return store.DeviceRef{Account: acct, Device: uint32(dev)}, sha256.Sum256(secret), true
}

// authEntry is what the auth cache keeps per device that authenticated,
// so that each request costs no database read. It is forgotten when the
// credential changes or the device is removed.
type authEntry struct {
	hash     [32]byte
	username string
}

// Authenticate checks a device credential. Every failure is the same
// error, and the comparison takes constant time.
func (s *Server) Authenticate(ctx context.Context, credential string) (Principal, error) {
	ref, hash, ok := parseCredential(credential)
	if !ok {
		return Principal{}, errUnauthorized
	}
	e, hit := s.auth.get(ref)
	if !hit {
		t := s.auth.ticket(ref)
		d, err := s.st.Device(ctx, ref)
		if errors.Is(err, store.ErrNotFound) {
			// Compare anyway, so that an unknown device costs the same.
			subtle.ConstantTimeCompare(hash[:], make([]byte, 32))
			return Principal{}, errUnauthorized
		} else if err != nil {
			return Principal{}, s.internal("authenticate", err)
		}
		tn := s.names.ticket(ref.Account)
		a, err := s.st.AccountByID(ctx, ref.Account)
		if err != nil {
			return Principal{}, s.internal("authenticate", err)
		}
		copy(e.hash[:], d.TokenHash)
		e.username = a.Username
		s.auth.fill(ref, t, e)
		// The username for deliveries of this device's messages (username),
		// read here anyway: a pair's first message then needs one read less.
		s.names.fill(ref.Account, tn, a.Username)
	}
	if subtle.ConstantTimeCompare(hash[:], e.hash[:]) != 1 {
		return Principal{}, errUnauthorized
	}
	return Principal{DeviceRef: ref, Username: e.username}, nil
}

// Passwords are hashed with Argon2id and stored as
// "$argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<hash>" (unpadded
// standard base64), the usual PHC-style encoding.
func (s *Server) hashPassword(ctx context.Context, password string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashSem }()
	salt := randomBytes(16)
	t, m := s.cfg.Argon2Time, s.cfg.Argon2MemoryKiB
	h := argon2.IDKey([]byte(password), salt, t, m, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", m, t, enc.EncodeToString(salt), enc.EncodeToString(h)), nil
}

func (s *Server) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) checkPassword(ctx context.Context, encoded, password string) (bool, error) {
	var m, t uint32
	var p uint8
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return false, fmt.Errorf("malformed password hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("malformed password hash parameters")
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, fmt.Errorf("malformed password hash encoding")
	}
	if err := s.acquireHash(ctx); err != nil {
		return false, err
	}
	defer func() { <-s.hashSem }()
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
