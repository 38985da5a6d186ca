package httpd

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config configures a server.
type Config struct {
	Engine      string // "pool" (default) or "uring"
	Addr        string // "0.0.0.0:80", "127.0.0.1:0"
	Workers     int    // worker threads (pool engine); default 4
	Queue       int    // ring size; default 1024
	Backlog     int    // listen backlog; default 1024
	IdleTimeout time.Duration
	ReadTimeout time.Duration // a started request must complete within it (else 408)
	SendTimeout time.Duration
	Handler     Handler
	Logf        func(format string, args ...any)

	// uring engine
	SQPoll     bool          // a kernel thread polls the submission queue
	SQPollIdle time.Duration // how long it spins before sleeping
	SQPollCPU  int           // CPU to pin it to, -1 for none

	ringSetup func(entries uint32) error // tests: make ring setup fail
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.Backlog <= 0 {
		c.Backlog = 1024
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 15 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 5 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Server is a running pool-engine server.
type Server struct {
	cfg      Config
	lfd      int
	addr     netip.AddrPort
	q        *ring
	poll     *poller
	date     dateCache
	stopping atomic.Bool
	wg       sync.WaitGroup
	conns    sync.Pool
	Stats    Stats
}

// Stats are counters for tests and diagnostics.
type Stats struct {
	Accepted, Requests, Rejected503, Timeouts408 atomic.Int64
}

// Listen creates the listening socket.
func Listen(cfg Config) (*Server, error) {
	cfg.defaults()
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	fd, err := listenTCP(ap, cfg.Backlog)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, lfd: fd, q: newRing(cfg.Queue)}
	s.addr, err = boundAddr(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.conns.New = func() any { return &conn{in: make([]byte, 0, 16<<10)} }
	if s.poll, err = newPoller(s); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func listenTCP(ap netip.AddrPort, backlog int) (int, error) {
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt(SO_REUSEADDR): %w", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind(%s): %w", ap, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen(%s): %w", ap, err)
	}
	return fd, nil
}

func boundAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, errors.New("unknown socket family")
}

// Addr is the bound address (with the real port when Addr asked for 0).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Serve starts the acceptor, the workers and the poller, and returns at
// once; Shutdown stops them.
func (s *Server) Serve() {
	s.wg.Add(2 + s.cfg.Workers)
	go s.thread("acceptor", s.acceptLoop)
	go s.thread("poller", s.poll.loop)
	for i := 0; i < s.cfg.Workers; i++ {
		go s.thread("worker", s.workerLoop)
	}
}

// thread runs fn on its own OS thread, restarting it after a panic.
func (s *Server) thread(name string, fn func()) {
	defer s.wg.Done()
	runtime.LockOSThread()
	for !s.stopping.Load() {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.cfg.Logf("httpd: %s recovered from panic: %v", name, r)
				}
			}()
			fn()
		}()
	}
}

// Shutdown stops accepting, wakes every thread, closes every connection and
// waits for the threads to end.
func (s *Server) Shutdown() {
	if s.stopping.Swap(true) {
		return
	}
	unix.Shutdown(s.lfd, unix.SHUT_RDWR) // wakes the blocked accept
	s.q.wakeAll()
	s.wg.Wait()
	unix.Close(s.lfd)
	for c := s.q.pop(); c != nil; c = s.q.pop() {
		s.closeConn(c)
	}
	s.poll.closeAll()
}

func (s *Server) acceptLoop() {
	for !s.stopping.Load() {
		fd, err := accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
				time.Sleep(10 * time.Millisecond)
			default:
				if !s.stopping.Load() {
					s.cfg.Logf("httpd: accept: %v", err)
					time.Sleep(10 * time.Millisecond)
				}
			}
			continue
		}
		s.Stats.Accepted.Add(1)
		c := s.newConn(fd)
		if !s.q.push(c) {
			s.Stats.Rejected503.Add(1)
			s.reject(c, 503)
		}
	}
}

