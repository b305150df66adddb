package main

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/httpapi"
	"github.com/hushmsg/hush/internal/server/servertest"
	"github.com/hushmsg/hush/internal/server/store/sqlitestore"
	"github.com/hushmsg/hush/internal/server/tlscert"
)

// TestScripts runs the command-line scenarios in testdata/*.txtar, each
// against a server of its own: $SERVER and $FP are its URL and certificate
// fingerprint, $HUSHD_DATA its folder; HUSH_PASSWORD is set.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			dir := filepath.Join(e.WorkDir, ".hushd")
			st, err := sqlitestore.Open(filepath.Join(dir, "hushd.db"))
			if err != nil {
				return err
			}
			srv := server.New(st, server.Config{Limits: servertest.Generous, Argon2Time: 1, Argon2MemoryKiB: 1024})
			ts := httptest.NewUnstartedServer(httpapi.New(srv, httpapi.Options{}))
			ts.StartTLS()
			e.Defer(func() {
				ts.CloseClientConnections()
				ts.Close()
				srv.Close()
				st.Close()
			})
			e.Setenv("SERVER", ts.URL)
			e.Setenv("FP", tlscert.Fingerprint(ts.Certificate().Raw))
			e.Setenv("HUSHD_DATA", dir)
			e.Setenv("HUSH_PASSWORD", "password-for-tests")
			return nil
		},
	})
}
