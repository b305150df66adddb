package content

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hushmsg/hush/internal/attach"
	"github.com/hushmsg/hush/internal/pbwire"
)

// Limits of attachments (issue 11).
const (
	// MaxAttachments is the most files one message carries: the most
	// blobs one send may name (api.MaxBlobsPerMessage).
	MaxAttachments = 32
	// MaxAttachmentSize is the largest file, in bytes: 100 MiB, which
	// padded and encrypted fits the server's largest blob.
	MaxAttachmentSize = 100 << 20
	// MaxNameBytes is the longest file name an attachment carries, in
	// bytes, as the sender wrote it (a receiver shortens it further when
	// it saves the file: [FileName]).
	MaxNameBytes = 1024
	// MaxContentTypeBytes is the longest content type.
	MaxContentTypeBytes = 255
	// BlobIDLen is the length of a blob id: 16 random bytes in unpadded
	// base64url (api.BlobState).
	BlobIDLen = 22
)

// Attachment names a file sent with a message: where its ciphertext is
// (BlobID, a blob on the server), the key that decrypts it and the digest
// that checks it (internal/attach: format v2, or v1, Signal's, per
// Scheme), and what
// the file is. It comes from a peer: Name must go through [FileName]
// before any use, and ContentType is only a hint. The key is secret:
// String leaves it out.
type Attachment struct {
	Name        string
	Size        int64 // plaintext bytes, 0 to MaxAttachmentSize
	ContentType string
	Key         attach.Key
	// Digest checks the ciphertext: in format v1 the HMAC-SHA256 tag that
	// ends it, which commits to the stored bytes (see internal/attach for
	// why it is the tag and not a second hash of the ciphertext); in
	// format v2 the key commitment in its header (docs/franking.md).
	Digest attach.Digest
	// SHA256 is the SHA-256 of the plaintext, checked after decryption
	// and shown to people (it names the file independently of its key).
	SHA256 [sha256.Size]byte
	BlobID string
	// Scheme is the blob's format (field 8, since 2026-12-03): 0 (field
	// absent; Parse also reads an explicit 1 so) for v1, Signal's
	// AES-256-CBC + HMAC-SHA256; attach.V2 for the chunked AES-256-GCM
	// STREAM. Parse keeps a scheme it does not know (the message stays
	// readable; the file is refused when it is downloaded); [Format]
	// says which it is.
	Scheme attach.Scheme
}

// Format is the attachment's scheme, attach.V1 when unset.
func (a Attachment) Format() attach.Scheme {
	if a.Scheme == 0 {
		return attach.V1
	}
	return a.Scheme
}

func (a Attachment) String() string {
	return fmt.Sprintf("attachment(%q, %d bytes, blob %s, key redacted)", a.Name, a.Size, a.BlobID)
}

// GoString keeps the key out of %#v.
func (a Attachment) GoString() string { return a.String() }

