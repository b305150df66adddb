package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/termsafe"
	"github.com/hushmsg/hush/internal/tui"
)

func init() {
	commands = []*command{
		{name: "register", args: "--server URL[,URL...] [--server-fingerprint HEX] --user NAME",
			summary: "create an account on a hushd; this device becomes its secret device",
			help: `The password comes from HUSH_PASSWORD, or is asked for. The server's
certificate is pinned: give --server-fingerprint (hushd prints it at start,
and 'hushd fingerprint' prints it again), or confirm the fingerprint shown
when asked.

For a server of several nodes, give each node's URL, separated by commas:
hush uses the one that answered last and moves to another when a node
cannot be reached. Every node must present the pinned certificate.`,
			bind: flagged(func(fs *flag.FlagSet, f *registerFlags) {
				f.server.define(fs)
				fs.StringVar(&f.displayName, "display-name", "", "a display name")
				fs.StringVar(&f.deviceName, "device-name", "", "a name for this device, seen by the server and your other devices (none by default: it is listed as \"device N\")")
			}, runRegister)},
		{name: "link", args: "--server URL[,URL...] [--server-fingerprint HEX] (--code CODE | --user NAME [--recovery-code CODE])",
			summary: "add this home as another device of your account",
			help: `With --code: the code 'hush device add' shows on one of your devices. The
new device gets your account's key, your history and your contacts from
that device, end to end encrypted (the server only relays them), and takes
part in your ordinary conversations at once. A code works once and expires.

With --user and --recovery-code, when you lost every device: the password
(HUSH_PASSWORD, or asked for) and the recovery code you wrote down at
registration restore your account's key and ordinary history here. A wrong
code creates nothing.

With --user alone: a device added with the password only. It cannot read
your ordinary conversations (it does not get your account's key); it can
become your secret device ('hush device make-secret').

None of these makes the new device your secret device.`,
			bind: flagged(func(fs *flag.FlagSet, f *linkFlags) {
				f.server.define(fs)
				fs.StringVar(&f.code, "code", "", "the link `code` shown by 'hush device add' on one of your devices")
				fs.StringVar(&f.recoveryCode, "recovery-code", "", "your recovery `code`, to restore your account when you lost every device")
				fs.StringVar(&f.deviceName, "device-name", "", "a name for this device, seen by the server and your other devices (none by default: it is listed as \"device N\")")
			}, runLink)},
		{name: "send", args: "--to NAME [--secret [--timer DURATION]] [--file PATH]... TEXT... | --group GROUP TEXT...",
			summary: "send a message, in the ordinary conversation or (--secret) the secret one; --group: to a group",
			help: `Without --secret, the message goes to the ordinary conversation with NAME:
to every device of theirs, and a copy to each of your other devices.
Sending to yourself reaches only your other devices (a note to self).
With --secret, it goes to the secret conversation, between your secret
device and theirs, started if there is none (their prekey bundle, PQXDH).
TEXT is the arguments joined by spaces, or standard input if TEXT is "-".
With --timer (secret conversations only; 30s, 5m, 1h or 1d: 5s to 24h)
the message disappears that long after the server accepts it, here, and
after it is first shown, there. --timer off (the default) sends one that
stays; a zero timer is refused.
With --file (repeatable, up to 32 files of at most 100 MiB each) the files
go with the message, which may then have no TEXT: each is encrypted with a
key of its own and uploaded to the server, then the message naming them is
sent. A copy of each is kept in the home's files folder. If the upload is
interrupted, the same command again resumes it where it stopped. A
progress bar shows on standard error, when it is a terminal, for files
over 1 MiB.
With --group (a group's id or unique name: 'hush group list'), the message
goes to every device of every member of the group, your other devices
included.`,
			bind: flagged(func(fs *flag.FlagSet, f *sendFlags) {
				fs.Var((*filesFlag)(&f.files), "file", "send the file at `path` with the message (repeatable)")
				fs.StringVar(&f.group, "group", "", "send to the `group` (its id or its name)")
				fs.BoolVar(&f.secret, "secret", false, "send in the secret conversation (on your secret device and theirs only)")
				fs.StringVar(&f.to, "to", "", "the recipient's `username`")
				fs.Var((*timerFlag)(&f.timer), "timer", "make the message disappear after this `duration`: 30s, 5m, 1h or 1d (5s to 24h); off for none")
			}, runSend)},
		{name: "recv", args: "[--wait DURATION] [--follow] [--download-dir DIR]",
			summary: "receive waiting messages and print them",
			help: `Prints each message once, when it is first shown; the recipient's
countdown of a timed message starts then. With --follow, keeps listening
(and deletes messages as they expire) until interrupted.
Files that come with a message are downloaded, checked (a file whose
digest, tags or SHA-256 do not match is refused: nothing is saved, and a
notice says so) and saved in the home's files folder, or in --download-dir,
under the sender's name for them made safe, never replacing a file; a
disappearing message takes its files with it.`,
			bind: flagged(func(fs *flag.FlagSet, f *recvFlags) {
				fs.StringVar(&f.downloadDir, "download-dir", "", "save received files in this `folder` (default: the home's files folder)")
				fs.DurationVar(&f.wait, "wait", 0, "if nothing is waiting, wait up to this `duration` for a message")
				fs.BoolVar(&f.follow, "follow", false, "keep listening until interrupted")
			}, runRecv)},
		{name: "history", args: "[--secret | --ordinary] [--ids] NAME | --group GROUP [--ids]", summary: "show the conversations with NAME, or a group's",
			help: `Shows the ordinary and the secret conversation with NAME merged, oldest
first, each line of the secret one marked with 🔒; --ordinary or --secret
shows only that one. --ids starts each message's line with its id (what
'hush report' takes; --json always has it as "id"). --group GROUP shows the
group's conversation.`,
			bind: flagged(func(fs *flag.FlagSet, f *historyFlags) {
				fs.BoolVar(&f.ids, "ids", false, "start each message's line with its id")
				fs.StringVar(&f.group, "group", "", "the `group`'s conversation (its id or its name)")
				fs.IntVar(&f.limit, "limit", 0, "show only the last `n` messages")
				fs.BoolVar(&f.secret, "secret", false, "only the secret conversation")
				fs.BoolVar(&f.ordinary, "ordinary", false, "only the ordinary conversation")
			}, runHistory)},
		{name: "list", args: "", summary: "list conversations",
			bind: flagged(func(fs *flag.FlagSet, f *listFlags) {
				fs.BoolVar(&f.names, "names", false, "print only the names (for shell completion)")
			}, runList)},
		groupCommand(),
		{name: "chat", args: "[NAME]", summary: "open the terminal UI (on the conversation with NAME)", bind: plain(runChat)},
		{name: "safety-number", args: "NAME", summary: "print the safety number with NAME and its QR code",
			help: `Compare the 60 digits with NAME in person or over another channel you
trust (or let them scan the QR code); if they match, run 'hush verify NAME'.`,
			bind: flagged(func(fs *flag.FlagSet, f *safetyNumberFlags) {
				fs.BoolVar(&f.noQR, "no-qr", false, "do not print the QR code")
			}, runSafetyNumber)},
		{name: "verify", args: "NAME [SAFETY-NUMBER]", summary: "mark NAME's safety number verified",
			help: `Marks the key whose safety number 'hush safety-number NAME' shows as
verified. Given SAFETY-NUMBER (the 60 digits, spaces allowed), checks it
first. If a verified person's key changes later, sending to them waits
until you verify again or run 'hush trust NAME'.`,
			bind: plain(runVerify)},
		{name: "trust", args: "NAME", summary: "accept NAME's changed safety number without verifying it", bind: plain(runTrust)},
		{name: "device", args: "add [--wait D] | remove ID | list | make-secret [--force]", summary: "link, remove or list your devices; make this one the secret device",
			help: `add shows a one-time link code (text and QR code) and waits (--wait,
default 5m, at most 10m) for 'hush link --code CODE' on the new device; it
then sends that device your account's key, history key and contacts, end to
end encrypted. With --json the first line is {"code": "..."}.

remove ID removes another of your devices: the server stops serving it at
once, and your history key changes, so that it can read nothing stored
after. A device cannot remove itself.

make-secret gives this device a new identity key and makes it your
secret device: your secret conversations move here, and the device that
had them can no longer take part. People you talk to see your safety
number change. On the device that already is the secret device it asks
first (on a terminal) or needs --force.`,
			bind: flagged(func(fs *flag.FlagSet, f *deviceFlags) {
				fs.BoolVar(&f.force, "force", false, "make-secret: replace the identity key of the secret device without asking")
				fs.DurationVar(&f.wait, "wait", 5*time.Minute, "add: how long the code stays valid (at most 10m)")
			}, runDevice)},
		{name: "recovery-code", args: "", summary: "make a new recovery code (the old one stops working)",
			help: `Shows a new recovery code once: write it down. With it and your password,
'hush link --user NAME --recovery-code CODE' restores your account and its
ordinary history on a new device if you lose every device; without it, that
history is gone for good. The old code stops opening anything stored from
now on.`,
			bind: plain(runRecoveryCode)},
		{name: "passphrase", args: "set | remove", summary: "protect this home's keys with a passphrase, or stop",
			help: `By default the key that seals this home's secrets is in the file "key"
(mode 0600) beside the database. 'set' derives a key from a passphrase
(Argon2id) to protect it instead, and removes the file; hush then asks for
the passphrase (or reads HUSH_PASSPHRASE). 'remove' goes back to the file.`,
			bind: plain(runPassphrase)},
		{name: "block", args: "NAME", summary: "stop NAME reaching you, on all your devices",
			help: `The server drops what NAME sends you from now on and deletes what they had
queued for any of your devices; they are not told. Your devices also drop
what still arrives from them and send them no receipts or typing, and
sending to them is refused until 'hush unblock NAME'. What you received
from them before stays in your conversations.`,
			bind: plain(runBlock)},
		{name: "unblock", args: "NAME", summary: "let NAME reach you again", bind: plain(runUnblock)},
		{name: "report", args: "NAME MESSAGE_ID [--context N] [--reason TEXT]", summary: "report abuse: show the server's operator a message NAME sent you",
			help: `Sends the server's operator the message MESSAGE_ID that NAME sent you (its
id as 'hush history --ids NAME' or --json shows it), and with --context N up
to N of NAME's messages before it in the same conversation (at most 50).
The server checks each against its franking (docs/franking.md): it accepts
only messages NAME really sent you, as sent, each reported message once.
The operator learns those messages and nothing else; NAME is not told.
Messages from a hush from before franking, and disappeared ones, cannot be
reported. Consider 'hush block NAME' as well.`,
			bind: flagged(func(fs *flag.FlagSet, f *reportFlags) {
				fs.IntVar(&f.context, "context", 0, "also send up to `n` of their messages before it")
				fs.StringVar(&f.reason, "reason", "", "say why, in one line of `text` (at most 1,024 bytes)")
			}, runReport)},
		{name: "blocked", args: "", summary: "list the people you block", bind: plain(runBlocked)},
		{name: "settings", args: "[receipts on|off | typing on|off | servers URL[,URL...]]", summary: "show or change this device's settings",
			help: `Without arguments, shows the settings. 'receipts off' stops sending read
receipts from this device (the sender no longer sees when you read their
messages); 'receipts on' sends them again. Delivered receipts are always
sent. 'typing off' stops sending typing indicators from this device and
showing those of others (in hush chat); 'typing on' turns them back on.

'servers URL,URL...' replaces the server's URLs: the nodes of its
cluster, tried in this order (the one that answered last first). Each
one reached must present the pinned certificate; at least one must be
reached.`,
			bind: plain(runSettings)},
		{name: "status", args: "", summary: "show this device's account", bind: plain(runStatus)},
		{name: "server", args: "repin --server-fingerprint HEX", summary: "pin the server's new certificate, after its operator replaced it",
			help: `hush pins the server's certificate at registration and refuses any other,
since a different certificate may mean the connection is intercepted. When
the server's operator replaces the certificate, get the new fingerprint from
them (hushd prints it at start; 'hushd fingerprint' prints it again) and give
it here: hush connects, checks that the server presents exactly that
certificate, and only then pins it.`,
			bind: flagged(func(fs *flag.FlagSet, f *serverCmdFlags) {
				fs.StringVar(&f.fingerprint, "server-fingerprint", "", "SHA-256 fingerprint of the server's new certificate (`hex`)")
			}, runServer)},
		{name: "completion", args: "bash | zsh | fish", summary: "print a shell completion script", bind: plain(runCompletion)},
		{name: "help", args: "[COMMAND]", summary: "show help", bind: plain(runHelp)},
	}
}

