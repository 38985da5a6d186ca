//go:build !nouring

package httpd

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/uring"
)

// The uring engine: one thread, one io_uring. A few single accepts stay
// armed (never multishot: see listenUring), receives land in provided
// buffers, responses go out with
// SEND; a "Connection: close" answer with nothing unread after it is a
// SEND with the CLOSE linked after it, other closes are SHUTDOWN + a
// draining RECV + CLOSE; all batched: every io_uring_enter submits what
// the last batch of completions produced and waits for the next. Timeouts
// are deadlines a tick sweeps (no timer per operation): a RECV past its
// idle, request or linger deadline is cancelled, a client that does not
// take its output is shut down. The limits of limits.go apply as in the
// pool engine.

const (
	uringEntries  = 1024
	uringBufSize  = 4096
	uringBufCount = 512 // 2 MiB of receive buffers, shared by all connections
	uringBufGroup = 1
	uringAccepts  = 4 // accepts kept armed
)

// Operation tags in user_data: op (8 bits) | conn id (24) | generation (32).
const (
	uopAccept = iota + 1
	uopRecv
	uopSend
	uopClose
	uopShutdown
	uopProvide
	uopTick
	uopCancel
)

type uconn struct {
	id, gen    uint32
	fd         int
	in, out    []byte
	charged    int // bytes of in and out charged to the budget
	sent       int
	drained    int // bytes read and dropped while closing
	inflight   int
	sending    bool
	served     bool      // answered a request
	since      time.Time // connected, or answered the last request
	closeAfter bool
	closing    bool // shut down, draining
	closed     bool
	more       bool // the last RECV left data queued in the socket (or the kernel cannot say)
	closeLink  bool // a CLOSE is linked after the SEND in flight
	receiving  bool // a RECV is in flight
	cancelled  bool // and its cancel too
	reclaimed  bool // shut down to make room at the cap
	started    time.Time
	deadline   time.Time
	last       time.Time // last activity, for reclaiming at the cap
	prev, next *uconn    // least recently active first
}

type uringServer struct {
	cfg       Config
	lfd       int
	addr      netip.AddrPort
	ring      *uring.Ring
	date      dateCache
	stats     Stats
	stopping  atomic.Bool
	done      chan struct{}
	conns     []*uconn
	free      []uint32
	nconns    int
	max       int // connections kept; more reclaim older ones
	hard      int // connections open, reclaimed ones included
	accepts   []int
	head      *uconn
	tail      *uconn
	mem       budget
	req       Request
	resp      Response
	out       []byte // the handler's output, copied to the connection
	bufs      []byte
	bufRing   *uring.BufRing // nil: buffers go back with PROVIDE_BUFFERS (before Linux 5.19)
	giveBack  []uint16
	multishot bool
	nonEmpty  bool // RECV completions say whether the socket has more data (Linux 5.19)
	tickTS    unix.Timespec
	cqes      []uring.CQE
}

