// Package uring is a small io_uring layer over raw system calls
// (io_uring_setup, io_uring_enter, io_uring_register) and the mmap'd
// submission and completion rings, written from the kernel's io_uring ABI.
// The ring heads and tails shared with the kernel are read with acquire and
// written with release semantics (sync/atomic), as the ABI requires.
package uring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Setup flags.
const (
	SetupSQPoll = 1 << 1
	SetupSQAff  = 1 << 2
	SetupCQSize = 1 << 3
	SetupClamp  = 1 << 4
	// SetupRDisabled: the ring starts disabled; Enable starts it, from
	// the thread that will own it when SetupSingleIssuer is set.
	SetupRDisabled = 1 << 6
	// SetupCoopTaskrun: completions are not pushed to the task with an
	// interrupting signal; they wait for its next system call (5.19).
	SetupCoopTaskrun = 1 << 8
	// SetupSingleIssuer: one thread submits (6.0).
	SetupSingleIssuer = 1 << 12
	// SetupDeferTaskrun: completion work runs only when the owning
	// thread enters to wait for completions (6.1; needs SetupSingleIssuer).
	SetupDeferTaskrun = 1 << 13
)

// FeatSingleMmap: the kernel maps both rings with one mmap.
const FeatSingleMmap = 1 << 0

// Opcodes this package uses.
const (
	OpNop            = 0
	OpTimeout        = 11
	OpAccept         = 13
	OpAsyncCancel    = 14
	OpLinkTimeout    = 15
	OpClose          = 19
	OpSend           = 26
	OpRecv           = 27
	OpProvideBuffers = 31
	OpShutdown       = 34
)

// SQE flags.
const (
	SQEIOLink       = 1 << 2
	SQEBufferSelect = 1 << 5
)

// CQE flags.
const (
	CQEFBuffer = 1 << 0
	CQEFMore   = 1 << 1
	// CQEFSockNonEmpty on a RECV's completion: the socket has more data
	// queued (Linux 5.19 and later; older kernels never set it).
	CQEFSockNonEmpty = 1 << 2
	CQEBufferShift   = 16
)

// AcceptMultishot goes in an accept SQE's ioprio.
const AcceptMultishot = 1 << 0

const (
	enterGetEvents = 1 << 0
	enterSQWakeup  = 1 << 1
	sqNeedWakeup   = 1 << 0

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	registerProbe       = 8
	registerEnableRings = 12
	registerPbufRing    = 22
	probeOpSupported    = 1 << 0
)

// SQE is struct io_uring_sqe (64 bytes).
type SQE struct {
	Opcode      uint8
	Flags       uint8
	IOPrio      uint16
	Fd          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32
	UserData    uint64
	BufIndex    uint16 // buf_index or buf_group
	Personality uint16
	SpliceFdIn  int32
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe (16 bytes).
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

type sqOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type cqOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

// Params is struct io_uring_params (120 bytes).
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	Resv         [3]uint32
	SQOff        sqOffsets
	CQOff        cqOffsets
}

// Ring is one io_uring instance. It is not safe for concurrent use: one
// thread owns it.
type Ring struct {
	fd      int
	params  Params
	sqMem   []byte
	cqMem   []byte
	sqeMem  []byte
	sqHead  *uint32
	sqTail  *uint32
	sqFlags *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []SQE
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []CQE
	sqeTail uint32 // next SQE to hand out (local)
	sqeHead uint32 // next SQE to publish
}

// New sets up a ring with entries submission slots.
func New(entries uint32, p Params) (*Ring, error) {
	r := &Ring{params: p}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r.fd = int(fd)
	if err := r.mmap(); err != nil {
		unix.Close(r.fd)
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap() error {
	p := &r.params
	sqSize := int(p.SQOff.Array + p.SQEntries*4)
	cqSize := int(p.CQOff.CQEs + p.CQEntries*uint32(unsafe.Sizeof(CQE{})))
	single := p.Features&FeatSingleMmap != 0
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap SQ ring: %w", err)
	}
	if single {
		r.cqMem = r.sqMem
	} else if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		unix.Munmap(r.sqMem)
		return fmt.Errorf("mmap CQ ring: %w", err)
	}
	sqeBytes := int(p.SQEntries) * int(unsafe.Sizeof(SQE{}))
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.unmap()
		return fmt.Errorf("mmap SQEs: %w", err)
	}
	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqHead, r.sqTail, r.sqFlags = u32(r.sqMem, p.SQOff.Head), u32(r.sqMem, p.SQOff.Tail), u32(r.sqMem, p.SQOff.Flags)
	r.sqMask = *u32(r.sqMem, p.SQOff.RingMask)
	r.sqArray = unsafe.Slice(u32(r.sqMem, p.SQOff.Array), p.SQEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.SQEntries)
	r.cqHead, r.cqTail = u32(r.cqMem, p.CQOff.Head), u32(r.cqMem, p.CQOff.Tail)
	r.cqMask = *u32(r.cqMem, p.CQOff.RingMask)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&r.cqMem[p.CQOff.CQEs])), p.CQEntries)
	return nil
}

