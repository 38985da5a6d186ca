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

// Config configures a server. Zero values take the defaults (limits.go).
type Config struct {
	Engine       string // "pool" (default) or "uring"
	Addr         string // "0.0.0.0:80", "127.0.0.1:0"
	Workers      int    // event-loop threads (pool engine); default GOMAXPROCS, at most 4
	Backlog      int    // listen backlog; default 1024
	MaxConns     int    // connection cap; default 512, lowered by RLIMIT_NOFILE
	MemoryBudget int64  // bytes all connections may hold between events; default 8 MiB
	MaxPipeline  int    // requests answered per round on one connection; default 32
	MaxPending   int    // buffered output that stops reading a connection; default 64 KiB
	IdleTimeout  time.Duration
	ReadTimeout  time.Duration // a started request must complete within it (else 408)
	WriteTimeout time.Duration // a response must be taken by the client within it
	StopTimeout  time.Duration // Shutdown returns within it; default 2 s
	// Nice, when above 0, lowers the server threads' priority (PID 1 sets
	// it so that a flood of requests does not slow the boot).
	Nice    int
	Handler Handler
	Logf    func(format string, args ...any)

	// uring engine
	SQPoll     bool          // a kernel thread polls the submission queue
	SQPollIdle time.Duration // how long it spins before sleeping
	SQPollCPU  int           // CPU to pin it to, -1 for none

	ringSetup func(entries uint32) error // tests: make ring setup fail
	oldKernel bool                       // tests: the uring engine as on a kernel before 5.19 (no buffer ring, no "socket not empty" flag)
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = min(max(runtime.GOMAXPROCS(0), 1), 4)
	}
	if c.Backlog <= 0 {
		c.Backlog = 1024
	}
	if c.MaxConns <= 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.MemoryBudget <= 0 {
		c.MemoryBudget = defaultMemory
	}
	if c.MaxPipeline <= 0 {
		c.MaxPipeline = defaultMaxPipeline
	}
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 15 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 2 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Stats are counters for tests and diagnostics.
type Stats struct {
	Accepted    atomic.Int64
	Requests    atomic.Int64
	Open        atomic.Int64 // connections open now
	Reclaimed   atomic.Int64 // quiet connections closed for a new one at the cap
	Refused     atomic.Int64 // new connections closed at once at the cap
	Busy503     atomic.Int64 // answers that did not fit the memory budget
	Timeouts408 atomic.Int64
	TimedOut    atomic.Int64 // idle or slow-reading connections closed
}

// Server is a running pool-engine server: Workers event-loop threads, each
// locked to its OS thread with its own epoll set. The listening socket is in
// every set (EPOLLEXCLUSIVE: one worker wakes per new connection); the
// worker that accepts a connection owns it to the end, reads, parses,
// answers and writes it itself. The kernel hands over a connection with
// its request (TCP_DEFER_ACCEPT), which is answered at once: a
// "Connection: close" request costs an accept, a read, a write, a close
// and a share of one epoll_wait. Connections kept open are edge-triggered
// and registered once, so a keep-alive request costs a read, a write and a
// share of one epoll_wait, with no hand-off between threads.
type Server struct {
	cfg      Config
	lfd      int
	wakefd   int // eventfd, written once at Shutdown to wake every worker
	addr     netip.AddrPort
	workers  []*worker
	max      int64 // connection cap, over all workers (each reclaims its own)
	mem      budget
	date     dateCache
	stopping atomic.Bool
	wg       sync.WaitGroup
	Stats    Stats
}

// Listen creates the listening socket and the workers' epoll sets.
func Listen(cfg Config) (*Server, error) {
	cfg.defaults()
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	limit, err := connLimit(cfg.MaxConns)
	if err != nil {
		return nil, err
	}
	cfg.Workers = min(cfg.Workers, limit)
	fd, err := listenTCP(ap, cfg.Backlog)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, lfd: fd, wakefd: -1, max: int64(limit)}
	s.mem.left.Store(cfg.MemoryBudget)
	fail := func(err error) (*Server, error) {
		s.closeFDs()
		return nil, err
	}
	if s.addr, err = boundAddr(fd); err != nil {
		return fail(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail(err)
	}
	if s.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	for i := 0; i < cfg.Workers; i++ {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fail(fmt.Errorf("epoll_create1: %w", err))
		}
		w := &worker{s: s, epfd: ep, events: make([]unix.EpollEvent, 128)}
		s.workers = append(s.workers, w)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fail(fmt.Errorf("epoll_ctl(listener): %w", err))
		}
		ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.wakefd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s.wakefd, &ev); err != nil {
			return fail(fmt.Errorf("epoll_ctl(eventfd): %w", err))
		}
	}
	return s, nil
}

