package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client"
)

// TestExplainWraps: explain says a server's refusal in a sentence, and the
// error it gives still is the server's, for errors.Is and errors.As.
func TestExplainWraps(t *testing.T) {
	taken := &apiclient.Error{Status: 409, Code: api.CodeUsernameTaken, Message: "username is taken"}
	err := client.Explain(fmt.Errorf("registering: %w", taken))
	if err.Error() != "that username is taken" {
		t.Errorf("explained as %q", err)
	}
	if !errors.Is(err, taken) {
		t.Error("errors.Is does not find the server's error through explain")
	}
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 409 || !apiclient.IsCode(err, api.CodeUsernameTaken) {
		t.Errorf("errors.As does not find the server's error through explain: %v", ae)
	}

	for _, code := range []string{api.CodeUnauthorized, api.CodeRateLimited, api.CodeNotFound, api.CodeBadRequest, api.CodeMailboxFull} {
		e := &apiclient.Error{Status: 400, Code: code, Message: "m"}
		if err := client.Explain(e); !errors.Is(err, e) || strings.HasPrefix(err.Error(), "hushd:") {
			t.Errorf("%s: explained as %q, errors.Is %v", code, err, errors.Is(err, e))
		}
	}

	// A network failure is ErrUnreachable, and still itself.
	op := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	err = client.Explain(op)
	var oe *net.OpError
	if !errors.Is(err, client.ErrUnreachable) || !errors.As(err, &oe) {
		t.Errorf("a dial failure explained as %v", err)
	}
	if err := client.Explain(context.DeadlineExceeded); !errors.Is(err, client.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a timeout explained as %v", err)
	}
	// Said for a person: where and why, without Go's request line.
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Post", URL: "https://h.example:8443/v1/history", Err: fmt.Errorf("%w (Client.Timeout exceeded while awaiting headers)", context.DeadlineExceeded)},
			"cannot reach the server at https://h.example:8443: no answer in time"},
		{&url.Error{Op: "Get", URL: "https://h.example:8443/v1/blocks", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			"cannot reach the server at https://h.example:8443: connection refused"},
		{context.DeadlineExceeded, "cannot reach the server: no answer in time"},
	} {
		err := client.Explain(tc.err)
		if err.Error() != tc.want || !errors.Is(err, client.ErrUnreachable) || !errors.Is(err, tc.err) {
			t.Errorf("%v explained as %q, want %q", tc.err, err, tc.want)
		}
	}
	// Anything else goes through as it is.
	other := errors.New("disk full")
	if err := client.Explain(other); err != other {
		t.Errorf("explain changed %v into %v", other, err)
	}
}