func listenUring(cfg Config) (*uringServer, error) {
	cfg.defaults()
	if cfg.ringSetup != nil {
		if err := cfg.ringSetup(uringEntries); err != nil {
			return nil, err
		}
	}
	limit, err := connLimit(cfg.MaxConns)
	if err != nil {
		return nil, err
	}
	p := uring.Params{Flags: uring.SetupCQSize | uring.SetupClamp, CQEntries: 8 * uringEntries}
	if cfg.SQPoll {
		p.Flags |= uring.SetupSQPoll
		p.SQThreadIdle = uint32(max(cfg.SQPollIdle, time.Millisecond) / time.Millisecond)
		if cfg.SQPollCPU >= 0 {
			p.Flags |= uring.SetupSQAff
			p.SQThreadCPU = uint32(cfg.SQPollCPU)
		}
	}
	// Completions wait for the loop's own io_uring_enter instead of
	// interrupting the thread with task work as they come: deferred to the
	// loop's wait (Linux 6.1; the ring then belongs to the loop's thread,
	// enabled there by Serve), else cooperative (5.19), else as before.
	tries := []uint32{uring.SetupSingleIssuer | uring.SetupDeferTaskrun | uring.SetupRDisabled, uring.SetupCoopTaskrun, 0}
	if cfg.SQPoll || cfg.oldKernel {
		tries = tries[2:]
	}
	var ring *uring.Ring
	for _, extra := range tries {
		q := p
		q.Flags |= extra
		if ring, err = uring.New(uringEntries, q); err == nil || !errors.Is(err, unix.EINVAL) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ops, err := ring.Probe()
	if err != nil {
		ring.Close()
		return nil, err
	}
	for _, op := range []uint8{uring.OpAccept, uring.OpRecv, uring.OpSend, uring.OpClose, uring.OpShutdown, uring.OpProvideBuffers, uring.OpAsyncCancel, uring.OpTimeout} {
		if !ops[op] {
			ring.Close()
			return nil, fmt.Errorf("io_uring lacks operation %d (kernel too old)", op)
		}
	}
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		ring.Close()
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	fd, err := listenTCP(ap, cfg.Backlog)
	if err != nil {
		ring.Close()
		return nil, err
	}
	s := &uringServer{cfg: cfg, lfd: fd, ring: ring, done: make(chan struct{}), max: max(limit-limit/4, 1), hard: limit,
		bufs: make([]byte, uringBufSize*uringBufCount),
		// Multishot accept came with 5.19; an older kernel answers the
		// first one with EINVAL and gets single accepts re-armed.
		// Single accepts, a few at a time: a multishot accept would
		// take every connection of a flood into the completion queue,
		// a descriptor each, before the cap could say no.
		multishot: false, nonEmpty: kernelAtLeast(5, 19) && !cfg.oldKernel}
	s.mem.left.Store(cfg.MemoryBudget)
	// Receive buffers come back through a shared ring where the kernel
	// has one: a store per batch instead of a PROVIDE_BUFFERS SQE.
	if !cfg.oldKernel {
		if br, err := ring.RegisterBufRing(uringBufCount, uringBufGroup); err == nil {
			s.bufRing = br
		}
	}
	if s.addr, err = boundAddr(fd); err != nil {
		s.closeAll()
		return nil, err
	}
	return s, nil
}

func (s *uringServer) Addr() netip.AddrPort { return s.addr }
func (s *uringServer) Counters() *Stats     { return &s.stats }
func (s *uringServer) Name() string {
	if s.cfg.SQPoll {
		return "uring+sqpoll"
	}
	return "uring"
}

func (s *uringServer) Serve() {
	spareP(1)
	go func() {
		defer close(s.done)
		runtime.LockOSThread()
		lowerPriority(s.cfg.Nice)
		if s.ring.Flags()&uring.SetupRDisabled != 0 {
			if err := s.ring.Enable(); err != nil {
				s.cfg.Logf("httpd: %v", err)
				s.closeAll()
				return
			}
		}
		for !s.stopping.Load() {
			func() {
				defer func() {
					if r := recover(); r != nil {
						s.cfg.Logf("httpd: uring loop recovered from panic: %v", r)
					}
				}()
				s.loop()
			}()
		}
		s.closeAll()
	}()
}

// Shutdown stops the loop, which closes every connection; it returns
// within StopTimeout even if a handler hangs (the loop closes them when
// the handler returns).
func (s *uringServer) Shutdown() {
	if s.stopping.Swap(true) {
		return
	}
	select {
	case <-s.done: // the loop ended on its own (its ring could not start) and closed everything
		return
	default:
	}
	unix.Shutdown(s.lfd, unix.SHUT_RDWR)
	select {
	case <-s.done:
	case <-time.After(s.cfg.StopTimeout):
		s.cfg.Logf("httpd: a handler is still running after %v: stopped without it", s.cfg.StopTimeout)
	}
}

func (s *uringServer) closeAll() {
	for _, fd := range s.accepts {
		rawClose(fd)
	}
	for _, c := range s.conns {
		if c != nil && !c.closed {
			rawClose(c.fd)
			c.closed = true
		}
	}
	unix.Close(s.lfd)
	s.ring.Close()
	if s.bufRing != nil {
		s.bufRing.Free()
	}
}

func tag(op int, id, gen uint32) uint64 {
	return uint64(op)<<56 | uint64(id&0xffffff)<<32 | uint64(gen)
}
func untag(ud uint64) (op int, id, gen uint32) {
	return int(ud >> 56), uint32(ud>>32) & 0xffffff, uint32(ud)
}

// reserve makes room for a chain of n linked SQEs, so that a flush never
// splits a chain between two submissions (which would break the link).
func (s *uringServer) reserve(n uint32) {
	for s.ring.Space() < n {
		if _, err := s.ring.Submit(0); err != nil && !errors.Is(err, unix.EBUSY) {
			s.cfg.Logf("httpd: io_uring_enter: %v", err)
		}
	}
}

// sqe returns a free submission slot, flushing the queue when it is full.
func (s *uringServer) sqe() *uring.SQE {
	for {
		if e := s.ring.GetSQE(); e != nil {
			return e
		}
		if _, err := s.ring.Submit(0); err != nil && !errors.Is(err, unix.EBUSY) {
			s.cfg.Logf("httpd: io_uring_enter: %v", err)
		}
	}
}

func (s *uringServer) loop() {
	if s.conns == nil {
		s.conns = []*uconn{}
		if s.bufRing != nil {
			for bid := 0; bid < uringBufCount; bid++ {
				s.bufRing.Add(s.buf(uint16(bid)), uringBufSize, uint16(bid))
			}
			s.bufRing.Publish()
		} else {
			s.provide(0, uringBufCount)
		}
		for i := 0; i < uringAccepts; i++ {
			s.armAccept()
		}
		s.armTick()
	}
	for !s.stopping.Load() {
		// Submit what the last batch produced and take what is ready
		// without waiting (a raw call); only when nothing is ready wait,
		// through the scheduler, which frees the thread's P meanwhile.
		_, err := s.ring.Poll()
		if s.cqes = s.ring.PeekCQEs(s.cqes[:0]); len(s.cqes) == 0 && err == nil {
			_, err = s.ring.Submit(1)
			s.cqes = s.ring.PeekCQEs(s.cqes[:0])
		}
		if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ETIME) {
			s.cfg.Logf("httpd: io_uring_enter: %v", err)
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range s.cqes {
			s.complete(c)
		}
		s.ring.Advance(uint32(len(s.cqes)))
		for _, fd := range s.accepts {
			s.admit(fd)
		}
		s.accepts = s.accepts[:0]
		if s.bufRing != nil && len(s.giveBack) > 0 {
			for _, bid := range s.giveBack {
				s.bufRing.Add(s.buf(bid), uringBufSize, bid)
			}
			s.bufRing.Publish()
		} else {
			for _, bid := range s.giveBack {
				s.provide(bid, 1)
			}
		}
		s.giveBack = s.giveBack[:0]
	}
}

// buf is the start of receive buffer bid.
func (s *uringServer) buf(bid uint16) unsafe.Pointer {
	return unsafe.Pointer(&s.bufs[int(bid)*uringBufSize])
}

func (s *uringServer) provide(bid uint16, n int) {
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpProvideBuffers, int32(n)
	e.Addr = uint64(uintptr(s.buf(bid)))
	e.Len, e.Off, e.BufIndex = uringBufSize, uint64(bid), uringBufGroup
	e.UserData = tag(uopProvide, 0, 0)
}

func (s *uringServer) armAccept() {
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpAccept, int32(s.lfd)
	e.OpFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	if s.multishot {
		e.IOPrio = uring.AcceptMultishot
	}
	e.UserData = tag(uopAccept, 0, 0)
}

// armTick arms the sweep of deadlines: every 200 ms, or a quarter of the
// shortest timeout configured.
func (s *uringServer) armTick() {
	d := min(200*time.Millisecond, min(s.cfg.IdleTimeout, s.cfg.ReadTimeout, s.cfg.WriteTimeout, lingerTimeout)/4)
	s.tickTS = unix.NsecToTimespec(int64(max(d, 5*time.Millisecond)))
	e := s.sqe()
	e.Opcode, e.Addr, e.Len = uring.OpTimeout, uint64(uintptr(unsafe.Pointer(&s.tickTS))), 1
	e.UserData = tag(uopTick, 0, 0)
}

func (s *uringServer) newConn(fd int) *uconn {
	var c *uconn
	if n := len(s.free); n > 0 {
		c = s.conns[s.free[n-1]]
		s.free = s.free[:n-1]
		*c = uconn{id: c.id, gen: c.gen + 1}
	} else {
		c = &uconn{id: uint32(len(s.conns)), gen: 1}
		s.conns = append(s.conns, c)
	}
	c.fd = fd
	c.last = time.Now()
	c.since = c.last
	s.nconns++
	s.stats.Open.Add(1)
	s.pushBack(c)
	return c
}

func (s *uringServer) pushBack(c *uconn) {
	c.prev, c.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = c
	} else {
		s.head = c
	}
	s.tail = c
}