func (s *Server) closeFDs() {
	for _, w := range s.workers {
		unix.Close(w.epfd)
	}
	if s.wakefd >= 0 {
		unix.Close(s.wakefd)
	}
	unix.Close(s.lfd)
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
	// TCP_DEFER_ACCEPT: the kernel completes a connection only when its
	// first data arrives (or, for a client that sends nothing, when it
	// answers the SYN-ACK sent again after a second). The request then
	// comes with the accept and is answered at once: with
	// "Connection: close" clients this saved an epoll_ctl and an epoll
	// wake-up per connection (6.2 -> 5.1 system calls per request, and a
	// quarter of the context switches). A silent connection holds no
	// descriptor in this process for that second. Best effort: without
	// it, the first read of a connection finds nothing and it waits in
	// epoll as any other.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
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

// Serve starts the workers and returns at once; Shutdown stops them.
func (s *Server) Serve() {
	spareP(len(s.workers))
	for _, w := range s.workers {
		s.wg.Add(1)
		go s.thread(w)
	}
}

// thread runs a worker's loop on its own OS thread, restarting it after a
// panic (its connections stay as they were), and closes its connections
// when the server stops.
func (s *Server) thread(w *worker) {
	defer s.wg.Done()
	runtime.LockOSThread()
	lowerPriority(s.cfg.Nice)
	for !s.stopping.Load() {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.cfg.Logf("httpd: worker recovered from panic: %v", r)
				}
			}()
			w.loop()
		}()
	}
	w.closeAll()
	unix.Close(w.epfd)
}

// Shutdown stops accepting, wakes every worker and waits for them to close
// their connections, at most StopTimeout: a worker stuck in a handler is
// left to close its own connections when it returns.
func (s *Server) Shutdown() {
	if s.stopping.Swap(true) {
		return
	}
	var one = [8]byte{1}
	unix.Write(s.wakefd, one[:])
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		unix.Close(s.wakefd)
	case <-time.After(s.cfg.StopTimeout):
		s.cfg.Logf("httpd: a handler is still running after %v: stopped without it", s.cfg.StopTimeout)
	}
	unix.Close(s.lfd)
}

// conn is one client connection, owned by one worker.
type conn struct {
	fd         int
	in         []byte    // the unanswered part of the input (a partial request, or requests past a limit)
	out        []byte    // output the client has not taken yet
	charged    int       // bytes of in and out charged to the budget
	closeAfter bool      // close once out is sent
	closing    bool      // shut down, draining until the client closes
	inSet      bool      // in the worker's epoll set
	watchOut   bool      // output had to wait: EPOLLOUT is wanted
	readable   bool      // input may be waiting (edge-triggered: remember it)
	served     bool      // answered a request
	since      time.Time // connected, or answered the last request
	started    time.Time
	deadline   time.Time
	last       time.Time // last activity, for reclaiming at the cap
	prev, next *conn     // the worker's list, least recently active first
}

// worker is one event-loop thread and the connections it owns.
type worker struct {
	s      *Server
	epfd   int
	conns  []*conn // by fd
	head   *conn   // least recently active
	tail   *conn
	again  []*conn // connections with work left after a round
	spare  []*conn // closed connections, for reuse
	events []unix.EpollEvent
	buf    []byte   // read buffer
	out    []byte   // output buffer
	req    Request  // the request being answered
	resp   Response // the handler's response
	sweep  time.Time
}

