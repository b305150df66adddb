//go:build !unix

package senderkey

import "testing"

// cpuTime reports nothing where getrusage is missing.
func cpuTime(*testing.B) func() { return func() {} }
