package main

import (
	"errors"
	"fmt"

	"github.com/hushmsg/hush/internal/client"
)

// hint is what hush adds to an error of the engine: the command that
// helps. The engine says what is wrong; the words for what to type are
// the front end's.
func hint(err error) string {
	var nc *client.NeedsConfirmError
	var q *client.QueuedError
	var b *client.BlockedError
	switch {
	case errors.As(err, &b):
		return fmt.Sprintf(": run hush unblock %s first", b.Name)
	case errors.As(err, &nc):
		n := nc.Name
		return fmt.Sprintf(": compare the new number (hush safety-number %s), then run hush verify %s (or hush trust %s) and send again", n, n, n)
	case errors.As(err, &q):
		return " and goes out with the next hush command"
	case errors.Is(err, client.ErrNotRegistered):
		return ": run hush register"
	case errors.Is(err, client.ErrSecretUnfinished):
		return " (run hush device make-secret to finish)"
	case errors.Is(err, client.ErrNotSecret):
		return " (hush device make-secret moves them here)"
	case errors.Is(err, client.ErrNoAccountIdentity):
		return ": add this device from one of your devices that has it instead (hush device add there, hush link --code here)"
	case errors.Is(err, client.ErrBusy):
		return " (hush recv --follow or hush chat); stop it first"
	}
	return ""
}