// timerFlag is --timer, read by the parser the terminal UI's /timer uses.
type timerFlag time.Duration

func (f *timerFlag) String() string { return client.FormatTimer(time.Duration(*f)) }
func (f *timerFlag) Set(s string) error {
	d, err := client.ParseTimer(s)
	*f = timerFlag(d)
	return err
}

// filesFlag is a repeatable --file.
type filesFlag []string

func (f *filesFlag) String() string { return strings.Join(*f, ",") }
func (f *filesFlag) Set(s string) error {
	if s == "" {
		return errors.New("an empty path")
	}
	*f = append(*f, s)
	return nil
}

// The commands' flags, bound to typed fields.
type (
	serverFlags   struct{ url, fingerprint, user string }
	registerFlags struct {
		server                  serverFlags
		displayName, deviceName string
	}
	sendFlags struct {
		secret bool
		to     string
		group  string
		timer  time.Duration
		files  []string
	}
	recvFlags struct {
		wait        time.Duration
		follow      bool
		downloadDir string
	}
	historyFlags struct {
		limit            int
		secret, ordinary bool
		group            string
		ids              bool
	}
	reportFlags struct {
		context int
		reason  string
	}
	listFlags         struct{ names bool }
	safetyNumberFlags struct{ noQR bool }
	deviceFlags       struct {
		force bool
		wait  time.Duration
	}
	linkFlags struct {
		server                         serverFlags
		code, recoveryCode, deviceName string
	}
	serverCmdFlags struct{ fingerprint string }
)

