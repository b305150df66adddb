package apiclient

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// Failover between the nodes of one cluster (issue 12; docs/client.md,
// "Several servers"; docs/operations.md, "Client failover").
//
// A request goes first to the URL that answered last. When that node
// cannot be reached it goes on to the others, starting at a random one of
// them (so that the clients of a dead node spread over the rest) and then
// in the list's order, each URL once:
//
//   - a failure before the request went out (the connection refused, a
//     dial or TLS handshake that timed out or broke): any request goes on;
//   - a failure after it went out (the connection broke, no answer in
//     time), or a gateway's or node's "unavailable" (502, 503, 504): only a
//     request that may be repeated goes on (repeatable), since the node
//     may have done it;
//   - a certificate other than the pinned one: never. It is returned at
//     once ([CertificateError]): every node of a cluster presents the same
//     certificate, so another one means interception or a misconfigured
//     node, not a node to skip quietly;
//   - any other answer of the server, success or refusal: it is the answer.

// MaxURLs is the most URLs a client takes: a cluster's nodes, or a few
// load balancers in front of one. Each dead one may cost a dial timeout.
const MaxURLs = 8

// outcome says how an attempt on one node went.
type outcome int

const (
	served    outcome = iota // the node answered: that is the result
	notSent                  // nothing reached the node: try another
	maybeSent                // the node may have acted: another only if repeatable
)

// connFailure classifies a failed round trip: wrote says whether the
// request's headers went out.
func connFailure(ctx context.Context, err error, wrote bool) outcome {
	var ce *CertificateError
	switch {
	case errors.As(err, &ce), ctx.Err() != nil:
		return served // final: not a node's failure
	case !wrote:
		return notSent
	}
	return maybeSent
}

// nodeDown reports whether an HTTP status says the node (or the gateway in
// front of it) could not serve: hushd's 503 unavailable (shutting down, its
// storage unreachable, its connection limit), a load balancer's 502, 503
// or 504.
func nodeDown(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// repeatable reports whether a request may be sent again to another node
// after one that may have acted on it (docs/api.md):
//
//   - reads (GET; a bundle fetch takes a one-time prekey, and a second one
//     only wastes one);
//   - PUTs that replace state with the same state (prekeys, the account
//     identity, the secret device, blocks), not PUT /v1/recovery (a
//     version check: the repeat would be a conflict) or a link's box (once);
//   - DELETE of a block;
//   - sends (POST /v1/messages/..., /v1/ordinary/messages): hushd does not
//     recognize a repeated send and may store two copies, and the
//     recipient drops the second (the ratchet refuses a message key used
//     twice as a duplicate, and stored messages are unique per content id:
//     internal/client, Decrypt), so that nothing is shown twice;
//   - history deposits (a record id stored already is ignored), the
//     recovery blob's fetch and a link box's fetch (reads with a password
//     or claim).
//
// Not: registering, adding or logging in a device, opening, greeting or
// completing a link, removing a device or a link: the repeat would fail
// or do it twice.
func repeatable(method, path string) bool {
	path, _, _ = strings.Cut(path, "?")
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPut:
		return path != "/v1/recovery" && !(strings.HasPrefix(path, "/v1/links/") && strings.HasSuffix(path, "/box"))
	case http.MethodDelete:
		return strings.HasPrefix(path, "/v1/blocks/")
	case http.MethodPost:
		return strings.HasPrefix(path, "/v1/messages/") || path == "/v1/ordinary/messages" ||
			path == "/v1/history" || path == "/v1/recovery/fetch" ||
			(strings.HasPrefix(path, "/v1/links/") && strings.HasSuffix(path, "/box"))
	}
	return false
}

// order returns the indexes of the URLs in the order to try them.
func (c *Client) order() []int {
	n := len(c.bases)
	first := int(c.cur.Load())
	if n == 1 {
		return []int{first}
	}
	out := make([]int, 0, n)
	others := func() { // the n-1 others, cyclically from a random one
		r := rand.IntN(n - 1)
		for k := range n - 1 {
			out = append(out, (first+1+(r+k)%(n-1))%n)
		}
	}
	if int(c.suspect.Load()) == first {
		others()
		return append(out, first)
	}
	out = append(out, first)
	others()
	return out
}

// use records that the URL at idx answered.
func (c *Client) use(idx int) {
	c.suspect.Store(-1)
	if old := c.cur.Swap(int32(idx)); int(old) != idx && c.onSwitch != nil {
		c.onSwitch(c.bases[idx])
	}
}

// Bases returns the server URLs, in their order.
func (c *Client) Bases() []string { return append([]string(nil), c.bases...) }

// Current returns the URL tried first: the one that answered last.
func (c *Client) Current() string { return c.bases[c.cur.Load()] }

// Prefer makes base the URL tried first, if it is one of them (the one a
// previous process found working).
func (c *Client) Prefer(base string) bool {
	for i, b := range c.bases {
		if b == base {
			c.cur.Store(int32(i))
			return true
		}
	}
	return false
}

// Skip says that the connection to base was lost: the next requests try
// the other URLs first, and base last, until one of them answers. (A node
// that dropped a WebSocket is likely dead; where it merely restarted,
// another node serves as well.)
func (c *Client) Skip(base string) {
	for i, b := range c.bases {
		if b == base {
			c.suspect.Store(int32(i))
		}
	}
}

// attemptError is one failed attempt.
type attemptError struct {
	base string
	err  error
}

// failure is the error of a request that no node served: the one
// attempt's error, or all of them with their URLs.
func failure(failed []attemptError) error {
	if len(failed) == 1 {
		return failed[0].err
	}
	return &FailoverError{attempts: failed}
}

// FailoverError says that no node of a cluster could serve a request. It
// wraps each attempt's error (errors.As finds a *Error or a net.Error
// among them).
type FailoverError struct {
	attempts []attemptError
}

func (e *FailoverError) Error() string {
	var b strings.Builder
	for i, a := range e.attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.base + ": " + Reason(a.err))
	}
	return b.String()
}

func (e *FailoverError) Unwrap() []error {
	out := make([]error, len(e.attempts))
	for i, a := range e.attempts {
		out[i] = a.err
	}
	return out
}

// Reason says in a few words why a request did not reach a server, for a
// person: "no answer in time", "connection refused", "connection reset",
// or the error's own text without the request's method and URL (which
// say nothing to them).
func Reason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
