package httpd

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls on non-blocking sockets never block, so they go through
// RawSyscall and skip the Go scheduler's enter/exit bookkeeping (measured:
// most of the per-request futex traffic). Calls that can block (accept,
// epoll_wait, poll, futex wait) use the ordinary unix wrappers.

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawRead reads from a non-blocking socket.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errnoErr(e)
}

// rawWrite writes to a non-blocking socket.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
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

// accept4 accepts without asking for the peer address (x/sys/unix's
// Accept4 also calls getsockopt(SO_PROTOCOL) on every connection). It
// blocks, so it goes through the scheduler.
func accept4(lfd, flags int) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, uintptr(flags), 0, 0)
	return int(n), errnoErr(e)
}
