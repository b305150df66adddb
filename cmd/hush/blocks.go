package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hushmsg/hush/internal/client"
)

// This file: hush block, unblock and blocked (issue 11 part 5;
// docs/client.md, "Blocking").

func runBlock(ctx context.Context, e *env, args []string) error { return setBlock(ctx, e, args, true) }
func runUnblock(ctx context.Context, e *env, args []string) error {
	return setBlock(ctx, e, args, false)
}

func setBlock(ctx context.Context, e *env, args []string, block bool) error {
	if len(args) != 1 {
		return usagef("give one NAME")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	name := client.NormalizeUsername(args[0])
	if block {
		err = c.Block(ctx, name)
	} else {
		err = c.Unblock(ctx, name)
	}
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"user": name, "blocked": block})
		return nil
	}
	if block {
		fmt.Fprintf(e.stdout, "%s is blocked: the server drops what they send you, and this device sends them no receipts or typing.\n", name)
	} else {
		fmt.Fprintf(e.stdout, "%s is no longer blocked (what they sent while blocked is gone).\n", name)
	}
	return nil
}

func runBlocked(ctx context.Context, e *env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	names, err := c.Blocked(ctx)
	if err != nil {
		if !errors.Is(err, client.ErrUnreachable) {
			return err
		}
		fmt.Fprintf(e.stderr, "hush: warning: %v; this is the list this device last learned\n", err)
	}
	if e.json {
		if names == nil {
			names = []string{}
		}
		e.printJSON(map[string]any{"blocked": names})
		return nil
	}
	if len(names) == 0 {
		fmt.Fprintln(e.stdout, "You block nobody.")
		return nil
	}
	for _, n := range names {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}
