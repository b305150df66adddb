package spqr

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Chain defaults (src/chain.rs DEFAULT_CHAIN_PARAMS; libsignal consts
// MAX_FORWARD_JUMPS and MAX_MESSAGE_KEYS).
const (
	DefaultMaxJump    = 25_000
	DefaultMaxOOOKeys = 2_000

	// maxOOOKeysLimit is the crate's standing assumption max_ooo < 390451572
	// (src/chain.rs hax assumes), enforced here as a parameter check.
	maxOOOKeysLimit = 390451571

	// keyRecordSize is one stored out-of-order key: BE32(index) || key.
	keyRecordSize = 4 + 32

	// epochsToKeepPriorToSendEpoch is EPOCHS_TO_KEEP_PRIOR_TO_SEND_EPOCH.
	epochsToKeepPriorToSendEpoch = 1
)

// resolved returns the parameters with zero fields replaced by the defaults
// (ChainParamsPB::max_jump_or_default, max_ooo_keys_or_default).
func (p ChainParams) resolved() ChainParams {
	if p.MaxJump == 0 {
		p.MaxJump = DefaultMaxJump
	}
	if p.MaxOOOKeys == 0 {
		p.MaxOOOKeys = DefaultMaxOOOKeys
	}
	return p
}

// trimSize is ChainParamsPB::trim_size: the key-history length (in records)
// at which garbage collection runs.
func (p ChainParams) trimSize() int {
	return int(p.MaxOOOKeys)*11/10 + 1
}

// chainDir is src/chain.rs ChainEpochDirection: one direction of one epoch.
// prev holds skipped keys as records BE32(index) || key, in strictly
// increasing index order. It is shared between states and never modified in
// place: every change builds a new slice.
type chainDir struct {
	ctr     uint32
	next    [32]byte
	hasNext bool // false once wiped (send halves of epochs before the send epoch)
	prev    []byte
}

// chainEpoch is src/chain.rs ChainEpoch.
type chainEpoch struct {
	send, recv chainDir
}

// chain is src/chain.rs Chain. links[len-1] is currentEpoch.
type chain struct {
	dir          Direction
	currentEpoch uint64
	sendEpoch    uint64
	links        []chainEpoch
	nextRoot     [32]byte
	params       ChainParams // resolved
}

// clone copies the chain so that the copy can be changed; key histories are
// shared (they are copy-on-write).
func (c *chain) clone() *chain {
	n := *c
	n.links = append([]chainEpoch(nil), c.links...)
	return &n
}

// epochFromKDF splits a 96-byte HKDF output: next_root, then the A2B and
// B2A chain seeds (Chain::ced_for_direction).
func epochFromKDF(out []byte, dir Direction) (root [32]byte, e chainEpoch) {
	copy(root[:], out[:32])
	a2b, b2a := out[32:64], out[64:96]
	sendSeed, recvSeed := a2b, b2a
	if dir == B2A {
		sendSeed, recvSeed = b2a, a2b
	}
	copy(e.send.next[:], sendSeed)
	copy(e.recv.next[:], recvSeed)
	e.send.hasNext, e.recv.hasNext = true, true
	return root, e
}

// newChain is Chain::new: HKDF(0^32, auth_key, "…Chain  Start", 96) gives
// chain epoch 0.
func newChain(authKey []byte, dir Direction, params ChainParams) *chain {
	out := kdf(zeroSalt, authKey, labelChainStart, 96)
	root, e := epochFromKDF(out, dir)
	return &chain{
		dir:      dir,
		links:    []chainEpoch{e},
		nextRoot: root,
		params:   params.resolved(),
	}
}

// addEpoch is Chain::add_epoch: HKDF(next_root, K_e, "…Chain Add Epoch", 96).
// The crate asserts epoch == current_epoch + 1; here a violation is an error.
func (c *chain) addEpoch(epoch uint64, secret []byte) error {
	if c.currentEpoch == math.MaxUint64 || epoch != c.currentEpoch+1 {
		return errEpoch(epoch)
	}
	out := kdf(c.nextRoot[:], secret, labelChainAddEpoch, 96)
	root, e := epochFromKDF(out, c.dir)
	c.currentEpoch = epoch
	c.nextRoot = root
	c.links = append(c.links, e)
	return nil
}

// epochIdx is Chain::epoch_idx: the position of epoch in links.
func (c *chain) epochIdx(epoch uint64) (int, error) {
	if epoch > c.currentEpoch {
		return 0, errEpoch(epoch)
	}
	back := c.currentEpoch - epoch
	if back >= uint64(len(c.links)) {
		return 0, errEpoch(epoch)
	}
	return len(c.links) - 1 - int(back), nil
}

// step is ChainEpochDirection::next_key_internal: ctr += 1, then
// HKDF(0^32, next, BE32(ctr) || "…Chain Next", 64) = next' || key.
func (d *chainDir) step() (uint32, [32]byte) {
	d.ctr++
	out := kdf(zeroSalt, d.next[:], be32(d.ctr)+labelChainNext, 64)
	copy(d.next[:], out[:32])
	var k [32]byte
	copy(k[:], out[32:])
	return d.ctr, k
}

// sendKey is Chain::send_key.
func (c *chain) sendKey(epoch uint64) (uint32, [32]byte, error) {
	if epoch < c.sendEpoch {
		return 0, [32]byte{}, fmt.Errorf("%w (%d -> %d)", ErrSendKeyEpochDecreased, c.sendEpoch, epoch)
	}
	idx, err := c.epochIdx(epoch)
	if err != nil {
		return 0, [32]byte{}, err
	}
	if c.sendEpoch != epoch {
		c.sendEpoch = epoch
		for idx > epochsToKeepPriorToSendEpoch {
			c.links = c.links[1:]
			idx--
		}
		for i := 0; i < idx; i++ {
			c.links[i].send.next = [32]byte{}
			c.links[i].send.hasNext = false
		}
	}
	d := &c.links[idx].send
	if !d.hasNext || d.ctr == math.MaxUint32 {
		return 0, [32]byte{}, ErrChainNotAvailable
	}
	i, k := d.step()
	return i, k, nil
}

// recvKey is Chain::recv_key.
func (c *chain) recvKey(epoch uint64, at uint32) ([32]byte, error) {
	idx, err := c.epochIdx(epoch)
	if err != nil {
		return [32]byte{}, err
	}
	return c.links[idx].recv.key(at, c.params)
}

// key is ChainEpochDirection::key.
func (d *chainDir) key(at uint32, p ChainParams) ([32]byte, error) {
	var zero [32]byte
	if !d.hasNext {
		return zero, ErrChainNotAvailable
	}
	maxOOO := uint64(p.MaxOOOKeys)
	switch {
	case at == d.ctr:
		return zero, fmt.Errorf("%w: %d", ErrKeyAlreadyRequested, at)
	case at < d.ctr:
		return d.takeOld(at, p)
	case at-d.ctr > p.MaxJump:
		return zero, fmt.Errorf("%w: %d - %d", ErrKeyJump, d.ctr, at)
	}
	prev := d.prev
	if uint64(at) > uint64(d.ctr)+maxOOO {
		// Every held key is about to become obsolete.
		prev = nil
	}
	// Derive forward to at-1, keeping skipped keys that would survive.
	grown := false
	for at > d.ctr+1 {
		i, k := d.step()
		if uint64(i)+maxOOO >= uint64(at) {
			if !grown {
				// Copy before appending: prev may be shared with another state.
				hint := min(uint64(at-i), maxOOO+1, 4096)
				prev = append(make([]byte, 0, len(prev)+keyRecordSize*int(hint)), prev...)
				grown = true
			}
			prev = binary.BigEndian.AppendUint32(prev, i)
			prev = append(prev, k[:]...)
		}
	}
	d.prev = gcHistory(prev, d.ctr, p)
	_, k := d.step()
	return k, nil
}

// gcHistory is KeyHistory::gc: once the history holds trim_size records,
// drop those with index below ctr - max_ooo. It returns a new slice when it
// removes anything.
func gcHistory(prev []byte, ctr uint32, p ChainParams) []byte {
	if len(prev) < p.trimSize()*keyRecordSize {
		return prev
	}
	var horizon uint32
	if ctr > p.MaxOOOKeys {
		horizon = ctr - p.MaxOOOKeys
	}
	out := make([]byte, 0, len(prev))
	for i := 0; i < len(prev); i += keyRecordSize {
		if binary.BigEndian.Uint32(prev[i:]) >= horizon {
			out = append(out, prev[i:i+keyRecordSize]...)
		}
	}
	return out
}

// takeOld is KeyHistory::get: fetch and delete the stored key for at < ctr.
func (d *chainDir) takeOld(at uint32, p ChainParams) ([32]byte, error) {
	var k [32]byte
	if uint64(at)+uint64(p.MaxOOOKeys) < uint64(d.ctr) {
		return k, fmt.Errorf("%w: %d", ErrKeyTrimmed, at)
	}
	// Records are sorted by index: binary search.
	n := len(d.prev) / keyRecordSize
	lo, hi := 0, n
	for lo < hi {
		m := (lo + hi) / 2
		if binary.BigEndian.Uint32(d.prev[m*keyRecordSize:]) < at {
			lo = m + 1
		} else {
			hi = m
		}
	}
	off := lo * keyRecordSize
	if lo == n || binary.BigEndian.Uint32(d.prev[off:]) != at {
		return k, fmt.Errorf("%w: %d", ErrKeyAlreadyRequested, at)
	}
	copy(k[:], d.prev[off+4:off+keyRecordSize])
	out := make([]byte, 0, len(d.prev)-keyRecordSize)
	out = append(out, d.prev[:off]...)
	out = append(out, d.prev[off+keyRecordSize:]...)
	d.prev = out
	return k, nil
}