func (w *worker) loop() {
	s := w.s
	if w.buf == nil {
		w.buf = make([]byte, 16<<10)
	}
	for !s.stopping.Load() {
		timeout := 100
		if len(w.again) > 0 {
			timeout = 0
		}
		n, err := epollWait(w.epfd, w.events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			s.cfg.Logf("httpd: epoll_wait: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		now := time.Now()
		for i := 0; i < n; i++ {
			ev := &w.events[i]
			fd := int(ev.Fd)
			switch fd {
			case s.lfd:
				w.accept(now)
				continue
			case s.wakefd:
				return
			}
			c := w.lookup(fd)
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.readable = true
			}
			w.run(c, now)
		}
		if again := w.again; len(again) > 0 {
			w.again = nil
			for _, c := range again {
				if c.fd >= 0 {
					w.run(c, now)
				}
			}
		}
		if now.Sub(w.sweep) >= 100*time.Millisecond {
			w.sweep = now
			w.expire(now)
		}
	}
}

// newConn takes a connection struct from the worker's spares (closed
// connections are kept for reuse: no allocation per connection).
func (w *worker) newConn() *conn {
	if n := len(w.spare); n > 0 {
		c := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return c
	}
	return new(conn)
}

func (w *worker) lookup(fd int) *conn {
	if fd < 0 || fd >= len(w.conns) {
		return nil
	}
	return w.conns[fd]
}

// accept takes one waiting connection. Taking them until EAGAIN costs a
// failed accept4 on nearly every wake-up, as clients come one at a time;
// the listener is level-triggered, so the next wait reports the rest (with
// the events of the connections already open).
func (w *worker) accept(now time.Time) {
	s := w.s
	fd, err := accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			// The process is out of descriptors or memory: give
			// the boot a moment rather than spinning.
			time.Sleep(10 * time.Millisecond)
		default:
			if !s.stopping.Load() {
				s.cfg.Logf("httpd: accept: %v", err)
			}
		}
		return
	}
	s.Stats.Accepted.Add(1)
	if s.Stats.Open.Load() >= s.max {
		v := w.victim(now)
		if v == nil {
			s.Stats.Refused.Add(1)
			rawClose(fd)
			return
		}
		s.Stats.Reclaimed.Add(1)
		w.close(v)
	}
	c := w.newConn()
	*c = conn{fd: fd, last: now, since: now, deadline: now.Add(s.cfg.IdleTimeout), readable: true}
	for fd >= len(w.conns) {
		w.conns = append(w.conns, make([]*conn, len(w.conns)+64)...)
	}
	w.conns[fd] = c
	s.Stats.Open.Add(1)
	w.pushBack(c)
	// The listener defers accepts until the request is there (listenTCP):
	// answer it now. A "Connection: close" client is then served and
	// closed without ever entering the epoll set. What is left (a request
	// in several pieces, a keep-alive connection, a client that sent
	// nothing within the deferral) is registered for input only: a new
	// socket is writable at once, and an EPOLLOUT edge would wake the loop
	// for nothing; wantOutput adds it when a response does not fit the
	// socket. Registering a socket with input waiting queues its event, so
	// nothing that arrives meanwhile is missed.
	w.run(c, now)
	if c.fd < 0 {
		return
	}
	if err := w.register(c, unix.EPOLL_CTL_ADD); err != nil {
		w.close(c)
		return
	}
	c.inSet = true
}

// register adds the connection to the worker's epoll set (op
// EPOLL_CTL_ADD) or changes what it waits for (EPOLL_CTL_MOD): its input,
// edge-triggered, and EPOLLOUT once output has had to wait.
func (w *worker) register(c *conn, op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	if c.watchOut {
		ev.Events |= unix.EPOLLOUT
	}
	return rawEpollCtl(w.epfd, op, c.fd, &ev)
}

// wantOutput asks epoll for the connection's EPOLLOUT edges, the first time
// a response is left waiting for the client to take it (for a connection
// not yet in the set, accept registers it so).
func (w *worker) wantOutput(c *conn) {
	if c.watchOut {
		return
	}
	c.watchOut = true
	if !c.inSet {
		return
	}
	if err := w.register(c, unix.EPOLL_CTL_MOD); err != nil {
		w.close(c)
	}
}

// victim picks the connection to reclaim at the cap (limits.go): among the
// least recently active, an idle one, else a stalled one; nil when all are
// busy.
func (w *worker) victim(now time.Time) *conn {
	var best *conn
	rank, i := 0, 0
	for c := w.head; c != nil && i < victimScan && rank < 3; c, i = c.next, i+1 {
		r := reclaimRank(c.closing, c.served, len(c.in) > 0 || c.readable, len(c.out) > 0, now.Sub(c.since), now.Sub(c.last))
		if r > rank && (r != 1 || len(c.in) > 0 || !unread(c.fd)) {
			best, rank = c, r
		}
	}
	return best
}

func (w *worker) pushBack(c *conn) {
	c.prev, c.next = w.tail, nil
	if w.tail != nil {
		w.tail.next = c
	} else {
		w.head = c
	}
	w.tail = c
}

