package senderkey_test

import (
	"testing"

	"github.com/hushmsg/hush/senderkey"
	"github.com/hushmsg/hush/senderkey/senderkeytest"
)

func TestMemoryStoreConformance(t *testing.T) {
	senderkeytest.Run(t, func(*testing.T) senderkey.Store { return senderkey.NewMemoryStore() })
}