func (f *serverFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "server", "", "the server, `https://HOST:PORT` (several nodes of one: separated by commas)")
	fs.StringVar(&f.fingerprint, "server-fingerprint", "", "SHA-256 fingerprint of the server's certificate (`hex`)")
	fs.StringVar(&f.user, "user", "", "your username (3-32 of a-z, 0-9, _)")
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// options are the engine's options for e.
func (e *env) options() client.Options {
	return client.Options{Passphrase: e.passphrase}
}

func (e *env) open(ctx context.Context) (*client.Client, error) {
	return client.Open(ctx, e.home, e.options())
}

// passphrase reads HUSH_PASSPHRASE or asks on the terminal.
func (e *env) passphrase() ([]byte, error) {
	if p := e.getenv("HUSH_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	p, err := e.secretPrompt("Passphrase for " + e.home + ": ")
	if err != nil {
		return nil, fmt.Errorf("this home is protected by a passphrase: set HUSH_PASSPHRASE or run hush in a terminal (%w)", err)
	}
	return p, nil
}

// terminal reports whether standard input and output are a terminal.
func (e *env) terminal() bool {
	in, ok1 := e.stdin.(*os.File)
	w := e.stdout
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap() // main's termsafe writer, around os.Stdout
	}
	out, ok2 := w.(*os.File)
	return ok1 && ok2 && term.IsTerminal(in.Fd()) && term.IsTerminal(out.Fd())
}

// interactive reports whether standard input is a terminal, to ask on.
func (e *env) interactive() bool {
	in, ok := e.stdin.(*os.File)
	return ok && term.IsTerminal(in.Fd())
}

// secretPrompt reads a line without echo from the terminal.
func (e *env) secretPrompt(prompt string) ([]byte, error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return nil, errors.New("no terminal to ask on")
	}
	fmt.Fprint(e.stderr, prompt)
	b, err := term.ReadPassword(f.Fd())
	fmt.Fprintln(e.stderr)
	return b, err
}

// line reads one line of standard input.
func (e *env) line() (string, error) {
	r := bufio.NewReader(e.stdin)
	s, err := r.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// printJSON prints one JSON object per line.
func (e *env) printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(e.stdout, "%s\n", termsafe.JSON(b))
}

// serverParams reads --server, --server-fingerprint (or confirms one),
// --user and the password.
// noPassword tells serverParams that neither a username nor a password
// is needed (linking by code: the code names the account).
const noPassword = true