func validBlobID(s string) bool {
	if len(s) != BlobIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validContentType(s string) bool {
	if len(s) > MaxContentTypeBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// check refuses what Marshal must not write and Parse refuses.
func (a *Attachment) check() error {
	switch {
	case !utf8.ValidString(a.Name) || len(a.Name) > MaxNameBytes:
		return fmt.Errorf("%w: attachment name is not UTF-8 of at most %d bytes", ErrMalformed, MaxNameBytes)
	case a.Size < 0 || a.Size > MaxAttachmentSize:
		return fmt.Errorf("%w: attachment of %d bytes (at most %d)", ErrMalformed, a.Size, MaxAttachmentSize)
	case !validContentType(a.ContentType):
		return fmt.Errorf("%w: attachment content type", ErrMalformed)
	case !validBlobID(a.BlobID):
		return fmt.Errorf("%w: attachment blob id", ErrMalformed)
	}
	return nil
}

func (a *Attachment) append(b []byte) []byte {
	return pbwire.AppendMessage(b, fAttach, func(b []byte) []byte {
		b = pbwire.AppendBytes(b, fAttName, []byte(a.Name))
		b = pbwire.AppendVarint(b, fAttSize, uint64(a.Size))
		b = pbwire.AppendBytes(b, fAttContentType, []byte(a.ContentType))
		b = pbwire.AppendBytes(b, fAttKey, a.Key[:])
		b = pbwire.AppendBytes(b, fAttDigest, a.Digest[:])
		b = pbwire.AppendBytes(b, fAttSHA256, a.SHA256[:])
		b = pbwire.AppendBytes(b, fAttBlobID, []byte(a.BlobID))
		if a.Format() != attach.V1 {
			// Only past v1: a v1 pointer stays byte for byte what it was.
			b = pbwire.AppendVarint(b, fAttScheme, uint64(a.Scheme))
		}
		return b
	})
}

// parse reads an Attachment: a name and content type of UTF-8, a key of
// 64 bytes, a digest and a SHA-256 of 32, a size within bounds, a
// well-formed blob id and a scheme of 32 bits (absent: attach.V1); check
// says the rest.
func (a *Attachment) parse(b []byte) error {
	var key, digest, sum []byte
	var size uint64
	scheme := uint64(attach.V1)
	ok := pbwire.Walk(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) bool {
		switch num {
		case fAttName:
			a.Name = string(bs)
			return typ == protowire.BytesType && utf8.Valid(bs)
		case fAttSize:
			size = v
			return typ == protowire.VarintType
		case fAttContentType:
			a.ContentType = string(bs)
			return typ == protowire.BytesType && utf8.Valid(bs)
		case fAttKey:
			key = bs
			return typ == protowire.BytesType
		case fAttDigest:
			digest = bs
			return typ == protowire.BytesType
		case fAttSHA256:
			sum = bs
			return typ == protowire.BytesType
		case fAttBlobID:
			a.BlobID = string(bs)
			return typ == protowire.BytesType
		case fAttScheme:
			scheme = v
			return typ == protowire.VarintType
		}
		return true
	})
	if !ok || len(key) != attach.KeySize || len(digest) != attach.DigestSize || len(sum) != sha256.Size || size > MaxAttachmentSize ||
		scheme == 0 || scheme > 1<<32-1 {
		return fmt.Errorf("%w: bad attachment", ErrMalformed)
	}
	a.Size = int64(size)
	if scheme != uint64(attach.V1) {
		a.Scheme = attach.Scheme(scheme) // v1 stays the zero value
	}
	copy(a.Key[:], key)
	copy(a.Digest[:], digest)
	copy(a.SHA256[:], sum)
	return a.check()
}

// Limits of a sanitised file name.
const (
	maxSafeName = 180 // bytes: room under the 255 of most file systems for " (12345)" and a temporary suffix
	maxSafeExt  = 16  // bytes of an extension kept when a name is cut
)

// FileName makes a peer-supplied file name safe to use as the name of a
// file in a folder of the receiver's choosing, and to show (so that no
// name can write outside that folder, hide, pass for another, or fail to
// be created):
//   - path separators ('/' and '\'), the characters Windows forbids
//     (: * ? " < > |), the look-alike slashes (U+2044, U+2215, U+29F8,
//     U+FF0F, U+FF3C), control characters, format characters (the bidi
//     overrides that can show "exe.txt" as "txt.exe", zero-width
//     characters), line separators and invalid UTF-8 become '_';
//   - leading dots, spaces and '-' become '_' (no hidden file, no "..",
//     nothing a command takes for an option), trailing dots and spaces
//     go (Windows drops them);
//   - a name that Windows reserves for a device (CON, PRN, AUX, NUL,
//     COM0-9, LPT0-9, with or without an extension) gets a '_' before it;
//   - a name longer than 180 bytes is cut at a character boundary,
//     keeping its extension (up to 16 bytes);
//   - an empty name becomes "file".
//
// The rules follow what browsers do with a download's suggested name
// (Chromium's net::GenerateSafeFileName and base::i18n::
// ReplaceIllegalCharactersInPath) and Windows' naming rules ("Naming
// Files, Paths, and Namespaces"). The result is never empty, never "." or
// "..", contains no separator, and FileName(FileName(s)) == FileName(s).
func FileName(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(name[i:]); n <= 1 {
				b.WriteByte('_')
				continue
			}
		}
		if unsafeNameRune(r) {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	s := b.String()
	// Leading dots, spaces and dashes: hidden files, "..", options.
	for i := 0; i < len(s) && (s[i] == '.' || s[i] == ' ' || s[i] == '-'); i++ {
		s = s[:i] + "_" + s[i+1:]
	}
	s = strings.TrimRight(s, ". ")
	if s == "" {
		return "file"
	}
	stem, _, _ := strings.Cut(s, ".")
	if reserved(strings.TrimRight(stem, " ")) {
		s = "_" + s
	}
	if len(s) > maxSafeName {
		s = cut(s)
	}
	return s
}

// unsafeNameRune reports whether r is replaced in a file name.
func unsafeNameRune(r rune) bool {
	switch r {
	case '/', '\\', ':', '*', '?', '"', '<', '>', '|',
		'\u2044', '\u2215', '\u29f8', '\uff0f', '\uff3c', // look-alike slashes
		'\u2028', '\u2029', '\ufffd':
		return true
	}
	return r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r) && r != ' '
}

// cut shortens s to at most maxSafeName bytes at a character boundary,
// keeping a short extension.
func cut(s string) string {
	ext := filepath.Ext(s)
	if len(ext) > maxSafeExt || len(ext) == len(s) {
		ext = ""
	}
	stem := s[:len(s)-len(ext)]
	n := maxSafeName - len(ext)
	for n > 0 && !utf8.RuneStart(stem[n]) {
		n--
	}
	return strings.TrimRight(stem[:n], ". ") + ext
}

// reserved reports whether stem is a device name on Windows.
func reserved(stem string) bool {
	switch u := strings.ToUpper(stem); u {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	default:
		return len(u) == 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) && u[3] >= '0' && u[3] <= '9'
	}
}
