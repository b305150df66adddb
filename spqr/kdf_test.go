package spqr

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// The expected values below were computed with an independent Python
// implementation of RFC 5869 HKDF and HMAC-SHA256 (hashlib/hmac), written
// from the labels and layouts of spqr.md §2.6, §2.8 and §3, for
// auth_key = 00 01 .. 1f, ML-KEM shared secret = 32 x 0x42,
// hdr = 00 01 .. 3f, ct1 = 960 x 0x07, ct2 = 128 x 0x09.
const (
	kvChainStart = "cecef8bfcf6f9248e22dbcaf8aae953e8eda4a2525ee2aca6fdbf00ed3b671d9" +
		"cf242eedd7fba9a7092aa6a0ab4683b96e70e2a43876bda97e567fdffb290577" +
		"c6aa9194504352d146ac7f6a8a785d21193ec6ef44719ede0c74d9099414b4f1"
	kvA2BKey1   = "4e95e19749223cd40e0790a3f65f4265a51834cdc72602a6eab133b015ed48d9"
	kvA2BKey2   = "9b631c6f2fb62b8af5bfed5e62b63a19ea39306e8a72a458ad298fef4c18ebbc"
	kvEpochKey1 = "f6f9373673c513ee2e8303b2518e402b0f145e6eef3ce90c5e2853388404532b"
	kvAddEpoch1 = "0bc314b7b4378e6da4f3a33415dc1fe99967f3747b7399e49f02a5bcbd3069fc" +
		"8da7e5300a235004561f6291297aca9ce08ae2917ccda9c0e4f42c2bd5a37183" +
		"97c2c196758ebc197ccc1564b66f2ac4fd102f975a32f1c2db95d8ef5ab5472c"
	kvE1B2AKey1 = "c3cb2c298c90fc98068ba26b2eefcf366740bcddccaf39b9b0ec4f0fd5dae618"
	kvAuthRoot  = "eae875be1b0c8ce16b6c7b67a9d4b49f476d93eaf152676b82bd4a1993211a05"
	kvAuthMac   = "0d54710b71cef4864e8339471177d3699162c711907b0c5593ce569a0b43c30e"
	kvMacHdr    = "888b0ef96a09d169bb39ebf4966459bba6da4385116ce4d3eff9170e540b99ed"
	kvMacCt     = "42afeb87ba9d21966c231383454169c1de4cf11d21953577ee3504068f4edd1d"
)

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func hexEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s = %x, want %s", what, got, want)
	}
}

func TestLabels(t *testing.T) {
	if !strings.Contains(labelChainStart, "Chain  Start") || len(labelChainStart) != 33 {
		t.Fatalf("chain start label must have two spaces: %q", labelChainStart)
	}
}

func TestChainKDFs(t *testing.T) {
	ak := seq(32)
	hexEq(t, "chain start", kdf(zeroSalt, ak, labelChainStart, 96), kvChainStart)

	a := newChain(ak, A2B, ChainParams{})
	b := newChain(ak, B2A, ChainParams{})
	if a.links[0].send.next != b.links[0].recv.next || a.links[0].recv.next != b.links[0].send.next {
		t.Fatal("directions do not mirror")
	}
	i, k, err := a.sendKey(0)
	if err != nil || i != 1 {
		t.Fatalf("first send index %d err %v", i, err)
	}
	hexEq(t, "A2B key 1", k[:], kvA2BKey1)
	i, k, _ = a.sendKey(0)
	if i != 2 {
		t.Fatalf("second index %d", i)
	}
	hexEq(t, "A2B key 2", k[:], kvA2BKey2)

	var ss [32]byte
	for i := range ss {
		ss[i] = 0x42
	}
	ke := epochSecret(1, ss[:])
	hexEq(t, "epoch secret", ke[:], kvEpochKey1)
	hexEq(t, "add epoch", kdf(a.nextRoot[:], ke[:], labelChainAddEpoch, 96), kvAddEpoch1)

	if err := a.addEpoch(1, ke[:]); err != nil {
		t.Fatal(err)
	}
	_, k, _ = a.sendKey(1) // A's send in epoch 1 uses the A2B seed
	if err := b.addEpoch(1, ke[:]); err != nil {
		t.Fatal(err)
	}
	kb, err := b.recvKey(1, 1)
	if err != nil || kb != k {
		t.Fatal("epoch 1 A2B key mismatch")
	}
	_, k, _ = b.sendKey(1)
	hexEq(t, "epoch 1 B2A key 1", k[:], kvE1B2AKey1)
	if err := a.addEpoch(3, ke[:]); err == nil {
		t.Fatal("addEpoch skipped an epoch")
	}
}

func TestAuthenticator(t *testing.T) {
	a := newAuthenticator(seq(32), 1)
	hexEq(t, "root", a.root[:], kvAuthRoot)
	hexEq(t, "mac key", a.mac[:], kvAuthMac)
	hdr := seq(64)
	m := a.macHdr(1, hdr)
	hexEq(t, "mac_hdr", m[:], kvMacHdr)
	if !a.verifyHdr(1, hdr, m[:]) {
		t.Fatal("verifyHdr rejects own MAC")
	}
	bad := m
	bad[31] ^= 1
	if a.verifyHdr(1, hdr, bad[:]) || a.verifyHdr(2, hdr, m[:]) || a.verifyHdr(1, hdr, m[:31]) {
		t.Fatal("verifyHdr accepts a wrong MAC, epoch or length")
	}
	ke, _ := hex.DecodeString(kvEpochKey1)
	a.update(1, ke)
	ct1 := bytes.Repeat([]byte{7}, 960)
	ct2 := bytes.Repeat([]byte{9}, 128)
	mc := a.macCt(1, ct1, ct2)
	hexEq(t, "mac_ct", mc[:], kvMacCt)
	if !a.verifyCt(1, ct1, ct2, mc[:]) {
		t.Fatal("verifyCt rejects own MAC")
	}
	ct2[0] ^= 1
	if a.verifyCt(1, ct1, ct2, mc[:]) {
		t.Fatal("verifyCt accepts modified ct2")
	}
}
