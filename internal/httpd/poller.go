package httpd

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// poller parks connections that have nothing to read now, in epoll with
// EPOLLONESHOT, and hands them back to the workers when they become
// readable. It enforces the idle, request and linger timeouts.
type poller struct {
	s     *Server
	epfd  int
	mu    sync.Mutex
	conns map[int]*conn
}

const lingerTimeout = 2 * time.Second

func newPoller(s *Server) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{s: s, epfd: fd, conns: map[int]*conn{}}, nil
}

// park hands c to the poller until it is readable or its deadline passes.
// After it returns, c belongs to the poller (or, once readable, to a
// worker): the caller must not touch it.
func (p *poller) park(c *conn) {
	now := time.Now()
	switch {
	case c.closing:
		// lingerClose set the deadline; re-parking keeps it.
	case c.partial || len(c.in) > 0:
		c.deadline = now.Add(p.s.cfg.ReadTimeout)
		if !c.started.IsZero() {
			c.deadline = c.started.Add(p.s.cfg.ReadTimeout)
		}
	default:
		c.deadline = now.Add(p.s.cfg.IdleTimeout)
	}
	op := unix.EPOLL_CTL_MOD
	if !c.armed {
		op = unix.EPOLL_CTL_ADD
	}
	c.armed = true
	fd := c.fd
	p.mu.Lock()
	p.conns[fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	err := rawEpollCtl(p.epfd, op, fd, &ev)
	if errors.Is(err, unix.ENOENT) {
		err = rawEpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	} else if errors.Is(err, unix.EEXIST) {
		err = rawEpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	}
	if err != nil {
		// Not registered: no event can hand c to anyone else.
		p.mu.Lock()
		delete(p.conns, fd)
		p.mu.Unlock()
		p.s.closeConn(c)
	}
}

func (p *poller) loop() {
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for !p.s.stopping.Load() {
		n, err := unix.EpollWait(p.epfd, events, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.s.cfg.Logf("httpd: epoll_wait: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			p.mu.Lock()
			c := p.conns[fd]
			delete(p.conns, fd)
			p.mu.Unlock()
			if c == nil {
				continue
			}
			if c.closing {
				p.drain(c)
				continue
			}
			if !p.s.q.push(c) {
				// Workers are all busy and the ring is full: wait a turn.
				p.park(c)
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= 200*time.Millisecond {
			lastSweep = now
			p.sweep(now)
		}
	}
}

// drain reads and discards what a closing client still sends; the close
// happens on its EOF or at the linger deadline.
func (p *poller) drain(c *conn) {
	var buf [4096]byte
	for {
		n, err := rawRead(c.fd, buf[:])
		if n > 0 {
			continue
		}
		if errors.Is(err, unix.EAGAIN) && time.Now().Before(c.deadline) {
			p.park(c)
			return
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		p.forget(c)
		p.s.closeConn(c)
		return
	}
}

func (p *poller) forget(c *conn) {
	rawEpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	c.armed = false
}

// sweep ends connections past their deadline: a request started but not
// finished gets 408; an idle keep-alive or lingering one is closed.
func (p *poller) sweep(now time.Time) {
	var expired []*conn
	p.mu.Lock()
	for fd, c := range p.conns {
		if now.After(c.deadline) {
			expired = append(expired, c)
			delete(p.conns, fd)
		}
	}
	p.mu.Unlock()
	for _, c := range expired {
		p.forget(c)
		switch {
		case c.closing:
			p.s.closeConn(c)
		case c.partial || len(c.in) > 0:
			p.s.Stats.Timeouts408.Add(1)
			p.s.reject(c, 408)
		default:
			p.s.closeConn(c)
		}
	}
}

func (p *poller) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for fd, c := range p.conns {
		unix.Close(fd)
		c.fd = -1
	}
	p.conns = map[int]*conn{}
	unix.Close(p.epfd)
}