func serverParams(ctx context.Context, e *env, f *serverFlags, skipPassword ...bool) (client.RegisterParams, error) {
	byCode := len(skipPassword) > 0 && skipPassword[0]
	p := client.RegisterParams{Fingerprint: strings.ToLower(strings.ReplaceAll(f.fingerprint, ":", "")), Username: f.user}
	if f.url == "" {
		return p, usagef("--server is required")
	}
	servers, err := client.ParseServers(f.url)
	if err != nil {
		return p, usagef("--server: %v", err)
	}
	p.Server = strings.Join(servers, ",")
	if p.Username == "" && !byCode {
		return p, usagef("--user is required")
	}
	if p.Fingerprint == "" {
		fp, err := probeServers(ctx, e, servers)
		if err != nil {
			return p, err
		}
		fmt.Fprintf(e.stderr, "The server's certificate fingerprint is\n\n    %s\n\n"+
			"Compare it with the one its operator gave you (hushd prints it). Type \"yes\" to trust it: ", fp)
		ans, err := e.line()
		if err != nil || ans != "yes" {
			return p, errors.New("the server was not confirmed; nothing was done (give --server-fingerprint to skip this question)")
		}
		p.Fingerprint = fp
	}
	if byCode {
		return p, nil
	}
	if pw := e.getenv("HUSH_PASSWORD"); pw != "" {
		p.Password = pw
	} else {
		pw, err := e.secretPrompt("Password for " + p.Username + ": ")
		if err != nil {
			return p, errors.New("set HUSH_PASSWORD, or run hush in a terminal to be asked for the password")
		}
		p.Password = string(pw)
	}
	return p, nil
}

// probeServers asks each server for its certificate's fingerprint, to
// show before trusting it: the nodes of one cluster present the same
// certificate, so two different ones refuse the list. Those that cannot be
// reached are said, and skipped.
func probeServers(ctx context.Context, e *env, servers []string) (string, error) {
	var fp string
	var errs []error
	for _, s := range servers {
		got, err := client.ProbeFingerprint(ctx, s)
		switch {
		case err != nil:
			errs = append(errs, err)
		case fp == "":
			fp = got
		case got != fp:
			return "", fmt.Errorf("the servers present different certificates (%s and %s): the nodes of one cluster present the same; nothing was done", fp, got)
		}
	}
	if fp == "" {
		return "", errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintf(e.stderr, "hush: warning: %v (its certificate is checked when it is reached)\n", err)
	}
	return fp, nil
}

func runRegister(ctx context.Context, e *env, f *registerFlags, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	p, err := serverParams(ctx, e, &f.server)
	if err != nil {
		return err
	}
	p.DisplayName, p.DeviceName = f.displayName, f.deviceName
	c, err := client.Register(ctx, e.home, p, e.options())
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		return err
	}
	code, err := c.NewRecoveryCode(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "hush: warning: no recovery code yet (%v): run 'hush recovery-code'\n", err)
		return printStatus(ctx, e, c, true)
	}
	return printRegistered(ctx, e, c, code.String())
}

func printStatus(ctx context.Context, e *env, c *client.Client, secret bool) error {
	a := c.Account()
	ordinary, err := c.TakesPartInOrdinary(ctx)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"user": a.Username, "device": a.DeviceID, "server": c.CurrentServer(), "servers": a.Servers,
			"server_fingerprint": a.Fingerprint, "secret": secret, "ordinary": ordinary, "home": e.home})
		return nil
	}
	fmt.Fprintf(e.stdout, "%s, device %d on %s", a.Username, a.DeviceID, strings.Join(a.Servers, ", "))
	if secret {
		fmt.Fprintln(e.stdout, " (the secret device)")
	} else {
		fmt.Fprintln(e.stdout, " (not the secret device)")
	}
	if len(a.Servers) > 1 {
		fmt.Fprintf(e.stdout, "Through %s (the node that answered last; hush moves to another when one cannot be reached).\n", c.CurrentServer())
	}
	if !ordinary {
		fmt.Fprintln(e.stdout, "Not in your ordinary conversations yet: this device does not hold your account's key (link it by code: hush device add on another device).")
	}
	return nil
}

func runStatus(ctx context.Context, e *env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// The server knows whether another device took over.
	secret, err := c.CheckSecret(ctx)
	if errors.Is(err, client.ErrUnreachable) {
		fmt.Fprintf(e.stderr, "hush: warning: %v; this is what this device knew when it last reached the server\n", err)
		err = nil
	}
	if err != nil {
		return err
	}
	return printStatus(ctx, e, c, secret)
}

func runSend(ctx context.Context, e *env, f *sendFlags, args []string) error {
	to := client.NormalizeUsername(f.to)
	switch {
	case to == "" && f.group == "":
		return usagef("--to NAME is required (or --group GROUP)")
	case to != "" && f.group != "":
		return usagef("give --to or --group, not both")
	case f.group != "" && (f.secret || f.timer != 0):
		return usagef("--secret and --timer are not for groups: a group is an ordinary conversation")
	case f.group != "" && len(f.files) > 0:
		return usagef("--file does not go to groups yet")
	}
	if len(args) == 0 && len(f.files) == 0 {
		return usagef("the message TEXT is missing")
	}
	if !f.secret && f.timer != 0 {
		return usagef("--timer needs --secret: only messages of secret conversations disappear")
	}
	text := strings.Join(args, " ")
	if len(args) == 1 && args[0] == "-" {
		// One byte more than a message may hold (and its final newline)
		// tells a message too long from one that fits.
		limit := int64(client.MaxText + 2)
		b, err := io.ReadAll(io.LimitReader(e.stdin, limit))
		if err != nil {
			return err
		}
		text = strings.TrimRight(string(b), "\n")
		if int64(len(b)) == limit && len(text) > client.MaxText {
			return usagef("standard input holds more than %d bytes; a message is at most %d bytes", client.MaxText, client.MaxText)
		}
	}
	timer := f.timer
	if len(f.files) == 0 || text != "" {
		if err := client.CheckText(text, timer); err != nil {
			return usagef("%v", err)
		}
	}
	// Files are checked before anything is opened or uploaded.
	if err := client.CheckFiles(f.files); err != nil {
		return err
	}
	o := e.options()
	o.Prewarm = true
	bar := e.progressBar()
	o.Progress = bar.update
	c, err := client.Open(ctx, e.home, o)
	if err != nil {
		return err
	}
	defer c.Close()
	var m *client.Message
	if f.group != "" {
		m, err = c.SendGroup(ctx, f.group, text)
		if m != nil && (err == nil || isQueued(err)) {
			g := newGroupNames(c).lookup(ctx, m.Peer)
			if e.json {
				o := map[string]any{"id": m.MsgID.String(), "group": map[string]string{"id": g.ID, "name": g.Name}, "text": m.Body,
					"sent_at": ms(m.SentAt), "state": m.State.String()}
				e.printJSON(o)
			} else if m.State == client.StateSent {
				fmt.Fprintf(e.stdout, "sent to the group %s\n", termsafe.Line(g.Name))
			} else {
				fmt.Fprintf(e.stdout, "queued for the group %s\n", termsafe.Line(g.Name))
			}
		}
		return err
	}
	switch {
	case len(f.files) > 0:
		m, err = c.SendFiles(ctx, to, text, timer, f.secret, f.files)
	case f.secret:
		m, err = c.Send(ctx, to, text, timer)
	default:
		m, err = c.SendOrdinary(ctx, to, text)
	}
	bar.done()
	if m != nil && (err == nil || isQueued(err)) {
		printSent(e, m)
	}
	return err
}