func (w *worker) unlink(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		w.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		w.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// touch records activity: the connection moves to the back of the list.
func (w *worker) touch(c *conn, now time.Time) {
	c.last = now
	if w.tail != c {
		w.unlink(c)
		w.pushBack(c)
	}
}

// run does what the connection allows now: send pending output, read and
// answer up to MaxPipeline requests, or drain a closing one.
func (w *worker) run(c *conn, now time.Time) {
	if c.closing {
		w.drain(c, now)
		return
	}
	if len(c.out) > 0 && !w.flush(c, now) {
		return
	}
	if c.closeAfter {
		w.lingerClose(c, now)
		return
	}
	w.serve(c, now)
}

// flush writes pending output; false while some is left (or the
// connection was closed).
func (w *worker) flush(c *conn, now time.Time) bool {
	n, err := rawWrite(c.fd, c.out)
	if n > 0 {
		w.touch(c, now)
		if n == len(c.out) {
			w.setOut(c, nil)
			c.deadline = now.Add(w.s.cfg.IdleTimeout)
			return true
		}
		c.out = c.out[n:]
		return false
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
		w.close(c)
	}
	return false
}

// setOut replaces the pending output, keeping the budget's account.
func (w *worker) setOut(c *conn, b []byte) {
	w.s.mem.give(c.charged - cap(c.in))
	c.charged = cap(c.in)
	c.out = b
	c.charged += cap(b)
}

// serve reads and answers what the client sent.
func (w *worker) serve(c *conn, now time.Time) {
	s := w.s
	for round := 0; round < 4; round++ {
		data := c.in
		if !c.readable && len(data) == 0 {
			return
		}
		drained := !c.readable
		if c.readable {
			var rb []byte
			if len(c.in) == 0 {
				rb = w.buf
			} else {
				if len(c.in) == cap(c.in) && !w.growIn(c) {
					return
				}
				rb = c.in[len(c.in):cap(c.in)]
			}
			n, err := rawRead(c.fd, rb)
			switch {
			case errors.Is(err, unix.EAGAIN):
				c.readable, drained = false, true
				n = 0
			case errors.Is(err, unix.EINTR):
				n = 0
			case err != nil || n == 0:
				w.close(c) // the client closed or reset
				return
			}
			if n > 0 {
				w.touch(c, now)
				if n < len(rb) {
					// A short read took everything there was; new
					// data raises a new edge.
					c.readable, drained = false, true
				}
				if len(c.in) == 0 {
					data = w.buf[:n]
				} else {
					c.in = c.in[:len(c.in)+n]
					data = c.in
				}
				if c.started.IsZero() {
					c.started = now
				}
			}
		}
		if len(data) == 0 {
			return
		}
		consumed, out, closeAfter, partial := serveBuffered(s.cfg.Handler, data, w.out[:0], &w.req, &w.resp, s.date.get(now), s.cfg.MaxPipeline, s.cfg.MaxPending)
		w.out = out
		if consumed > 0 {
			c.served, c.since = true, now
			s.Stats.Requests.Add(1)
			c.started = time.Time{}
			if partial {
				c.started = now
			}
		}
		if !w.keep(c, data[consumed:]) {
			return
		}
		if len(c.in) > 0 {
			c.deadline = c.started.Add(s.cfg.ReadTimeout)
			if c.started.IsZero() {
				c.deadline = now.Add(s.cfg.ReadTimeout)
			}
		} else {
			c.deadline = now.Add(s.cfg.IdleTimeout)
		}
		c.closeAfter = closeAfter
		if len(out) > 0 {
			sent, err := rawWrite(c.fd, out)
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				w.close(c)
				return
			}
			sent = max(sent, 0)
			if sent < len(out) {
				// The client is not taking it now: keep the rest
				// (charged), stop reading until it is sent.
				rest := out[sent:]
				if !s.mem.take(len(rest)) {
					s.Stats.Busy503.Add(1)
					w.close(c)
					return
				}
				b := append([]byte(nil), rest...)
				c.out, c.charged = b, c.charged+len(b)
				c.deadline = now.Add(s.cfg.WriteTimeout)
				w.releaseScratch()
				w.wantOutput(c)
				return
			}
			w.releaseScratch()
		}
		if closeAfter {
			if drained && len(c.in) == 0 {
				// Everything the client sent is read: a plain close
				// sends the FIN after the response, no reset.
				w.close(c)
				return
			}
			w.lingerClose(c, now)
			return
		}
		if drained && (partial || len(c.in) == 0) {
			return // nothing more to answer until the client sends
		}
	}
	// Work left (pipelined requests past the limit, unread input): give
	// the other connections a turn first.
	w.again = append(w.again, c)
}

