package main

import (
	"testing"

	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/senderkey/senderkeytest"
)

// The state file is hushpeer's senderkey.Store.
func TestStateIsASenderKeyStore(t *testing.T) {
	senderkeytest.Run(t, func(t *testing.T) senderkey.Store {
		st, err := initState("me", 1, false, false, "")
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
