package netpark

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func skipUnsupported(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll (Linux)")
	}
}

// resumed returns a resume function and a channel that gets a value each
// time it runs.
func resumed() (func(), chan struct{}) {
	ch := make(chan struct{}, 10)
	return func() { ch <- struct{}{} }, ch
}

func waitResume(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("not resumed")
	}
}

func notResumed(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("resumed without cause")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestResumeOnData(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	resume, ch := resumed()
	if _, err := Park(s, resume); err != nil {
		t.Fatal(err)
	}
	notResumed(t, ch)
	c.Write([]byte("hi"))
	waitResume(t, ch)
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
	notResumed(t, ch) // once only
}

func TestParkAgain(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	for i := range 5 {
		resume, ch := resumed()
		if _, err := Park(s, resume); err != nil {
			t.Fatalf("park %d: %v", i, err)
		}
		c.Write([]byte{byte(i)})
		waitResume(t, ch)
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("read %v, %v", b, err)
		}
	}
}

func TestResumeOnDataAlreadyThere(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	c.Write([]byte("x"))
	waitReadable(t, s) // the byte is there before Park
	resume, ch := resumed()
	if _, err := Park(s, resume); err != nil {
		t.Fatal(err)
	}
	waitResume(t, ch)
}

func TestResumeOnHangup(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	resume, ch := resumed()
	if _, err := Park(s, resume); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitResume(t, ch)
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after hangup: %v, want EOF", err)
	}
}

func TestWake(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	resume, ch := resumed()
	tk, err := Park(s, resume)
	if err != nil {
		t.Fatal(err)
	}
	if !Wake(tk) {
		t.Fatal("Wake of a parked connection reported false")
	}
	waitResume(t, ch)
	if Wake(tk) {
		t.Fatal("second Wake reported true")
	}
	c.Write([]byte("x")) // the registration is gone: no second resume
	notResumed(t, ch)
	// And the connection can be parked again.
	resume2, ch2 := resumed()
	if _, err := Park(s, resume2); err != nil {
		t.Fatal(err)
	}
	waitResume(t, ch2)
}

// Closing a parked connection is silent; Wake after closing resumes it,
// and the descriptor's number, reused by a new socket, parks anew.
func TestCloseThenWake(t *testing.T) {
	skipUnsupported(t)
	s, _ := pair(t)
	resume, ch := resumed()
	tk, err := Park(s, resume)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	notResumed(t, ch)
	if !Wake(tk) {
		t.Fatal("Wake reported false")
	}
	waitResume(t, ch)
	s2, c2 := pair(t)
	resume2, ch2 := resumed()
	if _, err := Park(s2, resume2); err != nil {
		t.Fatal(err)
	}
	c2.Write([]byte("x"))
	waitResume(t, ch2)
}

func TestUnsupported(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Park(a, func() { t.Error("resumed") }); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Park(net.Pipe) = %v, want ErrUnsupported", err)
	}
}

func TestTLS(t *testing.T) {
	skipUnsupported(t)
	s, c := pair(t)
	tc := tls.Server(s, &tls.Config{})
	resume, ch := resumed()
	if _, err := Park(tc, resume); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	waitResume(t, ch)
}

func TestMany(t *testing.T) {
	skipUnsupported(t)
	const n = 300
	clients := make([]net.Conn, n)
	var count atomic.Int64
	done := make(chan struct{}, n)
	before := Parked()
	for i := range n {
		s, c := pair(t)
		clients[i] = c
		if _, err := Park(s, func() { count.Add(1); done <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
	}
	if got := Parked() - before; got != n {
		t.Fatalf("Parked() grew by %d, want %d", got, n)
	}
	for _, c := range clients {
		c.Write([]byte("x"))
	}
	for range n {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d resumed", count.Load(), n)
		}
	}
	// Each resume took its connection out of the parked set, and only a
	// parked connection can be resumed: with none of them left, no resume
	// is still to come, and the count is final.
	if got := Parked() - before; got != 0 {
		t.Fatalf("%d still parked after %d resumes", got, n)
	}
	if got := count.Load(); got != n {
		t.Fatalf("%d resumes, want %d", got, n)
	}
}