func (s *uringServer) unlink(c *uconn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if s.head == c {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if s.tail == c {
		s.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (s *uringServer) touch(c *uconn) {
	c.last = time.Now()
	if s.tail != c && !c.closed && !c.reclaimed {
		s.unlink(c)
		s.pushBack(c)
	}
}

// victim picks the connection to reclaim at the cap, as the pool engine
// does: among the least recently active, an idle one, else a stalled one.
func (s *uringServer) victim(now time.Time) *uconn {
	var best *uconn
	rank, i := 0, 0
	for c := s.head; c != nil && i < victimScan && rank < 3; c, i = c.next, i+1 {
		r := reclaimRank(c.closing, c.served, len(c.in) > 0, c.sending, now.Sub(c.since), now.Sub(c.last))
		if r > rank && (r != 1 || len(c.in) > 0 || !unread(c.fd)) {
			best, rank = c, r
		}
	}
	return best
}

// kill ends a connection from outside its operations: shutting the socket
// down completes its pending RECV or SEND, whose completion closes it. A
// SEND with a CLOSE linked after it is cancelled instead: by the time its
// completion is read the CLOSE may have run and the descriptor number may
// belong to a newer connection, which a shutdown would hit.
func (s *uringServer) kill(c *uconn) {
	c.reclaimed = true
	s.unlink(c)
	if c.closeLink {
		s.cancel(c, uopSend)
		return
	}
	rawShutdown(c.fd, unix.SHUT_RDWR)
}

// cancel asks the kernel to cancel c's pending op, found by its user_data
// (never by descriptor: the number may belong to a newer connection).
func (s *uringServer) cancel(c *uconn, op int) {
	e := s.sqe()
	e.Opcode, e.Addr = uring.OpAsyncCancel, tag(op, c.id, c.gen)
	e.UserData = tag(uopCancel, 0, 0)
}

// account charges the connection's buffers to the budget; false (and
// nothing charged) when they do not fit.
func (s *uringServer) account(c *uconn) bool {
	n := cap(c.in) + cap(c.out)
	if n > c.charged && !s.mem.take(n-c.charged) {
		return false
	}
	s.mem.give(c.charged - n)
	c.charged = n
	return true
}

// trim releases buffers larger than an idle connection needs.
func (s *uringServer) trim(c *uconn) {
	if len(c.in) == 0 && cap(c.in) > 4096 {
		c.in = nil
	}
	if !c.sending && cap(c.out) > 4096 {
		c.out = nil
	}
	if cap(s.resp.Body) > keepScratch {
		s.resp.Body = nil
	}
	s.account(c)
}

// armRecv waits for data until a deadline the tick enforces: the idle
// timeout between requests, the request timeout inside one, the linger
// time when closing.
func (s *uringServer) armRecv(c *uconn) {
	var d time.Duration
	switch {
	case c.closing:
		d = time.Until(c.deadline)
	case len(c.in) > 0:
		if c.started.IsZero() {
			c.started = time.Now()
		}
		d = time.Until(c.started.Add(s.cfg.ReadTimeout))
	default:
		d = s.cfg.IdleTimeout
	}
	c.deadline = time.Now().Add(d)
	e := s.sqe()
	e.Opcode, e.Fd, e.Flags = uring.OpRecv, int32(c.fd), uring.SQEBufferSelect
	e.Len, e.BufIndex = uringBufSize, uringBufGroup
	e.UserData = tag(uopRecv, c.id, c.gen)
	c.inflight++
	c.receiving, c.cancelled = true, false
}

func (s *uringServer) armSend(c *uconn) *uring.SQE {
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpSend, int32(c.fd)
	e.Addr, e.Len = uint64(uintptr(unsafe.Pointer(&c.out[c.sent]))), uint32(len(c.out)-c.sent)
	e.OpFlags = unix.MSG_NOSIGNAL
	e.UserData = tag(uopSend, c.id, c.gen)
	c.inflight++
	if !c.sending {
		c.sending = true
		c.deadline = time.Now().Add(s.cfg.WriteTimeout)
	}
	return e
}

// quiet: everything the client sent has been read and answered, so a
// plain close sends the FIN after the response and no reset can destroy
// it; no linger needed (the pool engine's rule, with the RECV
// completion's "socket not empty" flag in place of a read that found
// nothing).
func (s *uringServer) quiet(c *uconn) bool {
	return len(c.in) == 0 && !c.more
}

// sendClose sends the last answer and closes in one submission: a SEND
// that completes only when all of it is sent (MSG_WAITALL: a short send
// goes on, an error cancels the link) with the CLOSE linked after it.
func (s *uringServer) sendClose(c *uconn) {
	s.reserve(2)
	e := s.armSend(c)
	e.Flags |= uring.SQEIOLink
	e.OpFlags |= unix.MSG_WAITALL
	c.closeLink = true
	e = s.sqe()
	e.Opcode, e.Fd = uring.OpClose, int32(c.fd)
	e.UserData = tag(uopClose, c.id, c.gen)
	c.inflight++
}

// lingerClose shuts our side down and drains until the client closes (or
// the linger time passes), so unread data never resets the connection.
func (s *uringServer) lingerClose(c *uconn) {
	c.closing = true
	c.deadline = time.Now().Add(lingerTimeout)
	// Linked: the draining RECV (and so the CLOSE after it) runs only
	// after the SHUTDOWN; unlinked, a SHUTDOWN punted to a worker thread
	// was measured hitting the next connection that got the same fd.
	s.reserve(2)
	e := s.sqe()
	e.Opcode, e.Fd, e.Len, e.Flags = uring.OpShutdown, int32(c.fd), unix.SHUT_WR, uring.SQEIOLink
	e.UserData = tag(uopShutdown, c.id, c.gen)
	c.inflight++
	s.armRecv(c)
}

func (s *uringServer) close(c *uconn) {
	if c.closed {
		return
	}
	s.closed(c)
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpClose, int32(c.fd)
	e.UserData = tag(uopClose, c.id, c.gen)
	c.inflight++
}

// closed marks the connection closed and gives its buffers back; its
// CLOSE is submitted (or linked) by the caller.
func (s *uringServer) closed(c *uconn) {
	c.closed = true
	if !c.reclaimed {
		s.unlink(c)
	}
	c.in, c.out = nil, nil
	s.account(c)
}

func (s *uringServer) release(c *uconn) {
	if c.closed && c.inflight == 0 {
		s.free = append(s.free, c.id)
		s.nconns--
		s.stats.Open.Add(-1)
		c.gen++ // late completions can no longer match
	}
}

func (s *uringServer) complete(cqe uring.CQE) {
	op, id, gen := untag(cqe.UserData)
	switch op {
	case uopAccept:
		s.accepted(cqe)
		return
	case uopTick:
		if !s.stopping.Load() {
			s.expire(time.Now())
			s.armTick()
		}
		return
	case uopCancel:
		return // the cancelled operation's own completion says what happened
	case uopProvide:
		if cqe.Res < 0 {
			s.cfg.Logf("httpd: provide buffers: %v", unix.Errno(-cqe.Res))
		}
		return
	}
	if int(id) >= len(s.conns) || s.conns[id].gen != gen {
		return
	}
	c := s.conns[id]
	c.inflight--
	defer s.release(c)
	switch op {
	case uopRecv:
		s.received(c, cqe)
	case uopSend:
		s.sent(c, cqe)
	case uopShutdown, uopClose:
		// Nothing to do: the RECV's result drives the connection.
	}
}

func (s *uringServer) accepted(cqe uring.CQE) {
	if cqe.Res == -int32(unix.EINVAL) && s.multishot && !s.stopping.Load() {
		s.multishot = false
		s.cfg.Logf("httpd: no multishot accept in this kernel: re-arming single accepts")
		s.armAccept()
		return
	}
	if cqe.Flags&uring.CQEFMore == 0 && !s.stopping.Load() {
		s.armAccept()
	}
	if cqe.Res < 0 {
		if errno := unix.Errno(-cqe.Res); errno == unix.EMFILE || errno == unix.ENFILE {
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	s.stats.Accepted.Add(1)
	// Admitted after the whole batch: a connection that looks silent may
	// have its request in a completion of this batch.
	s.accepts = append(s.accepts, int(cqe.Res))
}

// admit takes a new connection in, reclaiming an older one at the cap.
func (s *uringServer) admit(fd int) {
	if s.nconns >= s.max {
		// Reclaimed connections hold their descriptor until their
		// close completes (a later batch): reclaiming starts at three
		// quarters of the cap and the cap itself is never passed.
		var v *uconn
		if s.nconns < s.hard {
			v = s.victim(time.Now())
		}
		if v == nil {
			s.stats.Refused.Add(1)
			rawClose(fd)
			return
		}
		s.stats.Reclaimed.Add(1)
		s.kill(v)
	}
	c := s.newConn(fd)
	s.armRecv(c)
}

// expire ends what is past its deadline: a client that has not taken its
// output within WriteTimeout is shut down; a RECV past its deadline is
// cancelled, and its completion (ECANCELED) answers 408 to a started
// request or closes the connection.
func (s *uringServer) expire(now time.Time) {
	for c := s.head; c != nil; {
		next := c.next
		switch {
		case !now.After(c.deadline):
		case c.sending:
			s.stats.TimedOut.Add(1)
			s.kill(c)
		case c.receiving && !c.cancelled:
			c.cancelled = true
			s.cancel(c, uopRecv)
		}
		c = next
	}
}

func (s *uringServer) respondError(c *uconn, code int) {
	var resp Response
	errorResponse(&resp, code)
	c.in = nil
	c.out = appendResponse(c.out[:0], false, &resp, false, s.date.get(time.Now()))
	s.account(c) // a few bytes: over budget for a moment at worst
	c.sent, c.closeAfter = 0, true
	s.armSend(c)
}

func (s *uringServer) received(c *uconn, cqe uring.CQE) {
	c.receiving = false
	if cqe.Flags&uring.CQEFBuffer != 0 {
		bid := uint16(cqe.Flags >> uring.CQEBufferShift)
		if cqe.Res > 0 && !c.closing {
			c.in = append(c.in, s.bufs[int(bid)*uringBufSize:int(bid)*uringBufSize+int(cqe.Res)]...)
			s.touch(c)
		}
		s.giveBack = append(s.giveBack, bid)
	}
	switch {
	case cqe.Res == -int32(unix.ENOBUFS):
		s.armRecv(c) // buffers come back at the end of this batch
		return
	case cqe.Res == -int32(unix.ECANCELED):
		// Past its deadline: expire cancelled it.
		if !c.closing && len(c.in) > 0 && !c.reclaimed {
			s.stats.Timeouts408.Add(1)
			s.respondError(c, 408)
			return
		}
		s.close(c)
		return
	case cqe.Res <= 0:
		s.close(c) // EOF, reset or error
		return
	}
	c.more = !s.nonEmpty || cqe.Flags&uring.CQEFSockNonEmpty != 0
	if c.closing {
		// Keep draining, but not for a client that pours data into a
		// closing connection.
		if c.drained += int(cqe.Res); c.drained > drainLimit {
			s.close(c)
			return
		}
		s.armRecv(c)
		return
	}
	if len(c.in) >= MaxHeaderBytes+MaxBodyBytes {
		s.respondError(c, 413)
		return
	}
	s.process(c)
}

// serve answers the complete requests buffered into the server's output
// buffer.
func (s *uringServer) serve(c *uconn) (out []byte, closeAfter, partial bool) {
	consumed, out, closeAfter, partial := serveBuffered(s.cfg.Handler, c.in, s.out[:0], &s.req, &s.resp, s.date.get(time.Now()), s.cfg.MaxPipeline, s.cfg.MaxPending)
	s.out = out
	if consumed > 0 {
		c.served, c.since = true, time.Now()
		c.in = c.in[:copy(c.in, c.in[consumed:])]
		s.stats.Requests.Add(1)
		c.started = time.Time{}
	}
	return out, closeAfter, partial
}

// process answers the complete requests buffered (up to the pipelining
// limits) and sends the answers, or waits for more input.
func (s *uringServer) process(c *uconn) {
	for s.processOnce(c) {
	}
}

// processOnce is one round of process; true when every answer went out at
// once and pipelined requests are left to answer.
func (s *uringServer) processOnce(c *uconn) bool {
	if !s.account(c) {
		s.stats.Busy503.Add(1)
		s.respondError(c, 503)
		return false
	}
	out, closeAfter, partial := s.serve(c)
	if partial && c.started.IsZero() {
		c.started = time.Now()
	}
	// The answers go out from the connection's own buffer (the kernel
	// reads it until the SEND completes), charged before it is made.
	c.sent, c.closeAfter = 0, closeAfter
	if len(out) > keepBuffer {
		// A large answer: hand the kernel what it takes now, straight
		// from the render buffer, and keep only the rest.
		if n, _ := rawWrite(c.fd, out); n > 0 {
			out = out[n:]
			s.touch(c)
		}
	}
	if len(out) > cap(c.out) {
		old := c.out
		c.out = nil
		if !s.account(c) || !s.mem.take(len(out)) {
			c.out = old
			s.stats.Busy503.Add(1)
			s.respondError(c, 503)
			return false
		}
		c.out = make([]byte, 0, len(out))
		c.charged += len(out)
	}
	c.out = append(c.out[:0], out...)
	if cap(s.out) > keepScratch {
		s.out = nil
	}
	if len(out) > 0 {
		if closeAfter && s.quiet(c) {
			s.sendClose(c)
		} else {
			s.armSend(c)
		}
		return false
	}
	if closeAfter {
		s.lingerClose(c)
		return false
	}
	s.trim(c)
	if len(c.in) > 0 && c.started.IsZero() {
		return true
	}
	s.armRecv(c)
	return false
}

func (s *uringServer) sent(c *uconn, cqe uring.CQE) {
	if c.closeLink {
		c.closeLink = false
		if cqe.Res == int32(len(c.out)-c.sent) {
			// All sent: the linked CLOSE has the descriptor.
			s.closed(c)
			return
		}
		// Failed or cancelled: so is the CLOSE; close it here.
		s.close(c)
		return
	}
	if cqe.Res < 0 {
		s.close(c)
		return
	}
	if cqe.Res > 0 {
		s.touch(c)
	}
	c.sent += int(cqe.Res)
	if c.sent < len(c.out) {
		s.armSend(c)
		return
	}
	c.sending = false
	if c.closeAfter {
		quiet := s.quiet(c)
		c.in, c.out = nil, nil
		s.account(c)
		if quiet {
			s.close(c)
		} else {
			s.lingerClose(c)
		}
		return
	}
	s.trim(c)
	if len(c.in) > 0 && c.started.IsZero() {
		// Pipelined requests left past the limits: answer them before
		// reading more.
		s.process(c)
		return
	}
	s.armRecv(c)
}

// kernelAtLeast: the running kernel's release is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var v [2]int
	i := 0
	for _, b := range u.Release {
		if b >= '0' && b <= '9' {
			v[i] = v[i]*10 + int(b-'0')
			continue
		}
		if b != '.' || i == 1 {
			break
		}
		i = 1
	}
	return v[0] > major || v[0] == major && v[1] >= minor
}
