package session

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/hushmsg/hush/key"
)

// Address names one device of one account: libsignal's ProtocolAddress.
type Address struct {
	Name   string
	Device key.DeviceID
}

func (a Address) String() string { return fmt.Sprintf("%s.%d", a.Name, a.Device) }

// serviceID returns the 17-byte fixed-width service id of a.Name when it is
// a Signal-style service id ("<uuid>" for an ACI, "PNI:<uuid>" for a PNI;
// libsignal rust/core/src/address.rs), or false.
func (a Address) serviceID() ([17]byte, bool) {
	var out [17]byte
	s := a.Name
	if rest, ok := strings.CutPrefix(s, "PNI:"); ok {
		out[0], s = 1, rest
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return out, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(out[1:], []byte(h)); err != nil {
		return out, false
	}
	return out, true
}

// addressesField is the 36-byte SignalMessage.addresses value that binds a
// message to its sender and recipient devices (libsignal
// SignalMessage::serialize_addresses, since v0.91), or nil when either name
// is not a service id.
func addressesField(sender, recipient Address) []byte {
	s, ok1 := sender.serviceID()
	r, ok2 := recipient.serviceID()
	if !ok1 || !ok2 || sender.Device > 0xff || recipient.Device > 0xff {
		return nil
	}
	b := make([]byte, 0, 36)
	b = append(append(b, s[:]...), byte(sender.Device))
	return append(append(b, r[:]...), byte(recipient.Device))
}

// sameAccount is libsignal's IdentityKey::is_same_account: the identities
// are equal and both addresses are the same service id. Sessions with
// oneself lift the forward-jump limits.
func sameAccount(local Address, localKey key.IdentityKey, remote Address, remoteKey key.IdentityKey) bool {
	if localKey != remoteKey {
		return false
	}
	a, ok1 := local.serviceID()
	b, ok2 := remote.serviceID()
	return ok1 && ok2 && a == b
}