func (r *Ring) unmap() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.cqMem != nil && &r.cqMem[0] != &r.sqMem[0] {
		unix.Munmap(r.cqMem)
	}
	if r.sqMem != nil {
		unix.Munmap(r.sqMem)
	}
}

// Close releases the ring.
func (r *Ring) Close() error {
	r.unmap()
	return unix.Close(r.fd)
}

// SQPoll says whether the ring has a kernel submission thread.
func (r *Ring) SQPoll() bool { return r.params.Flags&SetupSQPoll != 0 }

// GetSQE returns a zeroed SQE to fill, or nil when the queue is full
// (call Submit first).
func (r *Ring) GetSQE() *SQE {
	head := atomic.LoadUint32(r.sqHead) // acquire: the kernel consumed up to here
	if r.sqeTail-head >= uint32(len(r.sqes)) {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	*sqe = SQE{}
	r.sqeTail++
	return sqe
}

// Space is how many SQEs GetSQE can hand out before a Submit.
func (r *Ring) Space() uint32 {
	return uint32(len(r.sqes)) - (r.sqeTail - atomic.LoadUint32(r.sqHead))
}

// flush publishes the filled SQEs to the kernel and returns how many are
// waiting to be consumed.
func (r *Ring) flush() uint32 {
	tail := *r.sqTail
	for ; r.sqeHead != r.sqeTail; r.sqeHead++ {
		r.sqArray[tail&r.sqMask] = r.sqeHead & r.sqMask
		tail++
	}
	atomic.StoreUint32(r.sqTail, tail) // release: SQE contents before the tail
	return tail - atomic.LoadUint32(r.sqHead)
}

// Submit publishes pending SQEs and, when wait > 0, waits until that many
// completions are ready, in one io_uring_enter unless the wait is cut
// short. With SQPOLL it enters only to wake the kernel thread or to wait.
//
// An enter that submitted something reports the count and drops the error
// of its wait, so a signal during the wait (EINTR) or a timeout firing
// elsewhere returns it early with nothing to show; Submit then waits again,
// submitting nothing, until the completions are there.
func (r *Ring) Submit(wait uint32) (int, error) {
	n, err := r.submit(wait)
	for err == nil && wait > 0 && r.ready() < wait {
		_, err = r.enter(unix.Syscall6, 0, wait, enterGetEvents)
	}
	return n, err
}

// ready is how many completions wait to be consumed.
func (r *Ring) ready() uint32 {
	return atomic.LoadUint32(r.cqTail) - *r.cqHead
}

// submit is Submit's one io_uring_enter, whose wait may be cut short.
func (r *Ring) submit(wait uint32) (int, error) {
	pending := r.flush()
	var flags uint32
	if wait > 0 {
		flags |= enterGetEvents
	}
	if r.SQPoll() {
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			flags |= enterSQWakeup
		}
		pending = 0 // the kernel thread consumes them
		if flags == 0 {
			return 0, nil
		}
	} else if pending == 0 && wait == 0 {
		return 0, nil
	}
	return r.enter(unix.Syscall6, pending, wait, flags)
}

// enter is io_uring_enter through sys (unix.Syscall6 for a call that may
// block, unix.RawSyscall6 for one that never does), retried on EINTR.
func (r *Ring) enter(sys func(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, uintptr, syscall.Errno), pending, wait, flags uint32) (int, error) {
	for {
		n, _, errno := sys(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(pending), uintptr(wait), uintptr(flags), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return int(n), errno
		}
		return int(n), nil
	}
}

// Poll publishes pending SQEs and runs the completion work that is due,
// never sleeping: a raw system call, with no scheduler bookkeeping, for a
// loop that looks for completions before it decides to wait. Only for
// operations that do not block when issued (sockets, timeouts, NOPs).
func (r *Ring) Poll() (int, error) {
	if r.SQPoll() {
		return r.Submit(0)
	}
	return r.enter(unix.RawSyscall6, r.flush(), 0, enterGetEvents)
}

