package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/attach"
	pb "github.com/hushmsg/hush/internal/content/contentpb"
)

func testAttachment(name string) Attachment {
	a := Attachment{Name: name, Size: 1234, ContentType: "image/jpeg", Key: attach.NewKey(), BlobID: "AAAAAAAAAAAAAAAAAAAAAA"}
	a.Digest[0], a.SHA256 = 7, sha256.Sum256([]byte(name))
	return a
}

// TestAttachmentsRoundTrip: attachments alone, with a body, and the most
// of them survive Marshal and Parse, and the generated code reads them as
// meant, and the other way round.
func TestAttachmentsRoundTrip(t *testing.T) {
	most := make([]Attachment, MaxAttachments)
	for i := range most {
		most[i] = testAttachment(fmt.Sprintf("f%d.bin", i))
	}
	big := testAttachment(strings.Repeat("é", MaxNameBytes/2))
	big.Size, big.ContentType = MaxAttachmentSize, strings.Repeat("x", MaxContentTypeBytes)
	empty := testAttachment("")
	empty.Size, empty.ContentType = 0, ""
	for name, m := range map[string]*Message{
		"alone":     {Attachments: []Attachment{testAttachment("a.txt")}},
		"with body": {Body: "look", Attachments: []Attachment{testAttachment("a.txt")}, Ordinary: true, SyncTo: "bob"},
		"most":      {Attachments: most},
		"largest":   {Attachments: []Attachment{big}},
		"empty":     {Attachments: []Attachment{empty}},
	} {
		m.ID, m.SentAt = NewID(), time.UnixMilli(1764100000123)
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.Version = Version
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v, want %+v", name, got, m)
		}
		var c pb.Content
		if err := proto.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Attachments) != len(m.Attachments) {
			t.Fatalf("%s: protobuf reads %d attachments", name, len(c.Attachments))
		}
		for i, pa := range c.Attachments {
			a := m.Attachments[i]
			if pa.Name != a.Name || pa.Size != uint64(a.Size) || pa.ContentType != a.ContentType || !bytes.Equal(pa.Key, a.Key[:]) ||
				!bytes.Equal(pa.Digest, a.Digest[:]) || !bytes.Equal(pa.Sha256, a.SHA256[:]) || pa.BlobId != a.BlobID {
				t.Fatalf("%s: protobuf reads %v", name, pa)
			}
		}
	}
	// Format v2: field 8, read by the generated code; v1 writes no field 8.
	v2 := testAttachment("v2.bin")
	v2.Scheme = attach.V2
	m := &Message{ID: NewID(), SentAt: time.UnixMilli(1), Attachments: []Attachment{v2, testAttachment("v1.bin")}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var c pb.Content
	if err := proto.Unmarshal(b, &c); err != nil || c.Attachments[0].Scheme != 2 || c.Attachments[1].Scheme != 0 {
		t.Fatalf("protobuf reads schemes %v, %v", c.Attachments, err)
	}
	if got, err := Parse(b); err != nil || got.Attachments[0].Format() != attach.V2 || got.Attachments[1].Format() != attach.V1 {
		t.Fatalf("schemes read back as %v, %v", got, err)
	}
	// An explicit 1 is v1; an unknown scheme is kept, the message readable.
	for _, s := range []uint32{1, 3, 1<<32 - 1} {
		a := testAttachment("s")
		ref, _ := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize), Attachments: []*pb.Attachment{{Name: a.Name, Size: uint64(a.Size),
			Key: a.Key[:], Digest: a.Digest[:], Sha256: a.SHA256[:], BlobId: a.BlobID, Scheme: s}}})
		got, err := Parse(ref)
		if err != nil || uint32(got.Attachments[0].Format()) != s {
			t.Fatalf("scheme %d: %v, %v", s, got, err)
		}
	}
	a := testAttachment("ref.pdf")
	ref, _ := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize), Attachments: []*pb.Attachment{{Name: a.Name, Size: uint64(a.Size),
		ContentType: a.ContentType, Key: a.Key[:], Digest: a.Digest[:], Sha256: a.SHA256[:], BlobId: a.BlobID}}})
	got, err := Parse(ref)
	if err != nil || len(got.Attachments) != 1 || !reflect.DeepEqual(got.Attachments[0], a) {
		t.Fatalf("we read protobuf's encoding as %+v, %v", got, err)
	}
}

