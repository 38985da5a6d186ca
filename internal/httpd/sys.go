package httpd

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls on non-blocking sockets never block, so they go through
// RawSyscall and skip the Go scheduler's enter/exit bookkeeping (measured:
// most of the per-request futex traffic). Calls that can block (epoll_wait
// with a timeout, poll, futex wait) use the ordinary unix wrappers.

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawRead receives from a non-blocking socket (recvfrom, not read: the
// socket layer directly, without the file layer's position lock).
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errnoErr(e)
}

// rawWrite sends on a non-blocking socket; a client that is gone gives
// EPIPE, never a SIGPIPE (MSG_NOSIGNAL).
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	return int(n), errnoErr(e)
}

func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

func rawShutdown(fd, how int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
}

// rawClose closes a socket; without SO_LINGER it never blocks.
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// accept4 accepts from the non-blocking listener without asking for the
// peer address (x/sys/unix's Accept4 also calls getsockopt(SO_PROTOCOL) on
// every connection).
func accept4(lfd, flags int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, uintptr(flags), 0, 0)
	return int(n), errnoErr(e)
}

// epollWait waits through the scheduler, which hands the thread's P to
// other goroutines meanwhile (the boot's own, in PID 1); a blocking raw call
// would hold the P, and a stop-the-world would wait for it. A raw
// non-blocking look before it costs a second epoll_pwait on most wake-ups
// of a server that is not saturated (measured with "Connection: close"
// clients: 1.8 epoll calls per request against nginx's 1.2) and saves
// nothing while spareP keeps a P idle for the loop to return to.
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	return unix.EpollWait(epfd, events, msec)
}
