package httpd

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWaitPrivate = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

// futexWait sleeps while *addr == val, at most timeout. Spurious and early
// returns are fine: callers re-check their condition.
func futexWait(addr *atomic.Uint32, val uint32, timeout time.Duration) {
	ts := unix.NsecToTimespec(int64(timeout))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitPrivate, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n threads sleeping on addr.
func futexWake(addr *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakePrivate, uintptr(n), 0, 0, 0)
}

// ring is the bounded queue of connections between the acceptor (and the
// poller) and the workers. A full ring refuses (the caller answers 503); it
// never overwrites. seq is the futex word: it changes on every push, so a
// worker that saw an empty ring and then sleeps on the value it read before
// looking cannot miss a push (no lost wake-ups).
type ring struct {
	mu   sync.Mutex
	buf  []*conn
	head int
	n    int
	seq  atomic.Uint32
	// sleepers counts workers in (or about to enter) futexWait, so a push
	// makes the wake system call only when someone sleeps. Safe: a worker
	// increments it before it sleeps on a seq value read before it looked,
	// and a pusher bumps seq before it reads sleepers, so either the worker
	// sees the new seq or the pusher sees the sleeper.
	sleepers atomic.Int32
}

func newRing(size int) *ring { return &ring{buf: make([]*conn, size)} }

func (q *ring) push(c *conn) bool {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.mu.Unlock()
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = c
	q.n++
	q.mu.Unlock()
	q.seq.Add(1)
	if q.sleepers.Load() > 0 {
		futexWake(&q.seq, 1)
	}
	return true
}

// pop returns the oldest connection, or nil when the ring is empty (never a
// stale slot).
func (q *ring) pop() *conn {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	c := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return c
}

// wait returns the next connection, sleeping on the futex up to timeout;
// nil when none came.
func (q *ring) wait(timeout time.Duration) *conn {
	s := q.seq.Load()
	if c := q.pop(); c != nil {
		return c
	}
	q.sleepers.Add(1)
	futexWait(&q.seq, s, timeout)
	q.sleepers.Add(-1)
	return q.pop()
}

// wakeAll wakes every sleeping worker (shutdown).
func (q *ring) wakeAll() {
	q.seq.Add(1)
	futexWake(&q.seq, 1<<30)
}