// keep stores the unanswered input rest (it may point into the worker's
// read buffer) in the connection's own buffer; false when the budget
// refused (the connection got a 503 and is closing).
func (w *worker) keep(c *conn, rest []byte) bool {
	if len(rest) == 0 {
		if cap(c.in) > 0 {
			w.s.mem.give(cap(c.in))
			c.charged -= cap(c.in)
			c.in = nil
		}
		return true
	}
	if len(c.in) > 0 {
		c.in = c.in[:copy(c.in, rest)]
		return true
	}
	size := max(4096, len(rest))
	if !w.s.mem.take(size) {
		w.busy(c)
		return false
	}
	c.in = append(make([]byte, 0, size), rest...)
	c.charged += size
	return true
}

// growIn doubles the input buffer, up to a request's limit and the budget.
func (w *worker) growIn(c *conn) bool {
	if len(c.in) >= MaxHeaderBytes+MaxBodyBytes {
		w.reject(c, 413)
		return false
	}
	add := cap(c.in)
	if !w.s.mem.take(add) {
		w.busy(c)
		return false
	}
	b := make([]byte, len(c.in), 2*cap(c.in))
	copy(b, c.in)
	c.in = b
	c.charged += add
	return true
}

// releaseScratch lets go of the worker's buffers after a large response.
func (w *worker) releaseScratch() {
	if cap(w.out) > keepScratch {
		w.out = nil
	}
	if cap(w.resp.Body) > keepScratch {
		w.resp.Body = nil
	}
}

func (w *worker) busy(c *conn) {
	w.s.Stats.Busy503.Add(1)
	w.reject(c, 503)
}

// reject answers a status (best effort, never blocking) and closes.
func (w *worker) reject(c *conn, code int) {
	var resp Response
	errorResponse(&resp, code)
	out := appendResponse(nil, false, &resp, false, w.s.date.get(time.Now()))
	rawWrite(c.fd, out)
	w.lingerClose(c, time.Now())
}

// lingerClose shuts down our side and drains what the client still sends
// until it closes (or lingerTimeout passes), so unread data never turns the
// close into a reset that destroys the response in flight.
func (w *worker) lingerClose(c *conn, now time.Time) {
	rawShutdown(c.fd, unix.SHUT_WR)
	c.closing = true
	c.deadline = now.Add(lingerTimeout)
	w.dropBuffers(c)
	w.drain(c, now)
}

const (
	lingerTimeout = 2 * time.Second
	drainLimit    = 64 << 10 // bytes read from a closing connection before giving up on it
)

func (w *worker) drain(c *conn, now time.Time) {
	var buf [512]byte
	for i := 0; i < drainLimit/len(buf); i++ {
		n, err := rawRead(c.fd, buf[:])
		if n > 0 {
			continue
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		w.close(c)
		return
	}
	// A client pouring data into a closing connection: enough.
	w.close(c)
}

func (w *worker) dropBuffers(c *conn) {
	w.s.mem.give(c.charged)
	c.charged, c.in, c.out = 0, nil, nil
}

func (w *worker) close(c *conn) {
	if c.fd < 0 {
		return
	}
	w.dropBuffers(c)
	w.unlink(c)
	w.conns[c.fd] = nil
	rawClose(c.fd) // also removes it from the epoll set
	c.fd = -1
	if len(w.spare) < 64 {
		w.spare = append(w.spare, c)
	}
	w.s.Stats.Open.Add(-1)
}

// expire ends connections past their deadline: a request started but not
// finished gets 408; an idle, lingering or not-reading one is closed.
func (w *worker) expire(now time.Time) {
	for c := w.head; c != nil; {
		next := c.next
		if now.After(c.deadline) {
			switch {
			case c.closing:
				w.close(c)
			case len(c.out) > 0:
				w.s.Stats.TimedOut.Add(1)
				w.close(c)
			case len(c.in) > 0:
				w.s.Stats.Timeouts408.Add(1)
				w.reject(c, 408)
			default:
				w.s.Stats.TimedOut.Add(1)
				w.close(c)
			}
		}
		c = next
	}
}

func (w *worker) closeAll() {
	for w.head != nil {
		w.close(w.head)
	}
	w.again = nil
}
