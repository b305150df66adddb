// Package strictjson decodes the JSON documents of hush's encrypted
// formats (the provisioning box, history records, the keyring, the
// recovery blob: docs/multidevice.md sections 2 and 3) strictly: a
// document is accepted only in the one form encoding/json writes for the
// value it decodes to. That refuses unknown fields, fields spelled in
// another case, duplicate fields, fields out of order, whitespace,
// non-canonical numbers and base64, and trailing data, so that no two
// documents decode to the same value (no malleability).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrNotCanonical is returned for a document that decodes but is not in
// canonical form.
var ErrNotCanonical = errors.New("not in canonical form")

// Unmarshal decodes b into v (a pointer) and checks that json.Marshal(v)
// gives b back. The error never quotes b, which may hold secrets.
func Unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the document")
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return ErrNotCanonical
	}
	return nil
}

// describe turns a decoding error into one that says where, not what: the
// errors of encoding/json may quote values.
func describe(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("bad JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	}
	// Unknown fields ("json: unknown field \"name\"") and errors of
	// UnmarshalJSON methods, which are ours and quote no secret.
	return err
}
