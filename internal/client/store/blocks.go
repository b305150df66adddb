package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
)

// This file: the people this account blocks, as this device last learned
// from the server (docs/client.md, "Blocking"), and whether a
// conversation holds any text (typing indicators are shown only in one
// that does).

// metaBlocked holds the blocked usernames, sorted, one per line (a
// username holds no newline: api.ValidUsername).
const metaBlocked = "blocked"

// Blocked returns the usernames this account blocks, sorted.
func (t *q) Blocked(ctx context.Context) ([]string, error) {
	v, err := t.meta(ctx, metaBlocked)
	if err != nil || len(v) == 0 {
		return nil, err
	}
	return strings.Split(string(v), "\n"), nil
}

// IsBlocked reports whether this account blocks name. It runs on every
// message received: one lookup of the list's row, searched in SQLite,
// whatever its length (BenchmarkIsBlocked).
func (t *q) IsBlocked(ctx context.Context, name string) (bool, error) {
	if name == "" || strings.Contains(name, "\n") {
		return false, nil
	}
	var found bool
	err := t.x.QueryRowContext(ctx, "SELECT instr(char(10) || CAST(v AS TEXT) || char(10), char(10) || ? || char(10)) > 0 FROM meta WHERE k = ?", name, metaBlocked).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return found, err
}

// SetBlocked replaces the list of blocked usernames.
func (t *Tx) SetBlocked(ctx context.Context, names []string) error {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	names = slices.DeleteFunc(names, func(s string) bool { return s == "" || strings.Contains(s, "\n") })
	return t.setMeta(ctx, metaBlocked, []byte(strings.Join(names, "\n")))
}

// HasText reports whether the conversation with peer of that kind holds
// a message (not only notices), in either direction.
func (t *q) HasText(ctx context.Context, peer string, secret bool) (bool, error) {
	var ok bool
	err := t.x.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE peer = ? AND secret = ? AND kind = ?)", peer, secret, KindText).Scan(&ok)
	return ok, err
}
