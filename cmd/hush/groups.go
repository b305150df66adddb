package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/termsafe"
)

// hush group (docs/groups.md, docs/client.md "Groups").

type groupFlags struct {
	members string
}

func groupCommand() *command {
	return &command{name: "group", args: "create NAME --members A,B | add GROUP USER... | remove GROUP USER... | admin GROUP USER... | leave GROUP | rename GROUP NAME | list | info GROUP",
		summary: "make and change groups: conversations of up to 1,000 people",
		help: `A group is an ordinary conversation among its members: every device of
each member gets each message, end to end encrypted (Signal's Sender Keys:
one message is encrypted once and the server fans it out). The group's
name, members and admins are kept by the members' devices only.

create NAME --members alice,bob makes a group, you its admin, and prints
its id. GROUP is a group's id (or its first 6 or more hex digits) or its
name, when no other group here has it. add, remove and admin (make admin)
are for admins; leave and rename (admins) as said. list lists the groups
this device keeps; info shows a group's members, their devices and its
admins. Send with 'hush send --group GROUP TEXT'.`,
		bind: flagged(func(fs *flag.FlagSet, f *groupFlags) {
			fs.StringVar(&f.members, "members", "", "create: the members, `usernames` separated by commas")
		}, runGroup)}
}

func runGroup(ctx context.Context, e *env, f *groupFlags, args []string) error {
	if len(args) == 0 {
		return usagef("give a subcommand: create, add, remove, admin, leave, rename, list or info")
	}
	sub, rest := args[0], args[1:]
	want := func(n int, what string) error {
		if len(rest) != n {
			return usagef("%s %s", sub, what)
		}
		return nil
	}
	var err error
	switch sub {
	case "create":
		err = want(1, "takes one NAME (quote a name with spaces)")
		if err == nil && f.members == "" {
			err = usagef("create needs --members alice,bob")
		}
	case "add", "remove", "admin":
		if len(rest) < 2 {
			err = usagef("%s takes GROUP and at least one USER", sub)
		}
	case "leave", "info":
		err = want(1, "takes one GROUP")
	case "rename":
		err = want(2, "takes GROUP and the new NAME")
	case "list":
		err = want(0, "takes no argument")
	default:
		err = usagef("unknown subcommand %q: create, add, remove, admin, leave, rename, list or info", sub)
	}
	if err != nil {
		return err
	}
	if sub != "create" && f.members != "" {
		return usagef("--members is for create")
	}
	c, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var g *client.Group
	switch sub {
	case "create":
		g, err = c.CreateGroup(ctx, rest[0], strings.Split(f.members, ","))
		if g != nil {
			if e.json {
				e.printJSON(groupJSON(g))
			} else {
				fmt.Fprintln(e.stdout, g.ID)
			}
		}
		return err
	case "add":
		g, err = c.GroupAdd(ctx, rest[0], rest[1:]...)
	case "remove":
		g, err = c.GroupRemove(ctx, rest[0], rest[1:]...)
	case "admin":
		g, err = c.GroupMakeAdmin(ctx, rest[0], rest[1:]...)
	case "leave":
		g, err = c.GroupLeave(ctx, rest[0])
	case "rename":
		g, err = c.GroupRename(ctx, rest[0], rest[1])
	case "list":
		gs, err := c.Groups(ctx)
		if err != nil {
			return err
		}
		for _, g := range gs {
			if e.json {
				e.printJSON(groupJSON(g))
				continue
			}
			left := ""
			if !g.Member {
				left = "  (you are not a member)"
			}
			fmt.Fprintf(e.stdout, "%s  %-24s %4d members%s\n", g.ID, termsafe.Line(g.Name), len(g.Members), left)
		}
		return nil
	case "info":
		g, err = c.FindGroup(ctx, rest[0])
		if err != nil {
			return err
		}
		if e.json {
			e.printJSON(groupJSON(g))
			return nil
		}
		fmt.Fprintf(e.stdout, "%s\nid: %s\n", termsafe.Line(g.Name), g.ID)
		if !g.Member {
			fmt.Fprintln(e.stdout, "you are not a member")
		}
		for _, m := range g.Members {
			admin := ""
			if contains(g.Admins, m) {
				admin = "  admin"
			}
			ds := make([]string, len(g.Devices[m]))
			for i, d := range g.Devices[m] {
				ds[i] = fmt.Sprint(d)
			}
			devices := "devices not known yet"
			if len(ds) > 0 {
				devices = "devices " + strings.Join(ds, ", ")
			}
			fmt.Fprintf(e.stdout, "  %-20s %s%s\n", termsafe.Line(m), devices, admin)
		}
		return nil
	}
	if g != nil && err == nil && !e.json {
		fmt.Fprintf(e.stdout, "%s: %d members\n", termsafe.Line(g.Name), len(g.Members))
	} else if g != nil && e.json {
		e.printJSON(groupJSON(g))
	}
	return err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func groupJSON(g *client.Group) map[string]any {
	devices := make(map[string][]uint32, len(g.Devices))
	for m, ds := range g.Devices {
		devices[m] = append([]uint32{}, ds...)
	}
	return map[string]any{"id": g.ID, "name": g.Name, "members": g.Members, "admins": g.Admins,
		"member": g.Member, "devices": devices, "epoch": g.Epoch}
}

// groupNames resolves the group of a line (its Peer) to the group's id
// and name, asking the client once per group.
type groupNames struct {
	c     *client.Client
	names map[string]*client.Group
}

func newGroupNames(c *client.Client) *groupNames {
	return &groupNames{c: c, names: make(map[string]*client.Group)}
}

// lookup returns the group of peer, or nil when peer is no group's.
func (n *groupNames) lookup(ctx context.Context, peer string) *client.Group {
	id, ok := client.IsGroupPeer(peer)
	if !ok {
		return nil
	}
	if g := n.names[peer]; g != nil {
		return g
	}
	g, err := n.c.FindGroup(ctx, fmt.Sprintf("%x", id[:]))
	if err != nil {
		g = &client.Group{ID: fmt.Sprintf("%x", id[:]), Name: "(unknown group)"}
	}
	n.names[peer] = g
	return g
}
