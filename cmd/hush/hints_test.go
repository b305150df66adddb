package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/client"
)

// TestHints: the engine's errors say what is wrong; hush adds what to type,
// also through wrapping.
func TestHints(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{client.ErrNotRegistered, "this home has no hush account yet: run hush register"},
		{fmt.Errorf("opening: %w", client.ErrNotSecret), "(hush device make-secret moves them here)"},
		{fmt.Errorf("%w: %w", client.ErrSecretUnfinished, client.ErrUnreachable), "cannot reach the server (run hush device make-secret to finish)"},
		{client.ErrBusy, "receiving in this home (hush recv --follow or hush chat); stop it first"},
		{&client.NeedsConfirmError{Name: "bob"}, "you had verified bob: compare the new number (hush safety-number bob), then run hush verify bob (or hush trust bob) and send again"},
		{&client.QueuedError{Err: client.ErrUnreachable}, "not sent yet (cannot reach the server); it is queued and goes out with the next hush command"},
	} {
		if got := c.err.Error() + hint(c.err); !strings.Contains(got, c.want) {
			t.Errorf("%q, want it to contain %q", got, c.want)
		}
	}
	if h := hint(errors.New("disk full")); h != "" {
		t.Errorf("a hint for an error hush knows nothing of: %q", h)
	}
}
