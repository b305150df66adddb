package spqr

import (
	"errors"
	"testing"
)

// sendKeys returns the first n keys of the A2B epoch-0 chain (index i at [i]).
func sendKeys(t *testing.T, ak []byte, n int) [][32]byte {
	t.Helper()
	c := newChain(ak, A2B, ChainParams{})
	out := make([][32]byte, n+1)
	for i := 1; i <= n; i++ {
		idx, k, err := c.sendKey(0)
		if err != nil || int(idx) != i {
			t.Fatal("sendKey", idx, err)
		}
		out[i] = k
	}
	return out
}

func TestChainOutOfOrder(t *testing.T) {
	ak := seq(32)
	want := sendKeys(t, ak, 40)
	c := newChain(ak, B2A, ChainParams{})
	for _, at := range []uint32{5, 3, 1, 2, 4, 9, 6, 8, 7, 40, 20} {
		snapshot := c.clone()
		k, err := c.recvKey(0, at)
		if err != nil || k != want[at] {
			t.Fatalf("recvKey(%d): %v", at, err)
		}
		// The snapshot taken before is unaffected (copy-on-write history).
		if at < snapshot.links[0].recv.ctr {
			if k2, err := snapshot.recvKey(0, at); err != nil || k2 != k {
				t.Fatalf("snapshot lost key %d: %v", at, err)
			}
		}
	}
	for _, at := range []uint32{3, 40, 20, 1} {
		if _, err := c.recvKey(0, at); !errors.Is(err, ErrKeyAlreadyRequested) {
			t.Fatalf("duplicate %d: %v", at, err)
		}
	}
	if _, err := c.recvKey(1, 1); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("future epoch: %v", err)
	}
}

func TestChainJumpLimit(t *testing.T) {
	ak := seq(32)
	c := newChain(ak, B2A, ChainParams{MaxJump: 100, MaxOOOKeys: 10})
	if _, err := c.recvKey(0, 101); !errors.Is(err, ErrKeyJump) {
		t.Fatalf("jump 101: %v", err)
	}
	want := sendKeys(t, ak, 100)
	if k, err := c.recvKey(0, 100); err != nil || k != want[100] {
		t.Fatalf("jump of exactly MaxJump: %v", err)
	}
	if _, err := c.recvKey(0, 201); !errors.Is(err, ErrKeyJump) {
		t.Fatalf("second jump: %v", err)
	}
}

func TestChainTrimming(t *testing.T) {
	ak := seq(32)
	want := sendKeys(t, ak, 40)
	p := ChainParams{MaxOOOKeys: 10} // trim size 12
	c := newChain(ak, B2A, p)
	get := func(at uint32) error {
		k, err := c.recvKey(0, at)
		if err == nil && k != want[at] {
			t.Fatalf("wrong key %d", at)
		}
		return err
	}
	if get(1) != nil {
		t.Fatal()
	}
	// Jump from 1 to 30: only keys 20..29 are worth keeping.
	if get(30) != nil {
		t.Fatal()
	}
	if n := len(c.links[0].recv.prev) / keyRecordSize; n != 10 {
		t.Fatalf("%d keys kept, want 10", n)
	}
	if err := get(19); !errors.Is(err, ErrKeyTrimmed) {
		t.Fatalf("19: %v", err)
	}
	if err := get(15); !errors.Is(err, ErrKeyTrimmed) {
		t.Fatalf("15: %v", err)
	}
	if get(20) != nil || get(29) != nil {
		t.Fatal("kept keys")
	}

	// Garbage collection at trim size: 1, 12 (keeps 2..11), 14 (13), 16 (15):
	// 12 records -> drop indices below 15-10 = 5.
	c = newChain(ak, B2A, p)
	for _, at := range []uint32{1, 12, 14, 16} {
		if get(at) != nil {
			t.Fatal(at)
		}
	}
	if n := len(c.links[0].recv.prev) / keyRecordSize; n != 9 {
		t.Fatalf("%d keys after gc, want 9", n)
	}
	for _, at := range []uint32{2, 4, 5} {
		if err := get(at); !errors.Is(err, ErrKeyTrimmed) {
			t.Fatalf("%d: %v", at, err)
		}
	}
	if get(6) != nil || get(15) != nil {
		t.Fatal("kept keys after gc")
	}
}

func TestChainEpochPruning(t *testing.T) {
	ak := seq(32)
	a := newChain(ak, A2B, ChainParams{})
	b := newChain(ak, B2A, ChainParams{})
	sec := [32]byte{1}
	for e := uint64(1); e <= 3; e++ {
		if a.addEpoch(e, sec[:]) != nil || b.addEpoch(e, sec[:]) != nil {
			t.Fatal("addEpoch")
		}
	}
	// Keys of all held epochs agree.
	for e := uint64(0); e <= 3; e++ {
		_, k, err := b.clone().sendKey(e)
		ka, err2 := a.clone().recvKey(e, 1)
		if err != nil || err2 != nil || k != ka {
			t.Fatalf("epoch %d: %v %v", e, err, err2)
		}
	}
	if _, _, err := a.sendKey(2); err != nil {
		t.Fatal(err)
	}
	// Moving the send epoch to 2 keeps epoch 1 and drops epoch 0.
	if len(a.links) != 3 || a.links[0].send.hasNext || !a.links[1].send.hasNext {
		t.Fatalf("links %d", len(a.links))
	}
	if _, err := a.recvKey(0, 1); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("pruned epoch: %v", err)
	}
	if _, err := a.recvKey(1, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.sendKey(1); !errors.Is(err, ErrSendKeyEpochDecreased) {
		t.Fatalf("send epoch decrease: %v", err)
	}
	if _, _, err := a.sendKey(4); !errors.Is(err, ErrEpochOutOfRange) {
		t.Fatalf("send future epoch: %v", err)
	}
}