// rawAttachment is a content with the attachment a followed by the
// bytes extra inside it.
func rawAttachment(t *testing.T, a *pb.Attachment, extra ...byte) []byte {
	ab, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize)})
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	return protowire.AppendBytes(b, append(ab, extra...))
}

func TestAttachmentsBad(t *testing.T) {
	enc := func(as ...*pb.Attachment) []byte {
		b, err := proto.Marshal(&pb.Content{Version: 1, Id: make([]byte, IDSize), Attachments: as})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := func() *pb.Attachment {
		a := testAttachment("x")
		return &pb.Attachment{Name: a.Name, Size: 1, Key: a.Key[:], Digest: a.Digest[:], Sha256: a.SHA256[:], BlobId: a.BlobID}
	}
	with := func(f func(*pb.Attachment)) []byte { a := good(); f(a); return enc(a) }
	many := make([]*pb.Attachment, MaxAttachments+1)
	for i := range many {
		many[i] = good()
	}
	for name, b := range map[string][]byte{
		"too many":         enc(many...),
		"short key":        with(func(a *pb.Attachment) { a.Key = a.Key[:63] }),
		"no key":           with(func(a *pb.Attachment) { a.Key = nil }),
		"short digest":     with(func(a *pb.Attachment) { a.Digest = a.Digest[:31] }),
		"no sha256":        with(func(a *pb.Attachment) { a.Sha256 = nil }),
		"too big":          with(func(a *pb.Attachment) { a.Size = MaxAttachmentSize + 1 }),
		"huge":             with(func(a *pb.Attachment) { a.Size = 1 << 63 }),
		"long name":        with(func(a *pb.Attachment) { a.Name = strings.Repeat("n", MaxNameBytes+1) }),
		"bad blob id":      with(func(a *pb.Attachment) { a.BlobId = "../../../../etc/passwd" }),
		"short blob id":    with(func(a *pb.Attachment) { a.BlobId = "AAAA" }),
		"no blob id":       with(func(a *pb.Attachment) { a.BlobId = "" }),
		"type control":     with(func(a *pb.Attachment) { a.ContentType = "text/plain\x1b[2J" }),
		"type long":        with(func(a *pb.Attachment) { a.ContentType = strings.Repeat("t", MaxContentTypeBytes+1) }),
		"type not ascii":   with(func(a *pb.Attachment) { a.ContentType = "image/jpég" }),
		"bad utf8 name":    append(enc(), 0x3a, 3, 0x0a, 1, 0xff),
		"attachment junk":  append(enc(), 0x3a, 2, 0xff, 0xff),
		"attachment varnt": append(enc(), 0x38, 1),
		"scheme 0":         rawAttachment(t, good(), 0x40, 0),
		"scheme 2^32":      rawAttachment(t, good(), 0x40, 0x80, 0x80, 0x80, 0x80, 0x10),
		"scheme bytes":     rawAttachment(t, good(), 0x42, 1, 2),
	} {
		if m, err := Parse(b); !errors.Is(err, ErrMalformed) || m != nil {
			t.Errorf("%s: got %v, %v", name, m, err)
		}
	}
	a := testAttachment("x")
	for name, f := range map[string]func(*Attachment){
		"negative size": func(a *Attachment) { a.Size = -1 },
		"too big":       func(a *Attachment) { a.Size = MaxAttachmentSize + 1 },
		"bad name":      func(a *Attachment) { a.Name = "\xff" },
		"bad blob":      func(a *Attachment) { a.BlobID = "x" },
	} {
		b := a
		f(&b)
		if out, err := (&Message{Attachments: []Attachment{b}}).Marshal(); !errors.Is(err, ErrMalformed) || out != nil {
			t.Errorf("Marshal %s: %v", name, err)
		}
	}
	if _, err := (&Message{Attachments: make([]Attachment, MaxAttachments+1)}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal of too many: %v", err)
	}
}

// TestAttachmentKeyNotPrinted: the key never appears in a formatted
// attachment or message.
func TestAttachmentKeyNotPrinted(t *testing.T) {
	a := testAttachment("k")
	copy(a.Key[:], bytes.Repeat([]byte{0xab}, attach.KeySize))
	m := &Message{Attachments: []Attachment{a}}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v %#v %v %+v", a, a, m, *m)} {
		if strings.Contains(s, "abab") || strings.Contains(s, "171") {
			t.Errorf("key printed: %s", s)
		}
	}
}

