package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/termsafe"
)

// Several servers: the nodes of one hushd cluster (issue 12 part 4;
// docs/client.md, "Several servers"). A home keeps their URLs in order
// (store.Account.Servers); every request and the WebSocket go to the one
// that answered last and move on to the others when it cannot be reached
// (internal/apiclient, failover.go). All the nodes present the one pinned
// certificate: a node presenting another is an error, never skipped.

// MaxServers is the most URLs a home keeps.
const MaxServers = apiclient.MaxURLs

// ParseServers reads the server URLs a person gives: one, or several of
// one cluster separated by commas ("https://a:8443,https://b:8443"). Each
// is https://HOST[:PORT] (a trailing slash is dropped); plain http is
// refused (hush speaks only TLS to its server), as are paths, queries,
// user names, control characters, a URL given twice and more than
// MaxServers. The list is refused whole.
func ParseServers(s string) ([]string, error) {
	if !termsafe.IsLine(s) {
		return nil, fmt.Errorf("the server URLs may not contain control characters or invisible formatting characters: %q", s)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxServers {
		return nil, fmt.Errorf("at most %d server URLs, not %d", MaxServers, len(parts))
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("a server URL is empty in %q (give URLs separated by commas)", s)
		}
		u, err := url.Parse(p)
		switch {
		case err != nil || u.Host == "" || u.Opaque != "":
			return nil, fmt.Errorf("a server is https://HOST:PORT, not %q", p)
		case u.Scheme == "http":
			return nil, fmt.Errorf("%q is plain http: hush connects to its server only over TLS (https://)", p)
		case u.Scheme != "https":
			return nil, fmt.Errorf("a server is https://HOST:PORT, not %q", p)
		case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(p, "?") || strings.HasSuffix(p, "#"):
			return nil, fmt.Errorf("a server URL is only https://HOST:PORT, without a path, query or user name: %q", p)
		}
		if port := u.Port(); port != "" && !validPort(port) {
			return nil, fmt.Errorf("bad port in %q", p)
		}
		norm := "https://" + strings.ToLower(u.Host)
		if slices.Contains(out, norm) {
			return nil, fmt.Errorf("the server %s is given twice", norm)
		}
		out = append(out, norm)
	}
	return out, nil
}

func validPort(p string) bool {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}

// newAPI is the API client of a home's account: its servers, the one that
// answered last first (from the hint), and the hint rewritten when another
// one answers.
func newAPI(home string, a *store.Account, cred string, timeout time.Duration) (*apiclient.Client, error) {
	ac, err := apiclient.NewCluster(a.Servers, apiclient.Options{Fingerprint: a.Fingerprint, Credential: cred, Timeout: timeout,
		OnSwitch: func(base string) { writeServerHint(home, base, a.Fingerprint, a.Servers) }})
	if err != nil {
		return nil, err
	}
	if h, ok := readServerHint(home); ok && h.fingerprint == a.Fingerprint {
		ac.Prefer(h.current)
	}
	return ac, nil
}

// serverHint is a file in the home with the server's URLs and certificate
// fingerprint, none of them secret, so that a command can start
// connecting before the database is open, to the node that answered last.
// The database stays the authority: a connection to anything else is not
// used. Lines: the URL that answered last, the fingerprint, all the URLs
// separated by commas (a hint of before several servers has two lines).
const serverHint = "server"

type hint struct {
	current, fingerprint string
	servers              []string
}

func readServerHint(home string) (hint, bool) {
	b, err := os.ReadFile(filepath.Join(home, serverHint))
	if err != nil {
		return hint{}, false
	}
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) < 2 || len(ls) > 3 {
		return hint{}, false
	}
	h := hint{current: ls[0], fingerprint: ls[1], servers: []string{ls[0]}}
	if len(ls) == 3 {
		h.servers = strings.Split(ls[2], ",")
	}
	return h, true
}

// writeServerHint replaces the hint whole (a rename), so that a command
// starting meanwhile reads the old one or the new one.
func writeServerHint(home, current, fp string, servers []string) {
	// A file of its own for each writer: two requests may switch at once.
	f, err := os.CreateTemp(home, serverHint+".*.tmp")
	if err != nil {
		return
	}
	_, err = f.WriteString(current + "\n" + fp + "\n" + strings.Join(servers, ",") + "\n")
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(f.Name(), filepath.Join(home, serverHint))
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// Servers returns the URLs of the server's nodes, in order.
func (c *Client) Servers() []string { return c.Account().Servers }

// CurrentServer returns the server URL that answered last (tried first).
func (c *Client) CurrentServer() string { return c.api.Current() }

// ErrNoServerReached refuses a change of servers when none could be asked.
var ErrNoServerReached = errors.New("none of the servers could be reached, so none could show its certificate: nothing was changed")

// checkServers connects to each of servers, without a credential, and
// checks that it presents the certificate with fingerprint fp: any that
// presents another refuses the whole list; those that cannot be reached
// are returned; at least one must be reached.
func checkServers(ctx context.Context, servers []string, fp string) (unreachable []string, err error) {
	for _, s := range servers {
		ac, err := apiclient.New(s, apiclient.Options{Fingerprint: fp, Timeout: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		err = ac.Do(ctx, "GET", "/healthz", nil, nil)
		ac.CloseIdle()
		var ce *apiclient.CertificateError
		switch {
		case errors.As(err, &ce):
			return nil, fmt.Errorf("the server %s presents the certificate %s, not %s: nothing was changed", s, ce.Got, fp)
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			unreachable = append(unreachable, s)
		}
	}
	if len(unreachable) == len(servers) {
		return unreachable, ErrNoServerReached
	}
	return unreachable, nil
}

// SetServers replaces the server URLs (hush settings servers): for a
// cluster that gained or lost nodes, or moved behind other names. Each
// URL that can be reached must present the pinned certificate, and at
// least one must be reached; those that could not be are returned, kept.
// It must not run beside other calls on c.
func (c *Client) SetServers(ctx context.Context, list string) (unreachable []string, err error) {
	servers, err := ParseServers(list)
	if err != nil {
		return nil, err
	}
	if unreachable, err = checkServers(ctx, servers, c.acct.Fingerprint); err != nil {
		return unreachable, err
	}
	acct := *c.acct
	acct.Server, acct.Servers = servers[0], servers
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetAccount(ctx, &acct, c.st.Identity()) }); err != nil {
		return nil, err
	}
	return unreachable, c.reconnectAPI()
}

// reconnectAPI makes a new API client after the account's servers or
// fingerprint changed.
func (c *Client) reconnectAPI() error {
	c.acct = c.st.Account()
	cur := c.api.Current()
	ac, err := newAPI(c.st.Home(), c.acct, c.acct.Credential, 20*time.Second)
	if err != nil {
		return err
	}
	if !ac.Prefer(cur) {
		cur = c.acct.Servers[0]
	}
	c.api.CloseIdle()
	c.api = ac
	writeServerHint(c.st.Home(), cur, c.acct.Fingerprint, c.acct.Servers)
	return nil
}
