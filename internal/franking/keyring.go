package franking

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KeyringFile is the keyring's name in hushd's data folder.
const KeyringFile = "franking-keys"

// MaxKeys bounds a keyring, so that a damaged file cannot make hushd read
// without end.
const MaxKeys = 10000

// ServerKey is one tag key of the server.
type ServerKey struct {
	ID      uint32 // from 1, increasing
	Key     [ServerKeySize]byte
	Created int64 // Unix seconds
}

func (k ServerKey) String() string   { return fmt.Sprintf("franking-key(%d, redacted)", k.ID) }
func (k ServerKey) GoString() string { return k.String() }

// Keyring is the server's tag keys: the newest tags new messages, all of
// them verify reports (a message reported after a rotation carries the id
// of the key that tagged it). A Keyring is not changed once made; rotation
// makes a new one.
type Keyring struct {
	keys []ServerKey // by increasing id
}

// NewKeyring makes a keyring of one fresh key (id 1), in memory.
func NewKeyring() *Keyring {
	return (&Keyring{}).Rotated(time.Now())
}

// Current returns the key that tags new messages.
func (r *Keyring) Current() ServerKey { return r.keys[len(r.keys)-1] }

// Key returns the key with that id.
func (r *Keyring) Key(id uint32) (ServerKey, bool) {
	for _, k := range r.keys {
		if k.ID == id {
			return k, true
		}
	}
	return ServerKey{}, false
}

// Keys returns every key, by increasing id.
func (r *Keyring) Keys() []ServerKey { return append([]ServerKey(nil), r.keys...) }

// Rotated returns a keyring with a fresh key after r's, made at now.
func (r *Keyring) Rotated(now time.Time) *Keyring {
	k := ServerKey{ID: 1, Created: now.Unix()}
	if len(r.keys) > 0 {
		k.ID = r.Current().ID + 1
	}
	rand.Read(k.Key[:])
	return &Keyring{keys: append(append([]ServerKey(nil), r.keys...), k)}
}

// Marshal encodes the keyring as its file holds it: a comment line, then
// one line per key, "ID HEXKEY CREATED", by increasing id.
func (r *Keyring) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# hushd franking keys: id key created; the last one tags new messages. Keep secret; never edit.\n")
	for _, k := range r.keys {
		fmt.Fprintf(&b, "%d %s %d\n", k.ID, hex.EncodeToString(k.Key[:]), k.Created)
	}
	return b.Bytes()
}

// ParseKeyring decodes what Marshal writes. It refuses anything else:
// ids must increase from 1 by one (no key can go missing unnoticed), keys
// are 64 hex digits; lines starting with '#' are comments.
func ParseKeyring(b []byte) (*Keyring, error) {
	r := &Keyring{}
	for n, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, " ")
		bad := func(what string) error { return fmt.Errorf("franking keyring line %d: %s", n+1, what) }
		if len(f) != 3 {
			return nil, bad("want ID KEY CREATED")
		}
		id, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || id != uint64(len(r.keys))+1 {
			return nil, bad(fmt.Sprintf("id must be %d", len(r.keys)+1))
		}
		if len(r.keys) == MaxKeys {
			return nil, bad("too many keys")
		}
		k := ServerKey{ID: uint32(id)}
		if len(f[1]) != 2*ServerKeySize {
			return nil, bad("the key must be 64 hex digits")
		}
		if _, err := hex.Decode(k.Key[:], []byte(f[1])); err != nil {
			return nil, bad("the key must be 64 hex digits")
		}
		if k.Created, err = strconv.ParseInt(f[2], 10, 64); err != nil || k.Created < 0 {
			return nil, bad("created must be Unix seconds")
		}
		r.keys = append(r.keys, k)
	}
	if len(r.keys) == 0 {
		return nil, errors.New("franking keyring: no key")
	}
	return r, nil
}

// Load reads the keyring file at path.
func Load(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// LoadOrCreate reads the keyring file at path, making it with one fresh
// key if it does not exist.
func LoadOrCreate(path string) (*Keyring, error) {
	r, err := Load(path)
	if errors.Is(err, os.ErrNotExist) {
		r = NewKeyring()
		if err := Save(path, r); err != nil {
			return nil, err
		}
		return r, nil
	}
	return r, err
}

// Save writes r to path atomically (a temporary file renamed over it,
// fsynced), readable by its owner only.
func Save(path string, r *Keyring) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".franking-keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err == nil {
		if _, err = f.Write(r.Marshal()); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return err
		}
	} else {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Rotate adds a fresh key to the keyring file at path (made if missing)
// and returns the new keyring.
func Rotate(path string, now time.Time) (*Keyring, error) {
	r, err := Load(path)
	if errors.Is(err, os.ErrNotExist) {
		r = &Keyring{}
	} else if err != nil {
		return nil, err
	}
	r = r.Rotated(now)
	return r, Save(path, r)
}
