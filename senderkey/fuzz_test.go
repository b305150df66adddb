package senderkey

import (
	"bytes"
	"testing"
)

// The fuzz targets are seeded from libsignal's known answers
// (testdata/libsignal-0.103.0); go test runs the seeds.

func FuzzParseMessage(f *testing.F) {
	for _, m := range katMessages(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("Bytes is not the input")
		}
		// Our encoding of the same fields parses to the same fields.
		body := appendMessageBody(nil, &m.header, m.ciphertext)
		body = append(body, b[len(b)-SignatureSize:]...)
		if len(body) != messageSize(&m.header, len(m.ciphertext)) {
			t.Fatalf("messageSize %d, encoded %d", messageSize(&m.header, len(m.ciphertext)), len(body))
		}
		m2, err := ParseMessage(body)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if m2.header != m.header || !bytes.Equal(m2.ciphertext, m.ciphertext) {
			t.Fatal("re-encoded message differs")
		}
	})
}

func FuzzParseDistributionMessage(f *testing.F) {
	f.Add(katDistribution(f, "distribution.json"))
	f.Add(katDistribution(f, "distribution.late.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseDistributionMessage(b)
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("Bytes is not the input")
		}
		again := newDistributionMessage(m.header, &m.chainKey, m.signingKey)
		m2, err := ParseDistributionMessage(again.Bytes())
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if m2.header != m.header || m2.chainKey != m.chainKey || m2.signingKey != m.signingKey {
			t.Fatal("re-encoded message differs")
		}
	})
}

// FuzzParseRecord: no panics; an accepted record re-encodes to bytes that
// parse again and encode to the same bytes.
func FuzzParseRecord(f *testing.F) {
	for _, s := range katStateFiles {
		f.Add(katRecord(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		b1, _ := r.MarshalBinary()
		r2, err := ParseRecord(b1)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if b2, _ := r2.MarshalBinary(); !bytes.Equal(b1, b2) {
			t.Fatal("record encoding is not stable")
		}
	})
}

// FuzzDecrypt: any record and any message: no panic, and a failure leaves
// the stored record as it was.
func FuzzDecrypt(f *testing.F) {
	msgs := katMessages(f)
	for _, s := range katStateFiles[2:] {
		for _, m := range msgs {
			f.Add(katRecord(f, s), m)
		}
	}
	f.Fuzz(func(t *testing.T, record, msg []byte) {
		if _, err := ParseRecord(record); err != nil {
			return
		}
		st := NewMemoryStore()
		st.records[memKey{katAlice, katGroup}] = record
		c := &Cipher{Store: st, Local: katBob}
		if _, err := c.Decrypt(t.Context(), katAlice, msg); err != nil {
			if !bytes.Equal(st.Raw(katAlice, katGroup), record) {
				t.Fatal("a failed decryption changed the record")
			}
		}
	})
}
