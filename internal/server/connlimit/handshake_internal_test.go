package connlimit

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/tlscert"
)

// TestHandshakeWait (issue 12): a handshake that finds every slot taken
// waits, and after Wait is refused before any work is done; when a slot
// frees, handshakes go on.
func TestHandshakeWait(t *testing.T) {
	cert, _, err := tlscert.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewTLSListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		Handshakes{Slots: 2, Wait: 50 * time.Millisecond})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	handshake := func() error {
		c, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		return err
	}

	ln.slots <- struct{}{} // both slots busy
	ln.slots <- struct{}{}
	if err := handshake(); err == nil {
		t.Fatal("a handshake went ahead with every slot taken")
	}
	if n := ln.Refused(); n != 1 {
		t.Fatalf("%d handshakes counted as refused, want 1", n)
	}
	<-ln.slots
	for range 3 {
		if err := handshake(); err != nil {
			t.Fatalf("with a slot free: %v", err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(ln.slots) != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots held after the handshakes, want the 1 the test holds", len(ln.slots))
		}
	}
}
