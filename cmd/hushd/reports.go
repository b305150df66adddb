package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/franking"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/termsafe"
)

// frankingKeysPath is the keyring file: --franking-keys, or franking-keys
// in the data folder.
func frankingKeysPath(c config) string {
	if c.frankingKeys != "" {
		return c.frankingKeys
	}
	return filepath.Join(c.data, franking.KeyringFile)
}

// frankingKey runs `hushd franking-key rotate`: a fresh key becomes the
// one that tags new messages; the old ones stay to verify reports of the
// messages they tagged (docs/operations.md, "Franking keys").
func frankingKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return usageError{errors.New("usage: hushd franking-key rotate --data DIR [--franking-keys FILE]")}
	}
	var c config
	err := parse("hushd franking-key rotate", args[1:], stderr, &c, func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.data, "data", defaultDataDir(), "data `folder` (env HUSHD_DATA)")
		envs["data"] = "HUSHD_DATA"
		fs.StringVar(&c.frankingKeys, "franking-keys", "", "keyring `file`, if not in the data folder (env HUSHD_FRANKING_KEYS)")
		envs["franking-keys"] = "HUSHD_FRANKING_KEYS"
	})
	if err != nil {
		return err
	}
	path := frankingKeysPath(c)
	r, err := franking.Rotate(path, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "franking key %d added to %s; a running hushd uses it after SIGHUP (or a restart); keys 1-%d still verify reports\n",
		r.Current().ID, path, r.Current().ID)
	return nil
}