func isQueued(err error) bool {
	var q *client.QueuedError
	return errors.As(err, &q)
}

func printSent(e *env, m *client.Message) {
	if e.json {
		o := map[string]any{"id": m.MsgID.String(), "to": m.Peer, "text": m.Body, "secret": m.Secret,
			"sent_at": ms(m.SentAt), "state": m.State.String()}
		if m.Timer > 0 {
			o["timer"] = int64(m.Timer / time.Second)
		}
		if !m.ExpiresAt.IsZero() {
			o["expires_at"] = ms(m.ExpiresAt)
		}
		if len(m.Attachments) > 0 {
			o["attachments"] = attachmentsJSON(m.Attachments)
		}
		e.printJSON(o)
		return
	}
	switch m.State {
	case client.StateSent:
		fmt.Fprintf(e.stdout, "sent to %s", m.Peer)
	default:
		fmt.Fprintf(e.stdout, "queued for %s", m.Peer)
	}
	if m.Timer > 0 {
		fmt.Fprintf(e.stdout, " (disappears in %v)", m.Timer)
	}
	fmt.Fprintln(e.stdout)
	for _, a := range m.Attachments {
		fmt.Fprintln(e.stdout, attachmentLine(a, m.Outgoing))
	}
}

// attachmentsJSON is the JSON form of a message's files: name (as saved,
// made safe), size, the plaintext's SHA-256 in hex, and path (the saved
// file; empty when it is not saved: state says why).
func attachmentsJSON(as []client.Attachment) []map[string]any {
	out := make([]map[string]any, len(as))
	for i, a := range as {
		out[i] = map[string]any{"name": content.FileName(a.Name), "size": a.Size, "sha256": hex.EncodeToString(a.SHA256[:]),
			"path": a.Path, "state": a.State.String()}
	}
	return out
}

// attachmentLine is one file of a message as recv and history print it,
// indented under it.
func attachmentLine(a client.Attachment, outgoing bool) string {
	line := fmt.Sprintf("    [file] %s (%s)", content.FileName(a.Name), client.FormatSize(a.Size))
	switch {
	case a.State == client.AttachSaved && outgoing:
		return line + ", a copy in " + a.Path
	case a.State == client.AttachSaved:
		return line + ", saved as " + a.Path
	case a.State == client.AttachRefused:
		return line + ", refused: nothing was saved"
	}
	return line + ", not downloaded yet (the next recv tries again)"
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// stateMark is what follows an outgoing line in recv and history: its
// state (docs/multidevice.md section 5: ✓ sent, ✓✓ delivered, ✓✓ read).
func stateMark(s client.State) string {
	switch s {
	case client.StatePending:
		return "  [queued]"
	case client.StateFailed:
		return "  [not sent]"
	case client.StateSent:
		return "  ✓"
	case client.StateDelivered:
		return "  ✓✓"
	case client.StateRead:
		return "  ✓✓ read"
	}
	return ""
}

// runSettings shows the settings, or changes one.
func runSettings(ctx context.Context, e *env, args []string) error {
	var set, on bool
	var servers string
	switch {
	case len(args) == 0:
	case len(args) == 2 && (args[0] == "receipts" || args[0] == "typing") && (args[1] == "on" || args[1] == "off"):
		set, on = true, args[1] == "on"
	case len(args) == 2 && args[0] == "servers":
		servers = args[1]
		if _, err := client.ParseServers(servers); err != nil {
			return usagef("servers: %v", err)
		}
	default:
		return usagef("give no argument, or receipts on|off, or typing on|off, or servers URL[,URL...]")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if set && args[0] == "receipts" {
		err = c.SetReadReceipts(ctx, on)
	} else if set {
		err = c.SetTypingIndicators(ctx, on)
	}
	if err != nil {
		return err
	}
	if servers != "" {
		unreachable, err := c.SetServers(ctx, servers)
		if err != nil {
			return err
		}
		for _, u := range unreachable {
			fmt.Fprintf(e.stderr, "hush: warning: %s could not be reached; it is kept, and its certificate is checked when it is reached\n", u)
		}
	}
	receipts, err := c.ReadReceipts(ctx)
	if err != nil {
		return err
	}
	typing, err := c.TypingIndicators(ctx)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"receipts": receipts, "typing": typing, "servers": c.Servers()})
		return nil
	}
	word := "off (read receipts are not sent)"
	if receipts {
		word = "on (read receipts are sent)"
	}
	fmt.Fprintf(e.stdout, "receipts: %s\n", word)
	word = "off (typing indicators are neither sent nor shown)"
	if typing {
		word = "on (typing indicators are sent and shown)"
	}
	fmt.Fprintf(e.stdout, "typing: %s\n", word)
	fmt.Fprintf(e.stdout, "servers: %s\n", strings.Join(c.Servers(), ", "))
	return nil
}

