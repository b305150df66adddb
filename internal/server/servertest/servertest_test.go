package servertest_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
	"github.com/hushmsg/hush/internal/server/servertest"
)

// TestSlowRequest: a request that takes longer than a few seconds, as
// ordinary ones do on a busy machine, gets its answer. With request
// deadlines of a few seconds it failed with "local error: tls: bad record
// MAC" (see RequestTimeout). The request is made slow by its body, sent
// in two halves a little more than ShortRequestTimeout apart: the delay is
// what is tested, so it is a sleep.
func TestSlowRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("a request of several seconds")
	}
	env := servertest.Start(t, server.Config{Limits: servertest.Generous})
	body, err := json.Marshal(api.Register{Username: "slow", Password: "password-slow", DisplayName: "Slow", DeviceName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:len(body)/2])
		time.Sleep(servertest.ShortRequestTimeout + time.Second)
		pw.Write(body[len(body)/2:])
		pw.Close()
	}()
	var cred api.DeviceCredential
	if err := env.Client(t, "").DoRaw(t.Context(), "POST", "/v1/accounts", pr, &cred); err != nil {
		t.Fatalf("a slow request: %v", err)
	}
	if cred.Credential == "" {
		t.Fatal("no credential in the answer")
	}
}

// TestShortDeadlines: a server started with StartShort has them (the
// WebSocket tests rely on it).
func TestShortDeadlines(t *testing.T) {
	env := servertest.StartShort(t, server.Config{Limits: servertest.Generous})
	if r, w := env.HTTP.Config.ReadTimeout, env.HTTP.Config.WriteTimeout; r != servertest.ShortRequestTimeout || w != servertest.ShortRequestTimeout {
		t.Fatalf("read and write timeouts %v, %v; want %v", r, w, servertest.ShortRequestTimeout)
	}
}
