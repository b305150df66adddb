package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hushmsg/hush/internal/client"
)

// Linking, removing devices and the recovery code (docs/multidevice.md
// sections 2 to 4; docs/client.md, "Devices").

func runLink(ctx context.Context, e *env, f *linkFlags, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	switch {
	case f.code != "" && (f.server.user != "" || f.recoveryCode != ""):
		return usagef("--code does not go with --user or --recovery-code")
	case f.code == "" && f.server.user == "":
		return usagef("give --code CODE (from 'hush device add' on one of your devices), or --user NAME")
	case f.code != "":
		return linkByCode(ctx, e, f)
	}
	p, err := serverParams(ctx, e, &f.server)
	if err != nil {
		return err
	}
	p.DeviceName = f.deviceName
	if f.recoveryCode != "" {
		c, err := client.Recover(ctx, e.home, client.RecoverParams{Server: p.Server, Fingerprint: p.Fingerprint,
			Username: p.Username, Password: p.Password, RecoveryCode: f.recoveryCode, DeviceName: f.deviceName}, e.options())
		if c != nil {
			defer c.Close()
		}
		if err != nil {
			return err
		}
		return printStatus(ctx, e, c, false)
	}
	c, err := client.Link(ctx, e.home, p, e.options())
	if err != nil {
		return err
	}
	defer c.Close()
	return printStatus(ctx, e, c, false)
}

func linkByCode(ctx context.Context, e *env, f *linkFlags) error {
	p, err := serverParams(ctx, e, &f.server, noPassword)
	if err != nil {
		return err
	}
	waiting := func() {
		if !e.json {
			fmt.Fprintln(e.stderr, "Waiting for your other device to send this one your account's keys...")
		}
	}
	c, err := client.LinkWithCode(ctx, e.home, client.LinkParams{Server: p.Server, Fingerprint: p.Fingerprint,
		Code: f.code, DeviceName: f.deviceName, Waiting: waiting}, e.options())
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := c.SyncHistory(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "hush: warning: the history could not be read yet (%v); the next 'hush recv' reads it\n", err)
	}
	if e.json {
		a := c.Account()
		e.printJSON(map[string]any{"user": a.Username, "device": a.DeviceID, "server": a.Server, "servers": a.Servers,
			"server_fingerprint": a.Fingerprint, "secret": false, "home": e.home, "history": rep.Added})
		return nil
	}
	if err := printStatus(ctx, e, c, false); err != nil {
		return err
	}
	if rep.Added == 1 {
		fmt.Fprintln(e.stdout, "1 message of your history is here.")
	} else {
		fmt.Fprintf(e.stdout, "%d messages of your history are here.\n", rep.Added)
	}
	return nil
}

func runDeviceAdd(ctx context.Context, e *env, f *deviceFlags) error {
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	offer, err := c.OfferLink(ctx, f.wait)
	if err != nil {
		return err
	}
	code := offer.Code.String()
	if e.json {
		e.printJSON(map[string]any{"code": code, "expires_at": offer.ExpiresAt.UnixMilli()})
	} else {
		fmt.Fprintf(e.stdout, "On the new device, run:\n\n    hush link --server %s --server-fingerprint %s --code %s\n\n",
			strings.Join(c.Servers(), ","), c.Account().Fingerprint, code)
		if qr, err := qrText([]byte(code)); err == nil {
			fmt.Fprintln(e.stdout, qr)
		}
		fmt.Fprintf(e.stdout, "The code works once, until %s. Waiting...\n", offer.ExpiresAt.Format("15:04:05"))
	}
	id, err := offer.Complete(ctx)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"linked": id})
	} else {
		fmt.Fprintf(e.stdout, "linked device %d\n", id)
	}
	return nil
}

func runDeviceRemove(ctx context.Context, e *env, arg string) error {
	id, err := strconv.ParseUint(arg, 10, 32)
	if err != nil || id == 0 {
		return usagef("a device is named by its number (hush device list), not %q", arg)
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.RemoveDevice(ctx, uint32(id)); err != nil {
		if errors.Is(err, client.ErrRemoveSelf) {
			return fmt.Errorf("%w ('hush device remove %d' there)", err, id)
		}
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"removed": id})
	} else {
		fmt.Fprintf(e.stdout, "removed device %d; your history key changed, so it can read nothing stored from now on\n", id)
	}
	return nil
}

func runRecoveryCode(ctx context.Context, e *env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	code, err := c.NewRecoveryCode(ctx)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(map[string]any{"recovery_code": code.String()})
		return nil
	}
	fmt.Fprint(e.stdout, recoveryText(code.String()))
	return nil
}

func recoveryText(code string) string {
	return "Your recovery code (write it down; it is shown only now):\n\n    " + code + "\n\n" +
		"With it and your password, 'hush link --user NAME --recovery-code CODE' restores your\n" +
		"account and its ordinary history if you lose every device. Without it, that history is\n" +
		"gone for good.\n"
}

func printRegistered(ctx context.Context, e *env, c *client.Client, code string) error {
	a := c.Account()
	if e.json {
		e.printJSON(map[string]any{"user": a.Username, "device": a.DeviceID, "server": a.Server, "servers": a.Servers,
			"server_fingerprint": a.Fingerprint, "secret": true, "home": e.home, "recovery_code": code})
		return nil
	}
	if err := printStatus(ctx, e, c, true); err != nil {
		return err
	}
	fmt.Fprint(e.stdout, "\n"+recoveryText(code))
	return nil
}
