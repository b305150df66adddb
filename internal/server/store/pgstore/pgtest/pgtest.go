// Package pgtest gives tests a PostgreSQL schema of their own: the
// database named by HUSH_TEST_POSTGRES, a fresh schema with a random name
// in it, dropped when the test ends, so that parallel runs never meet.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Env is the variable naming the test database, e.g.
// postgres://root@127.0.0.1:5432/test?sslmode=disable.
const Env = "HUSH_TEST_POSTGRES"

// URL returns a connection URL for a new, empty schema (its search_path),
// dropped at the end of t. It skips t when HUSH_TEST_POSTGRES is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		t.Skip("HUSH_TEST_POSTGRES is not set: skipping the PostgreSQL tests (set it to e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "hush_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return WithSchema(t, base, schema)
}

// WithSchema returns base with its search_path set to schema.
func WithSchema(t testing.TB, base, schema string) string {
	t.Helper()
	if !strings.Contains(base, "://") {
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