// messageJSON is the JSON form of a message, in recv and history; g is
// its group, or nil.
func messageJSON(m *client.Message, self string, g *client.Group) map[string]any {
	o := map[string]any{"seq": m.ID, "kind": m.Kind.String(), "secret": m.Secret, "text": m.Body, "sent_at": ms(m.SentAt)}
	if m.Device != 0 {
		o["device"] = m.Device // the sending device
	}
	if m.Kind == client.KindNotice {
		o["id"] = fmt.Sprintf("notice-%d", m.ID)
		o["from"] = "hush"
		o["peer"] = m.Peer
	} else {
		o["id"] = m.MsgID.String()
		if m.Outgoing {
			o["from"], o["to"] = self, m.Peer
			o["state"] = m.State.String()
		} else {
			o["from"], o["to"] = m.Peer, self
		}
	}
	if m.Timer > 0 {
		o["timer"] = int64(m.Timer / time.Second)
	}
	if !m.ExpiresAt.IsZero() {
		o["expires_at"] = ms(m.ExpiresAt)
	}
	if len(m.Attachments) > 0 {
		o["attachments"] = attachmentsJSON(m.Attachments)
	}
	if g != nil {
		// A group's line: from its sender, to the group.
		o["group"] = map[string]string{"id": g.ID, "name": g.Name}
		delete(o, "to")
		delete(o, "peer")
		if m.Kind != client.KindNotice && !m.Outgoing {
			o["from"] = m.Sender
		}
	}
	return o
}

// clock is when t is, local time: the time of day if t is today, the date
// too if not.
func clock(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// messageText is a message as recv and history print it: one line that
// starts with the time, and the body's further lines indented, so that no
// line of a body can pass for a message or a notice. Names and body go
// through termsafe (so does everything printed: see main). g is the
// line's group, or nil: a group's lines start with its name in brackets,
// and say who sent them.
func messageText(m *client.Message, self string, g *client.Group) string {
	ts := m.At.Local().Format("2006-01-02 15:04:05")
	if m.Secret {
		ts += "  🔒"
	}
	body := strings.ReplaceAll(termsafe.Text(m.Body), "\n", "\n    | ")
	peer := termsafe.Line(m.Peer)
	if g != nil {
		ts += "  [" + termsafe.Line(g.Name) + "]"
		peer = "the group"
		if !m.Outgoing {
			peer = termsafe.Line(m.Sender)
		}
	}
	if m.Kind == client.KindNotice {
		return fmt.Sprintf("%s  * %s", ts, body)
	}
	var b strings.Builder
	if m.Outgoing {
		fmt.Fprintf(&b, "%s  %s -> %s: %s", ts, termsafe.Line(self), peer, body)
		b.WriteString(stateMark(m.State))
	} else {
		fmt.Fprintf(&b, "%s  %s: %s", ts, peer, body)
	}
	if !m.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, "  (disappears at %s)", clock(m.ExpiresAt, time.Now()))
	} else if m.Timer > 0 {
		fmt.Fprintf(&b, "  (disappears %v after it is shown)", m.Timer)
	}
	for _, a := range m.Attachments {
		b.WriteString("\n" + attachmentLine(a, m.Outgoing))
	}
	return b.String()
}

func runRecv(ctx context.Context, e *env, f *recvFlags, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if f.downloadDir != "" {
		d, err := filepath.Abs(f.downloadDir)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return usagef("--download-dir %s: not a folder", f.downloadDir)
		}
		f.downloadDir = d
	}
	opts := e.options()
	bar := e.progressBar()
	defer bar.done()
	opts.Progress = bar.update
	c, err := client.Open(ctx, e.home, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	self := c.Account().Username
	groups := newGroupNames(c)
	var herr error
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	o := client.ReceiveOptions{Follow: f.follow, Wait: f.wait, DownloadDir: f.downloadDir,
		Warn: func(err error) { fmt.Fprintf(e.stderr, "hush: warning: %v%s\n", err, hint(err)) }}
	o.Handle = func(m *client.Message) {
		// Stopped (Ctrl-C), or a line printed could not be recorded as
		// shown: print no more, or the next recv would print them again.
		if ctx.Err() != nil {
			return
		}
		// Shown now: the countdown of a timed message starts as it is
		// printed. The line goes out before the shown mark is committed, so
		// a crash in between prints it again (same id), never loses it.
		now := time.Now().Truncate(time.Millisecond)
		if m.Timer > 0 && m.ExpiresAt.IsZero() {
			m.ExpiresAt = now.Add(m.Timer)
		}
		if e.json {
			e.printJSON(messageJSON(m, self, groups.lookup(ctx, m.Peer)))
		} else {
			fmt.Fprintln(e.stdout, messageText(m, self, groups.lookup(ctx, m.Peer)))
		}
		// A line printed is recorded as shown even if recv is being
		// stopped right now.
		if err := c.MarkShownAt(context.WithoutCancel(ctx), now, m.ID); err != nil {
			herr = fmt.Errorf("recording that a message was shown: %w", err)
			stop()
		}
	}
	err = c.Receive(ctx, o)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, herr)
}