// PeekCQEs returns the completions ready now, without waiting; call
// Advance(n) after handling them.
func (r *Ring) PeekCQEs(dst []CQE) []CQE {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail) // acquire: CQE contents after the tail
	for ; head != tail; head++ {
		dst = append(dst, r.cqes[head&r.cqMask])
	}
	return dst
}

// Advance marks n completions consumed.
func (r *Ring) Advance(n uint32) {
	atomic.StoreUint32(r.cqHead, *r.cqHead+n) // release: done reading them
}

// Enable starts a ring set up with SetupRDisabled. With SetupSingleIssuer
// the calling thread becomes the one that may submit and wait.
func (r *Ring) Enable() error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerEnableRings, 0, 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_register(ENABLE_RINGS): %w", errno)
	}
	return nil
}

// Flags are the setup flags the ring was made with.
func (r *Ring) Flags() uint32 { return r.params.Flags }

// Probe returns the opcodes the kernel supports.
func (r *Ring) Probe() (map[uint8]bool, error) {
	const nOps = 64
	buf := make([]byte, 16+8*nOps)
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe, uintptr(unsafe.Pointer(&buf[0])), nOps, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_register(PROBE): %w", errno)
	}
	ops := map[uint8]bool{}
	n := int(buf[1]) // ops_len
	for i := 0; i < n && i < nOps; i++ {
		op := buf[16+8*i:]
		if binary.LittleEndian.Uint16(op[2:4])&probeOpSupported != 0 {
			ops[op[0]] = true
		}
	}
	return ops, nil
}

// BufRing is a ring of provided buffers shared with the kernel
// (IORING_REGISTER_PBUF_RING, Linux 5.19): a RECV with SQEBufferSelect
// and this group takes the next buffer; giving buffers back is a store to
// shared memory, no SQE. Not safe for concurrent use.
type BufRing struct {
	mem  []byte
	bufs []bufEntry
	mask uint16
	tail uint16 // local: entries added, published by Publish
}

// bufEntry is struct io_uring_buf; the ring's tail is the resv field of
// entry 0.
type bufEntry struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	Resv uint16
}

// RegisterBufRing sets up a ring of entries (a power of two, at most
// 32768) buffers for buffer group group. An error (EINVAL before Linux
// 5.19) means the caller keeps using OpProvideBuffers.
func (r *Ring) RegisterBufRing(entries uint32, group uint16) (*BufRing, error) {
	if entries == 0 || entries > 1<<15 || entries&(entries-1) != 0 {
		return nil, fmt.Errorf("buffer ring of %d entries: not a power of two up to 32768", entries)
	}
	size := int(entries) * int(unsafe.Sizeof(bufEntry{}))
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap buffer ring: %w", err)
	}
	reg := struct {
		RingAddr    uint64
		RingEntries uint32
		Bgid        uint16
		Flags       uint16
		Resv        [3]uint64
	}{RingAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), RingEntries: entries, Bgid: group}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	if errno != 0 {
		unix.Munmap(mem)
		return nil, fmt.Errorf("io_uring_register(PBUF_RING): %w", errno)
	}
	b := &BufRing{mem: mem, mask: uint16(entries - 1)}
	b.bufs = unsafe.Slice((*bufEntry)(unsafe.Pointer(&mem[0])), entries)
	return b, nil
}

// Add queues buffer bid (length bytes at addr) for the kernel; Publish
// hands over what was added.
func (b *BufRing) Add(addr unsafe.Pointer, length uint32, bid uint16) {
	e := &b.bufs[b.tail&b.mask]
	e.Addr, e.Len, e.Bid = uint64(uintptr(addr)), length, bid
	b.tail++
}

// Publish makes the added buffers visible to the kernel: one release store
// of the tail (entry 0's resv field; this side is its only writer, so the
// 32-bit store carries entry 0's bid unchanged).
func (b *BufRing) Publish() {
	w := (*uint32)(unsafe.Pointer(&b.bufs[0].Bid))
	atomic.StoreUint32(w, uint32(b.bufs[0].Bid)|uint32(b.tail)<<16)
}

// Free unmaps the ring's memory; call it after the Ring is closed.
func (b *BufRing) Free() { unix.Munmap(b.mem) }

// Disabled says whether err from New means io_uring is unavailable here
// (not built in, disabled by sysctl, or blocked by seccomp).
func Disabled(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == unix.ENOSYS || errno == unix.EPERM || errno == unix.EACCES || errno == unix.EINVAL)
}