// reports runs `hushd reports list|show`: the operator reads abuse reports,
// and nothing else, from the store hushd serves from (SQLite in --data, or
// PostgreSQL with --store, as `hushd migrate`). Everything a reporter or a
// reported person wrote passes through termsafe. With --json, list prints
// one object per line, oldest first; show prints one.
func reports(args []string, stdout, stderr io.Writer) error {
	const usage = "usage: hushd reports list [--json] | hushd reports show ID [--json]  (--data DIR, or --store URL)"
	if len(args) == 0 || args[0] != "list" && args[0] != "show" {
		return usageError{errors.New(usage)}
	}
	cmd, rest := args[0], args[1:]
	var id int64
	if cmd == "show" {
		if len(rest) == 0 {
			return usageError{errors.New(usage)}
		}
		var err error
		if id, err = strconv.ParseInt(rest[0], 10, 64); err != nil || id <= 0 {
			return usageError{fmt.Errorf("report id %q: want a positive number", termsafe.Line(rest[0]))}
		}
		rest = rest[1:]
	}
	var c config
	var asJSON bool
	err := parse("hushd reports "+cmd, rest, stderr, &c, func(fs *flag.FlagSet, c *config) {
		fs.StringVar(&c.data, "data", defaultDataDir(), "data `folder` of the hushd (env HUSHD_DATA)")
		envs["data"] = "HUSHD_DATA"
		fs.StringVar(&c.storeURL, "store", "", "PostgreSQL `URL`, for a cluster (env HUSHD_STORE)")
		envs["store"] = "HUSHD_STORE"
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	if c.storeURL == "" {
		// Never make an empty database where none was.
		if _, err := os.Stat(filepath.Join(c.data, "hushd.db")); err != nil {
			return fmt.Errorf("no hushd database in %s (--data), and no --store", c.data)
		}
	}
	st, err := openStore(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cmd == "show" {
		r, err := st.Report(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no report %d", id)
		} else if err != nil {
			return err
		}
		v, err := reportView(r, true)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, v)
		}
		printReport(stdout, v)
		return nil
	}
	var all []jsonReport
	for after := int64(0); ; {
		rs, err := st.Reports(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, r := range rs {
			v, err := reportView(r, false)
			if err != nil {
				return err
			}
			all = append(all, v)
			after = r.ID
		}
		if len(rs) < 500 {
			break
		}
	}
	if asJSON {
		for _, v := range all {
			if err := writeJSON(stdout, v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(all) == 0 {
		fmt.Fprintln(stdout, "no reports")
		return nil
	}
	for _, v := range all {
		reason := v.Reason
		if len(reason) > 60 {
			reason = reason[:57] + "..."
		}
		fmt.Fprintf(stdout, "%d  %s  %s reported %s (%d message%s)  %s\n", v.ID, v.Created.UTC().Format(time.RFC3339),
			termsafe.Line(v.Reporter), termsafe.Line(v.Reported), v.Count, plural(v.Count), termsafe.Line(reason))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// jsonReport is a report as `hushd reports` prints it.
type jsonReport struct {
	ID             int64     `json:"id"`
	Created        time.Time `json:"created"`
	Reporter       string    `json:"reporter"`
	ReporterDevice uint32    `json:"reporterDevice"`
	Reported       string    `json:"reported"`
	Reason         string    `json:"reason,omitempty"`
	Count          int       `json:"messages"`
	// Messages, with show: the reported one first, then those before it.
	Messages []jsonReported `json:"reportedMessages,omitempty"`
}

// jsonReported is one message of a report as the server verified it.
type jsonReported struct {
	From       string    `json:"from"`
	FromDevice uint32    `json:"fromDevice"`
	ToDevice   uint32    `json:"toDevice"`
	Received   time.Time `json:"received"` // the server's time
	SentAt     time.Time `json:"sentAt"`   // the sender's clock
	Body       string    `json:"body"`
	Timer      int64     `json:"timer,omitempty"` // seconds
	KeyID      uint32    `json:"keyId"`
}

func reportView(r store.Report, full bool) (jsonReport, error) {
	sr, err := server.ParseStoredReport(r.Body)
	if err != nil {
		return jsonReport{}, fmt.Errorf("report %d: %w", r.ID, err)
	}
	v := jsonReport{ID: r.ID, Created: time.UnixMilli(r.Created).UTC(), Reporter: sr.Reporter, ReporterDevice: sr.ReporterDevice,
		Reason: sr.Reason, Count: len(sr.Messages)}
	if len(sr.Messages) > 0 {
		v.Reported = sr.Messages[0].From
	}
	if !full {
		return v, nil
	}
	for _, m := range sr.Messages {
		jm := jsonReported{From: m.From, FromDevice: m.FromDevice, ToDevice: m.ToDevice, Received: time.UnixMilli(m.Timestamp).UTC(), KeyID: m.Franking.KeyID}
		// The server parsed it before storing it.
		if cm, err := content.Parse(m.Content); err == nil {
			jm.Body, jm.SentAt, jm.Timer = cm.Body, cm.SentAt.UTC(), int64(cm.Timer/time.Second)
		}
		v.Messages = append(v.Messages, jm)
	}
	return v, nil
}

func printReport(w io.Writer, v jsonReport) {
	fmt.Fprintf(w, "report %d, %s\n", v.ID, v.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "reporter: %s (device %d)\n", termsafe.Line(v.Reporter), v.ReporterDevice)
	fmt.Fprintf(w, "reported: %s\n", termsafe.Line(v.Reported))
	if v.Reason != "" {
		fmt.Fprintf(w, "reason:   %s\n", termsafe.Line(v.Reason))
	}
	for i, m := range v.Messages {
		what := "reported message"
		if i > 0 {
			what = fmt.Sprintf("before it (%d)", i)
		}
		fmt.Fprintf(w, "\n%s: from %s device %d to device %d, received %s (key %d)\n", what, termsafe.Line(m.From), m.FromDevice,
			m.ToDevice, m.Received.Format(time.RFC3339), m.KeyID)
		for _, line := range strings.Split(termsafe.Text(m.Body), "\n") {
			fmt.Fprintf(w, "  | %s\n", line)
		}
	}
}

// writeJSON writes v as one line of JSON, with termsafe's escapes.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(termsafe.JSON(b), '\n'))
	return err
}
