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

// The uring engine: one thread, one io_uring. Accept is multishot where the
// kernel has it, receives land in provided buffers, responses go out with
// SEND, and closes are SHUTDOWN + a draining RECV + CLOSE, all batched:
// every io_uring_enter submits what the last batch of completions produced
// and waits for the next. Idle and request timeouts are linked timeouts on
// the RECV.

const (
	uringEntries  = 1024
	uringBufSize  = 4096
	uringBufCount = 1024
	uringBufGroup = 1
	uringMaxConns = 1 << 16
)

// Operation tags in user_data: op (8 bits) | conn id (24) | generation (32).
const (
	uopAccept = iota + 1
	uopRecv
	uopSend
	uopLinkTimeout
	uopClose
	uopShutdown
	uopProvide
	uopTick
)

type uconn struct {
	id, gen    uint32
	fd         int
	in, out    []byte
	sent       int
	resp       Response
	inflight   int
	closeAfter bool
	closing    bool // shut down, draining
	closed     bool
	started    time.Time
	deadline   time.Time
	ts         unix.Timespec // the linked timeout's duration (read at submit)
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
	bufs      []byte
	giveBack  []uint16
	multishot bool
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
	p := uring.Params{Flags: uring.SetupCQSize | uring.SetupClamp, CQEntries: 8 * uringEntries}
	if cfg.SQPoll {
		p.Flags |= uring.SetupSQPoll
		p.SQThreadIdle = uint32(max(cfg.SQPollIdle, time.Millisecond) / time.Millisecond)
		if cfg.SQPollCPU >= 0 {
			p.Flags |= uring.SetupSQAff
			p.SQThreadCPU = uint32(cfg.SQPollCPU)
		}
	}
	ring, err := uring.New(uringEntries, p)
	if err != nil {
		return nil, err
	}
	ops, err := ring.Probe()
	if err != nil {
		ring.Close()
		return nil, err
	}
	for _, op := range []uint8{uring.OpAccept, uring.OpRecv, uring.OpSend, uring.OpClose, uring.OpShutdown, uring.OpProvideBuffers, uring.OpLinkTimeout, uring.OpTimeout} {
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
	s := &uringServer{cfg: cfg, lfd: fd, ring: ring, done: make(chan struct{}),
		bufs: make([]byte, uringBufSize*uringBufCount),
		// Multishot accept came with 5.19; an older kernel answers the
		// first one with EINVAL and gets single accepts re-armed.
		multishot: true}
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
	go func() {
		defer close(s.done)
		runtime.LockOSThread()
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

func (s *uringServer) Shutdown() {
	if s.stopping.Swap(true) {
		return
	}
	unix.Shutdown(s.lfd, unix.SHUT_RDWR)
	<-s.done
}

func (s *uringServer) closeAll() {
	for _, c := range s.conns {
		if c != nil && !c.closed {
			rawClose(c.fd)
			c.closed = true
		}
	}
	unix.Close(s.lfd)
	s.ring.Close()
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
		s.provide(0, uringBufCount)
		s.armAccept()
		s.armTick()
	}
	for !s.stopping.Load() {
		if _, err := s.ring.Submit(1); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ETIME) {
			s.cfg.Logf("httpd: io_uring_enter: %v", err)
			time.Sleep(10 * time.Millisecond)
		}
		s.cqes = s.ring.PeekCQEs(s.cqes[:0])
		for _, c := range s.cqes {
			s.complete(c)
		}
		s.ring.Advance(uint32(len(s.cqes)))
		for _, bid := range s.giveBack {
			s.provide(bid, 1)
		}
		s.giveBack = s.giveBack[:0]
	}
}

func (s *uringServer) provide(bid uint16, n int) {
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpProvideBuffers, int32(n)
	e.Addr = uint64(uintptr(unsafe.Pointer(&s.bufs[int(bid)*uringBufSize])))
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

func (s *uringServer) armTick() {
	s.tickTS = unix.NsecToTimespec(int64(200 * time.Millisecond))
	e := s.sqe()
	e.Opcode, e.Addr, e.Len = uring.OpTimeout, uint64(uintptr(unsafe.Pointer(&s.tickTS))), 1
	e.UserData = tag(uopTick, 0, 0)
}

func (s *uringServer) newConn(fd int) *uconn {
	var c *uconn
	if n := len(s.free); n > 0 {
		c = s.conns[s.free[n-1]]
		s.free = s.free[:n-1]
		*c = uconn{id: c.id, gen: c.gen + 1, in: c.in[:0], out: c.out[:0], resp: Response{Body: c.resp.Body[:0]}}
	} else {
		c = &uconn{id: uint32(len(s.conns)), gen: 1}
		s.conns = append(s.conns, c)
	}
	c.fd = fd
	s.nconns++
	return c
}

// armRecv waits for data with a linked timeout: the idle timeout between
// requests, the request timeout inside one, the linger time when closing.
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
	c.ts = unix.NsecToTimespec(int64(max(d, time.Millisecond)))
	s.reserve(2)
	e := s.sqe()
	e.Opcode, e.Fd, e.Flags = uring.OpRecv, int32(c.fd), uring.SQEIOLink|uring.SQEBufferSelect
	e.Len, e.BufIndex = uringBufSize, uringBufGroup
	e.UserData = tag(uopRecv, c.id, c.gen)
	t := s.sqe()
	t.Opcode, t.Addr, t.Len = uring.OpLinkTimeout, uint64(uintptr(unsafe.Pointer(&c.ts))), 1
	t.UserData = tag(uopLinkTimeout, c.id, c.gen)
	c.inflight += 2
}

func (s *uringServer) armSend(c *uconn) {
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpSend, int32(c.fd)
	e.Addr, e.Len = uint64(uintptr(unsafe.Pointer(&c.out[c.sent]))), uint32(len(c.out)-c.sent)
	e.OpFlags = unix.MSG_NOSIGNAL
	e.UserData = tag(uopSend, c.id, c.gen)
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
	s.reserve(3)
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
	c.closed = true
	e := s.sqe()
	e.Opcode, e.Fd = uring.OpClose, int32(c.fd)
	e.UserData = tag(uopClose, c.id, c.gen)
	c.inflight++
}

func (s *uringServer) release(c *uconn) {
	if c.closed && c.inflight == 0 {
		s.free = append(s.free, c.id)
		s.nconns--
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
			s.armTick()
		}
		return
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
	case uopShutdown, uopLinkTimeout, uopClose:
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
	c := s.newConn(int(cqe.Res))
	if s.nconns > uringMaxConns {
		s.stats.Rejected503.Add(1)
		s.respondError(c, 503)
		return
	}
	s.armRecv(c)
}

func (s *uringServer) respondError(c *uconn, code int) {
	errorResponse(&c.resp, code)
	c.out = appendResponse(c.out[:0], false, &c.resp, false, s.date.get(time.Now()))
	c.sent, c.closeAfter = 0, true
	s.armSend(c)
}

func (s *uringServer) received(c *uconn, cqe uring.CQE) {
	if cqe.Flags&uring.CQEFBuffer != 0 {
		bid := uint16(cqe.Flags >> uring.CQEBufferShift)
		if cqe.Res > 0 && !c.closing {
			c.in = append(c.in, s.bufs[int(bid)*uringBufSize:int(bid)*uringBufSize+int(cqe.Res)]...)
		}
		s.giveBack = append(s.giveBack, bid)
	}
	switch {
	case cqe.Res == -int32(unix.ENOBUFS):
		s.armRecv(c) // buffers come back at the end of this batch
		return
	case cqe.Res == -int32(unix.ECANCELED):
		// The linked timeout fired.
		if !c.closing && len(c.in) > 0 {
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
	if c.closing {
		s.armRecv(c) // keep draining
		return
	}
	if len(c.in) >= MaxHeaderBytes+MaxBodyBytes {
		c.in = c.in[:0]
		s.respondError(c, 413)
		return
	}
	consumed, out, closeAfter, partial := serveBuffered(s.cfg.Handler, c.in, c.out[:0], &c.resp, s.date.get(time.Now()))
	if consumed > 0 {
		c.in = c.in[:copy(c.in, c.in[consumed:])]
		s.stats.Requests.Add(1)
		c.started = time.Time{}
	}
	if partial && c.started.IsZero() {
		c.started = time.Now()
	}
	c.out, c.sent, c.closeAfter = out, 0, closeAfter
	if len(out) > 0 {
		s.armSend(c)
		return
	}
	s.armRecv(c)
}

func (s *uringServer) sent(c *uconn, cqe uring.CQE) {
	if cqe.Res < 0 {
		s.close(c)
		return
	}
	c.sent += int(cqe.Res)
	if c.sent < len(c.out) {
		s.armSend(c)
		return
	}
	if c.closeAfter {
		s.lingerClose(c)
		return
	}
	s.armRecv(c)
}
