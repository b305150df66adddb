package fingerprint

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hushmsg/hush/internal/testvec"
	"github.com/hushmsg/hush/key"
)

// The vectors of libsignal's fingerprint_test_v1/v2 and fingerprint_encodings
// (rust/protocol/src/fingerprint.rs).
const (
	aliceIdentity = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
	bobIdentity   = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
	displayable   = "300354477692869396892869876765458257569162576843440918079131"
	aliceV1       = "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
	bobV1         = "080112220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
	aliceV2       = "080212220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
	bobV2         = "080212220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
)

func ids(t *testing.T) (a, b key.IdentityKey) {
	a, err := key.ParseIdentityKey(testvec.Hex(t, aliceIdentity))
	if err != nil {
		t.Fatal(err)
	}
	b, err = key.ParseIdentityKey(testvec.Hex(t, bobIdentity))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestVectors(t *testing.T) {
	a, b := ids(t)
	for _, v := range []struct {
		version    uint32
		alice, bob string
	}{{1, aliceV1, bobV1}, {2, aliceV2, bobV2}} {
		fa, err := New(v.version, Iterations, []byte("+14152222222"), a, []byte("+14153333333"), b)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := New(v.version, Iterations, []byte("+14153333333"), b, []byte("+14152222222"), a)
		if err != nil {
			t.Fatal(err)
		}
		if fa.Display() != displayable || fb.Display() != displayable {
			t.Errorf("v%d display %s / %s", v.version, fa.Display(), fb.Display())
		}
		if !bytes.Equal(fa.Scannable(), testvec.Hex(t, v.alice)) {
			t.Errorf("v%d alice scannable %x", v.version, fa.Scannable())
		}
		if !bytes.Equal(fb.Scannable(), testvec.Hex(t, v.bob)) {
			t.Errorf("v%d bob scannable %x", v.version, fb.Scannable())
		}
		if ok, err := fa.Compare(fb.Scannable()); !ok || err != nil {
			t.Errorf("v%d alice does not match bob's code: %v", v.version, err)
		}
		if ok, _ := fa.Compare(fa.Scannable()); ok {
			t.Errorf("v%d alice matches her own code", v.version)
		}
	}
}

func TestMismatch(t *testing.T) {
	a, b := ids(t)
	fa, _ := New(2, Iterations, []byte("alice"), a, []byte("bob"), b)
	fb, _ := New(2, Iterations, []byte("bob"), b, []byte("alice"), a)
	fm, _ := New(2, Iterations, []byte("bob"), b, []byte("mallory"), a)
	if fa.Display() != fb.Display() {
		t.Fatal("the two sides disagree")
	}
	if ok, _ := fa.Compare(fm.Scannable()); ok {
		t.Fatal("a different identifier still matches")
	}
	f1, _ := New(1, Iterations, []byte("bob"), b, []byte("alice"), a)
	if _, err := fa.Compare(f1.Scannable()); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("version mismatch: %v", err)
	}
	if _, err := fa.Compare([]byte{0xff, 0xff}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := fa.Compare([]byte{0x08, 0x02}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty halves: %v", err)
	}
	if _, err := New(2, 1, nil, a, nil, b); err == nil {
		t.Fatal("one iteration accepted")
	}
}

func FuzzCompare(f *testing.F) {
	f.Add(testvec.Hex(f, aliceV2))
	f.Add(testvec.Hex(f, bobV1))
	a, b := key.IdentityKey{}, key.IdentityKey{}
	fp, _ := New(2, 2, nil, a, nil, b)
	f.Fuzz(func(t *testing.T, scanned []byte) {
		_, _ = fp.Compare(scanned)
	})
}
