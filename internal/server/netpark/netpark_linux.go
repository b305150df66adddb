package netpark

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller is the process's epoll set. One goroutine waits on it for as
// long as the process runs, like the runtime's own network poller.
type poller struct {
	epfd int

	mu     sync.Mutex
	next   Ticket
	parked map[Ticket]parkedConn
}

type parkedConn struct {
	rc     syscall.RawConn
	resume func()
}

var global = sync.OnceValues(func() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: fd, parked: make(map[Ticket]parkedConn)}
	go p.loop()
	return p, nil
})

// Park registers c and returns at once; resume runs on a new goroutine
// when c is readable (or failed, or hung up), or when Wake is called with
// the ticket, whichever comes first, and only once. On error, c is not
// parked and resume will not run.
func Park(c net.Conn, resume func()) (Ticket, error) {
	p, err := global()
	if err != nil {
		return 0, err
	}
	rc, err := rawConn(c)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.next++
	t := p.next
	// Registered before the socket is: the event may come at once.
	p.parked[t] = parkedConn{rc, resume}
	p.mu.Unlock()
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		// One-shot: the socket is reported once, then stays in the set
		// disarmed until resume removes it (see wake).
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
		ev.Fd, ev.Pad = int32(uint32(t)), int32(uint32(t>>32))
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		p.mu.Lock()
		_, still := p.parked[t]
		delete(p.parked, t)
		p.mu.Unlock()
		if !still {
			// Cannot happen: an event needs a registration, and Wake
			// needs the ticket, which the caller does not have yet.
			panic("netpark: internal error: failed registration was resumed")
		}
		return 0, err
	}
	return t, nil
}

// Wake resumes the connection parked with t, if it still is, and reports
// whether it was.
func Wake(t Ticket) bool {
	p, err := global()
	if err != nil {
		return false
	}
	return p.wake(t)
}

// Parked reports how many connections are parked.
func Parked() int {
	p, err := global()
	if err != nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

func (p *poller) wake(t Ticket) bool {
	p.mu.Lock()
	pc, ok := p.parked[t]
	delete(p.parked, t)
	p.mu.Unlock()
	if !ok {
		return false
	}
	go func() {
		// Take the socket out of the set so that it can be parked again.
		// If it was closed meanwhile, Control fails and the kernel has
		// already dropped it.
		pc.rc.Control(func(fd uintptr) {
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		})
		pc.resume()
	}()
	return true
}

func (p *poller) loop() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			panic("netpark: epoll_wait: " + err.Error())
		}
		for _, ev := range events[:n] {
			// A ticket no longer parked was woken by Wake already.
			p.wake(Ticket(uint32(ev.Fd)) | Ticket(uint32(ev.Pad))<<32)
		}
	}
}
