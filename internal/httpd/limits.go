package httpd

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The server runs inside PID 1 of a machine that has not booted yet, on a
// LAN the user does not control: whatever clients do, it must not take the
// file descriptors or the memory the boot needs. Both engines enforce the
// same limits:
//
//   - at most MaxConns connections (fewer when RLIMIT_NOFILE is low: a
//     quarter of the limit, at least 64 descriptors, stays with the rest of
//     the process). A new connection beyond the cap reclaims an older one:
//     among the victimScan least recently active, one being closed, else an
//     idle keep-alive one, else one that sent nothing for newQuiet since it
//     connected or stalled mid-request for reclaimQuiet (see reclaimRank);
//     when all of them are busy, the new one is closed at once;
//   - at most MaxPipeline requests answered per round on one connection,
//     and no more reading while MaxPending bytes of output wait for a client
//     that does not read;
//   - every byte a connection holds between events (a partial request,
//     unsent output) is charged to MemoryBudget; a request whose answer does
//     not fit gets a short 503 and the connection is closed. Buffers larger
//     than keepBuffer are released once their response is sent;
//   - a connection quiet for IdleTimeout is closed, a request not complete
//     ReadTimeout after its first byte gets 408, output not taken by the
//     client within WriteTimeout closes the connection;
//   - Shutdown returns within StopTimeout even if a handler hangs.
const (
	defaultMaxConns    = 512
	defaultMemory      = 8 << 20
	defaultMaxPipeline = 32
	defaultMaxPending  = 64 << 10
	// keepBuffer: a connection's buffers up to this size are kept for its
	// next request; larger ones are released after their response.
	keepBuffer = 64 << 10
	// keepScratch: the same for the buffers a worker (or the uring loop)
	// renders every answer into; there are only a few of them, and
	// re-making them for every large answer would only feed the garbage
	// collector.
	keepScratch = 1 << 20
	// reclaimQuiet: a connection in the middle of a request is reclaimed
	// only when it has shown no activity for this long (a burst of live
	// clients is not torn down for a newcomer).
	reclaimQuiet = 100 * time.Millisecond
	// fdReserveMin is the least number of descriptors left to the process.
	fdReserveMin = 64
)

// budget is a pool of bytes shared by every connection of a server.
type budget struct{ left atomic.Int64 }

// take charges n bytes; false when they do not fit (nothing is charged).
func (b *budget) take(n int) bool {
	if n <= 0 {
		return true
	}
	if b.left.Add(-int64(n)) < 0 {
		b.left.Add(int64(n))
		return false
	}
	return true
}

// give returns n bytes.
func (b *budget) give(n int) {
	if n > 0 {
		b.left.Add(int64(n))
	}
}

// connLimit returns how many connections the server may hold: MaxConns,
// lowered so that the process keeps a quarter of RLIMIT_NOFILE (at least
// fdReserveMin) beyond what it has open now.
func connLimit(want int) (int, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return want, nil
	}
	limit := int64(rl.Cur)
	if rl.Cur == unix.RLIM_INFINITY || limit > 1<<20 {
		limit = 1 << 20
	}
	reserve := max(limit/4, fdReserveMin)
	open := int64(0)
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		open = int64(len(ents))
	}
	// Each engine also holds a few descriptors of its own (listener,
	// epoll or ring, wake-up eventfd).
	avail := limit - reserve - open - 8
	if avail < 4 {
		return 0, fmt.Errorf("only %d file descriptors to spare (RLIMIT_NOFILE %d, %d open): not serving", max(avail, 0), limit, open)
	}
	return int(min(int64(want), avail)), nil
}

// reclaimRank says how willingly a connection is reclaimed at the cap:
// 3 closing anyway; 2 idle between requests; 1 stalled: connected for
// newQuiet without sending anything, or a request still incomplete
// reclaimQuiet after it began (its age: a real client sends one in a
// packet or two, a slowloris trickles it), or output not taken for
// reclaimQuiet; 0 busy.
func reclaimRank(closing, served, partialIn, pendingOut bool, age, quiet time.Duration) int {
	switch {
	case closing:
		return 3
	case pendingOut:
		if quiet >= reclaimQuiet {
			return 1
		}
	case partialIn:
		if age >= reclaimQuiet {
			return 1
		}
	case served:
		return 2
	case age >= newQuiet:
		return 1
	}
	return 0
}

// unread says whether a socket has received bytes not read yet: a
// connection that looks silent may have its request waiting in the kernel
// (an event not handled yet), and is not reclaimed then.
func unread(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err == nil && n > 0
}

// newQuiet: a client sends its request right after connecting; one that
// has not within this long may be reclaimed at the cap.
const newQuiet = 20 * time.Millisecond

// victimScan is how many of the least recently active connections are
// considered for reclaiming.
const victimScan = 32

// lowerPriority sets the calling thread's nice value (the thread is locked
// to its goroutine), when nice > 0.
func lowerPriority(nice int) {
	if nice > 0 {
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
	}
}