func runHistory(ctx context.Context, e *env, f *historyFlags, args []string) error {
	switch {
	case f.group != "" && (len(args) != 0 || f.secret || f.ordinary):
		return usagef("--group GROUP takes no NAME, --secret or --ordinary")
	case f.group == "" && len(args) != 1:
		return usagef("give one NAME")
	case f.secret && f.ordinary:
		return usagef("give --secret or --ordinary, not both")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	groups := newGroupNames(c)
	var ms []*client.Message
	if f.group != "" {
		g, err := c.FindGroup(ctx, f.group)
		if err != nil {
			return err
		}
		args = []string{g.Name}
		ms, err = c.Conversation(ctx, g.Peer(), false, f.limit)
		if err != nil {
			return err
		}
	} else if f.secret || f.ordinary {
		ms, err = c.Conversation(ctx, args[0], f.secret, f.limit)
	} else {
		ms, err = c.History(ctx, args[0], f.limit)
	}
	if err != nil {
		return err
	}
	self := c.Account().Username
	if len(ms) == 0 && !e.json {
		fmt.Fprintf(e.stderr, "no messages with %s\n", termsafe.Line(client.NormalizeUsername(args[0])))
	}
	for _, m := range ms {
		if e.json {
			e.printJSON(messageJSON(m, self, groups.lookup(ctx, m.Peer)))
		} else if f.ids && m.Kind != client.KindNotice {
			fmt.Fprintf(e.stdout, "%s  %s\n", m.MsgID, messageText(m, self, groups.lookup(ctx, m.Peer)))
		} else {
			fmt.Fprintln(e.stdout, messageText(m, self, groups.lookup(ctx, m.Peer)))
		}
	}
	return nil
}

func runList(ctx context.Context, e *env, f *listFlags, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	o := e.options()
	if f.names {
		// Shell completion runs this with the terminal as standard input:
		// it must never wait on a prompt nobody sees.
		o.Passphrase = func() ([]byte, error) {
			if p := e.getenv("HUSH_PASSPHRASE"); p != "" {
				return []byte(p), nil
			}
			return nil, errors.New("this home is protected by a passphrase: set HUSH_PASSPHRASE (list --names never asks)")
		}
	}
	c, err := client.Open(ctx, e.home, o)
	if err != nil {
		return err
	}
	defer c.Close()
	convs, err := c.Conversations(ctx)
	if err != nil {
		return err
	}
	named := map[string]bool{}
	groups := newGroupNames(c)
	for _, cv := range convs {
		if g := groups.lookup(ctx, cv.Peer); g != nil {
			switch {
			case f.names:
			case e.json:
				e.printJSON(map[string]any{"group": map[string]string{"id": g.ID, "name": g.Name}, "secret": false, "last": ms(cv.Last), "messages": cv.Messages, "unshown": cv.Unshown})
			default:
				fmt.Fprintf(e.stdout, "%-20s group      %3d messages  %3d new  last %s\n", termsafe.Line(g.Name), cv.Messages, cv.Unshown,
					cv.Last.Local().Format("2006-01-02 15:04"))
			}
			continue
		}
		if f.names {
			if !named[cv.Peer] {
				named[cv.Peer] = true
				fmt.Fprintln(e.stdout, termsafe.Line(cv.Peer))
			}
			continue
		}
		ct, _ := c.Contact(ctx, cv.Peer)
		verified, changed := ct != nil && ct.Verified, ct != nil && (ct.NeedsConfirm || ct.Pending != nil)
		if e.json {
			o := map[string]any{"peer": cv.Peer, "secret": cv.Secret, "last": ms(cv.Last), "messages": cv.Messages, "unshown": cv.Unshown}
			if cv.Secret {
				o["verified"], o["safety_number_changed"] = verified, changed
			}
			e.printJSON(o)
			continue
		}
		if !cv.Secret {
			fmt.Fprintf(e.stdout, "%-20s ordinary   %3d messages  %3d new  last %s\n", termsafe.Line(cv.Peer), cv.Messages, cv.Unshown,
				cv.Last.Local().Format("2006-01-02 15:04"))
			continue
		}
		flags := ""
		if verified {
			flags += " verified"
		}
		if changed {
			flags += " SAFETY-NUMBER-CHANGED"
		}
		fmt.Fprintf(e.stdout, "%-20s 🔒 secret  %3d messages  %3d new  last %s%s\n", termsafe.Line(cv.Peer), cv.Messages, cv.Unshown,
			cv.Last.Local().Format("2006-01-02 15:04"), flags)
	}
	return nil
}

func runSafetyNumber(ctx context.Context, e *env, f *safetyNumberFlags, args []string) error {
	if len(args) != 1 {
		return usagef("give one NAME")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sn, err := c.SafetyNumber(ctx, args[0])
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"name": sn.Name, "safety_number": sn.Digits, "verified": sn.Verified,
			"changed": sn.Changed, "scannable": sn.Scannable})
		return nil
	}
	fmt.Fprintf(e.stdout, "Safety number with %s:\n\n", sn.Name)
	g := strings.Fields(sn.Grouped())
	for i := 0; i < len(g); i += 4 {
		fmt.Fprintf(e.stdout, "    %s\n", strings.Join(g[i:min(i+4, len(g))], "  "))
	}
	fmt.Fprintln(e.stdout)
	if !f.noQR {
		q, err := qrText(sn.Scannable)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, q)
	}
	switch {
	case sn.Changed:
		fmt.Fprintf(e.stdout, "This is a NEW safety number: %s's key changed. If it matches theirs, run hush verify %s.\n", sn.Name, sn.Name)
	case sn.Verified:
		fmt.Fprintln(e.stdout, "You have verified this safety number.")
	default:
		fmt.Fprintf(e.stdout, "Not verified. If it matches %s's, run hush verify %s.\n", sn.Name, sn.Name)
	}
	return nil
}

func runVerify(ctx context.Context, e *env, args []string) error {
	if len(args) < 1 {
		return usagef("give a NAME")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sn, err := c.Verify(ctx, args[0], strings.Join(args[1:], ""))
	var typo *client.NotANumberError
	switch {
	case errors.As(err, &typo):
		return fmt.Errorf("%w; nothing was verified.\nCompare the whole number with %s's: 'hush safety-number %s' shows it; then run 'hush verify %s' (or give all 60 digits)",
			err, sn.Name, sn.Name, sn.Name)
	case errors.Is(err, client.ErrNumberMismatch):
		return fmt.Errorf("%w.\nNothing was verified. Check with %s, over a channel you trust, that you both see the number 'hush safety-number %s' shows",
			err, sn.Name, sn.Name)
	case err != nil:
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"name": sn.Name, "safety_number": sn.Digits, "verified": true})
		return nil
	}
	fmt.Fprintf(e.stdout, "%s is verified (safety number %s).\n", sn.Name, sn.Grouped())
	return nil
}