func (s *Server) newConn(fd int) *conn {
	c := s.conns.Get().(*conn)
	c.fd, c.in, c.closing, c.partial, c.armed = fd, c.in[:0], false, false, false
	c.started = time.Time{}
	return c
}

// reject answers a status without reading a request and closes gracefully.
func (s *Server) reject(c *conn, code int) {
	errorResponse(&c.resp, code)
	c.out = appendResponse(c.out[:0], false, &c.resp, false, s.date.get(time.Now()))
	rawWrite(c.fd, c.out) // best effort: never block the caller
	s.lingerClose(c)
}

func (s *Server) workerLoop() {
	for !s.stopping.Load() {
		c := s.q.wait(time.Second)
		if c == nil {
			continue
		}
		s.serveConn(c)
	}
}

// maxRounds bounds the requests a worker serves on one connection before
// giving others a turn.
const maxRounds = 64

// serveConn serves what the connection has to read now; when it would
// block, the connection goes to the poller (so the worker is free).
func (s *Server) serveConn(c *conn) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logf("httpd: connection handler panic: %v", r)
			s.closeConn(c)
		}
	}()
	for round := 0; round < maxRounds; round++ {
		if len(c.in) == cap(c.in) {
			if len(c.in) >= MaxHeaderBytes+MaxBodyBytes {
				s.reject(c, 413)
				return
			}
			c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
		}
		n, err := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
		switch {
		case errors.Is(err, unix.EAGAIN):
			s.poll.park(c)
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil || n == 0:
			s.closeConn(c) // the client closed or reset
			return
		}
		c.in = c.in[:len(c.in)+n]
		if c.started.IsZero() {
			c.started = time.Now()
		}
		consumed, out, closeAfter, partial := serveBuffered(s.cfg.Handler, c.in, c.out[:0], &c.resp, s.date.get(time.Now()))
		c.out = out
		if consumed > 0 {
			c.in = c.in[:copy(c.in, c.in[consumed:])]
			s.Stats.Requests.Add(1)
			c.started = time.Time{}
			if partial {
				c.started = time.Now()
			}
		}
		c.partial = partial
		if len(out) > 0 {
			if err := s.sendAll(c.fd, out); err != nil {
				s.closeConn(c)
				return
			}
		}
		if closeAfter {
			s.lingerClose(c)
			return
		}
		if len(out) > 0 && len(c.in) == 0 {
			// Answered everything it sent: a client waiting for the
			// response has sent nothing more yet, so skip the read that
			// would only say EAGAIN.
			s.poll.park(c)
			return
		}
	}
	// Let others have a turn: back through the poller.
	s.poll.park(c)
}

// sendAll writes b, waiting for the socket with poll up to SendTimeout.
func (s *Server) sendAll(fd int, b []byte) error {
	deadline := time.Now().Add(s.cfg.SendTimeout)
	for len(b) > 0 {
		n, err := rawWrite(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EAGAIN) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
	return nil
}

// lingerClose shuts down our side and lets the poller drain what the client
// still sends until it closes (or 2 s pass), so unread data never turns the
// close into a reset that destroys the response in flight. It never blocks.
func (s *Server) lingerClose(c *conn) {
	rawShutdown(c.fd, unix.SHUT_WR)
	c.closing = true
	c.deadline = time.Now().Add(lingerTimeout)
	s.poll.park(c)
}

func (s *Server) closeConn(c *conn) {
	rawClose(c.fd)
	c.fd = -1
	if cap(c.in) <= 64<<10 {
		s.conns.Put(c)
	}
}

// conn is one client connection's state; it moves between the ring, a
// worker and the poller, owned by one of them at a time.
type conn struct {
	fd       int
	in       []byte
	out      []byte
	resp     Response
	closing  bool // shut down, draining
	partial  bool // part of a request is buffered
	started  time.Time
	deadline time.Time
	armed    bool // registered with epoll
}