func TestFileName(t *testing.T) {
	long := strings.Repeat("a", 300)
	for in, want := range map[string]string{
		"photo.jpg":              "photo.jpg",
		"Ünïcødé 写真.png":         "Ünïcødé 写真.png",
		"":                       "file",
		".":                      "_",
		"..":                     "__",
		"...":                    "___",
		"../../etc/passwd":       "___.._etc_passwd",
		"..\\..\\windows\\x.dll": "___.._windows_x.dll",
		"/etc/shadow":            "_etc_shadow",
		".bashrc":                "_bashrc",
		"-rf":                    "_rf",
		"  spaced  ":             "__spaced",
		"trailing...":            "trailing",
		"CON":                    "_CON",
		"con.txt":                "_con.txt",
		"LPT1.tar.gz":            "_LPT1.tar.gz",
		"COM9":                   "_COM9",
		"CONSOLE.txt":            "CONSOLE.txt",
		"a:b*c?d\"e<f>g|h":       "a_b_c_d_e_f_g_h",
		"bell\a\x1b[2Jx":         "bell__[2Jx",
		"evil\u202etxt.exe":      "evil_txt.exe",
		"zero\u200bwidth":        "zero_width",
		"nl\nname":               "nl_name",
		"del\x7f":                "del_",
		"c1\u009bx":              "c1_x",
		"slash\u2215look":        "slash_look",
		"full\uff0fwidth":        "full_width",
		"bad\xffutf8":            "bad_utf8",
		"nbsp\u00a0x":            "nbsp_x",
		long + ".txt":            long[:176] + ".txt",
		long:                     long[:180],
		strings.Repeat("é", 200): strings.Repeat("é", 90),
	} {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkFileName checks what FileName promises of its result.
func checkFileName(t *testing.T, in string) {
	t.Helper()
	s := FileName(in)
	switch {
	case s == "" || s == "." || s == "..":
		t.Fatalf("FileName(%q) = %q", in, s)
	case len(s) > maxSafeName:
		t.Fatalf("FileName(%q) is %d bytes", in, len(s))
	case !utf8.ValidString(s):
		t.Fatalf("FileName(%q) = %q, not UTF-8", in, s)
	case strings.ContainsAny(s, "/\\:*?\"<>|\x00"):
		t.Fatalf("FileName(%q) = %q has a separator or forbidden character", in, s)
	case s[0] == '.' || s[0] == '-' || s[0] == ' ' || strings.HasSuffix(s, ".") || strings.HasSuffix(s, " "):
		t.Fatalf("FileName(%q) = %q starts or ends badly", in, s)
	case filepath.Base(s) != s || filepath.Clean(filepath.Join("/dir", s)) != "/dir/"+s:
		t.Fatalf("FileName(%q) = %q leaves its folder", in, s)
	case FileName(s) != s:
		t.Fatalf("FileName is not idempotent on %q: %q then %q", in, s, FileName(s))
	}
	for _, r := range s {
		if unsafeNameRune(r) && r != utf8.RuneError {
			t.Fatalf("FileName(%q) = %q keeps %U", in, s, r)
		}
	}
	stem, _, _ := strings.Cut(s, ".")
	if reserved(strings.TrimRight(stem, " ")) {
		t.Fatalf("FileName(%q) = %q is a reserved name", in, s)
	}
}

// FuzzFileName: whatever a peer sends, the saved name stays in its folder
// and keeps FileName's promises.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../../etc/passwd", "..", "CON.txt", "a\u202eb", strings.Repeat("é", 200) + ".png",
		" .-x. ", "aux", "\xff\xfe", "x/../../y", "COM1 .txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFileName(t, s) })
}

// TestLargestFileFits: the largest file, padded and encrypted, is a blob
// the server takes (api.MaxBlobBytes), and no more.
func TestLargestFileFits(t *testing.T) {
	if got := attach.CiphertextSize(MaxAttachmentSize); got != api.MaxBlobBytes {
		t.Fatalf("a %d-byte file is a %d-byte blob; api.MaxBlobBytes is %d", MaxAttachmentSize, got, api.MaxBlobBytes)
	}
	// Format v2 fits as well: its blobs are size buckets.
	if got := attach.V2.CiphertextSize(MaxAttachmentSize); got > api.MaxBlobBytes {
		t.Fatalf("a %d-byte file is a %d-byte blob in format v2; api.MaxBlobBytes is %d", MaxAttachmentSize, got, api.MaxBlobBytes)
	}
}