func runTrust(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return usagef("give one NAME")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Trust(ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s's new safety number is accepted (not verified).\n", client.NormalizeUsername(args[0]))
	return nil
}

// confirmMakeSecret asks before make-secret replaces the identity key of
// the device that already is the secret device: asked on a terminal,
// refused without one, unless force.
func confirmMakeSecret(ctx context.Context, e *env, c *client.Client, force bool) error {
	secret, err := c.CheckSecret(ctx)
	if err != nil || !secret || force {
		return err
	}
	const what = "this device is already your secret device: make-secret would replace its identity key, " +
		"everyone you talk to would see your safety number change, and those who verified it would have to verify again"
	if !e.interactive() {
		return errors.New(what + "; nothing was done (add --force to do it anyway)")
	}
	fmt.Fprintf(e.stderr, "%s%s.\nType \"yes\" to go on: ", strings.ToUpper(what[:1]), what[1:])
	if ans, err := e.line(); err != nil || ans != "yes" {
		return errors.New("nothing was done")
	}
	return nil
}

func runDevice(ctx context.Context, e *env, f *deviceFlags, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "add":
		return runDeviceAdd(ctx, e, f)
	case len(args) == 2 && args[0] == "remove":
		return runDeviceRemove(ctx, e, args[1])
	case len(args) != 1 || (args[0] != "make-secret" && args[0] != "list"):
		return usagef("give add, remove ID, list or make-secret")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "make-secret" {
		if err := confirmMakeSecret(ctx, e, c, f.force); err != nil {
			return err
		}
		if err := c.MakeSecret(ctx); err != nil {
			return err
		}
		if e.json {
			e.printJSON(map[string]any{"device": c.Account().DeviceID, "secret": true})
		} else {
			fmt.Fprintf(e.stdout, "device %d is now your secret device, with a new identity key: the people you talk to will see your safety number change.\n", c.Account().DeviceID)
		}
		return nil
	}
	devs, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if e.json {
			e.printJSON(map[string]any{"id": d.ID, "name": d.Name, "secret": d.Secret, "ordinary": d.Ordinary, "this": d.ID == c.Account().DeviceID,
				"created": d.Created, "last_seen": d.LastSeen})
			continue
		}
		mark := ""
		if d.Secret {
			mark += " (secret)"
		}
		if !d.Ordinary {
			mark += " (no ordinary conversations)"
		}
		if d.ID == c.Account().DeviceID {
			mark += " (this device)"
		}
		name := termsafe.Line(d.Name)
		if name == "" {
			name = fmt.Sprintf("device %d", d.ID)
		}
		fmt.Fprintf(e.stdout, "%3d  %s%s\n", d.ID, name, mark)
	}
	return nil
}

func runPassphrase(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 || (args[0] != "set" && args[0] != "remove") {
		return usagef("give set or remove")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "remove" {
		if err := c.SetPassphrase(ctx, nil); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "The passphrase is removed: the key is in the key file again.")
		return nil
	}
	var pass []byte
	if p := e.getenv("HUSH_NEW_PASSPHRASE"); p != "" {
		pass = []byte(p)
	} else {
		p1, err := e.secretPrompt("New passphrase: ")
		if err != nil {
			return errors.New("set HUSH_NEW_PASSPHRASE, or run hush in a terminal to be asked")
		}
		p2, err := e.secretPrompt("Again: ")
		if err != nil || string(p1) != string(p2) {
			return errors.New("the two passphrases differ")
		}
		pass = p1
	}
	if err := c.SetPassphrase(ctx, pass); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "The passphrase is set; the key file is removed.")
	return nil
}

func runChat(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usagef("give at most one NAME")
	}
	if !e.terminal() {
		return errors.New("hush chat needs a terminal (standard input and output); from a script, use hush send and hush recv --follow")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	peer := ""
	if len(args) == 1 {
		peer = client.NormalizeUsername(args[0])
	}
	return tui.Run(ctx, c, peer)
}

func runHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stdout)
		return nil
	}
	c := lookup(args[0])
	if c == nil {
		return usagef("no command %q", args[0])
	}
	fs, _ := c.flagSet(&env{home: e.home})
	commandUsage(e.stdout, c, fs)
	return nil
}

// presents says that the servers present a certificate: each one
// reached (client.Repin).
func presents(servers []string) string {
	if len(servers) == 1 {
		return servers[0] + " presents"
	}
	return strings.Join(servers, ", ") + " present (each one reached)"
}

func runServer(ctx context.Context, e *env, f *serverCmdFlags, args []string) error {
	if len(args) != 1 || args[0] != "repin" {
		return usagef("give repin")
	}
	if f.fingerprint == "" {
		return usagef("--server-fingerprint HEX is required: the new certificate's fingerprint, from the server's operator")
	}
	fp, err := client.NormalizeFingerprint(f.fingerprint)
	if err != nil {
		return usagef("--server-fingerprint: %v", err)
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	old := c.Account().Fingerprint
	if err := c.Repin(ctx, fp); err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"server": c.Account().Server, "server_fingerprint": fp, "previous": old})
		return nil
	}
	if old == fp {
		fmt.Fprintf(e.stdout, "%s the pinned certificate %s; nothing changed.\n", presents(c.Servers()), fp)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s the certificate %s, and it is pinned now (it was %s).\n", presents(c.Servers()), fp, old)
	return nil
}
