package main

import (
	"context"
	"fmt"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/termsafe"
)

// runReport is `hush report NAME MESSAGE_ID` (docs/franking.md).
func runReport(ctx context.Context, e *env, f *reportFlags, args []string) error {
	if len(args) != 2 {
		return usagef("give NAME and MESSAGE_ID")
	}
	id, err := content.ParseID(args[1])
	if err != nil {
		return usagef("MESSAGE_ID %q: want the 32 hex digits 'hush history --ids' shows", termsafe.Line(args[1]))
	}
	if f.context < 0 || f.context > client.MaxReportContext {
		return usagef("--context must be 0 to %d", client.MaxReportContext)
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	name := client.NormalizeUsername(args[0])
	res, err := c.Report(ctx, name, id, f.context, f.reason)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"report": res.ID, "user": name, "messages": res.Messages})
		return nil
	}
	fmt.Fprintf(e.stdout, "reported %s's message%s to the server's operator (report %d, %d message%s); %s is not told\n",
		termsafe.Line(name), map[bool]string{true: " and those before it", false: ""}[res.Messages > 1], res.ID,
		res.Messages, map[bool]string{true: "s", false: ""}[res.Messages != 1], termsafe.Line(name))
	return nil
}
