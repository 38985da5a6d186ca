package httpd

import (
	"fmt"
	"net/netip"
	"runtime"
)

// Engine is a running server, whichever engine it is.
type Engine interface {
	Serve()
	Shutdown()
	Addr() netip.AddrPort
	Counters() *Stats
	Name() string
}

// New starts listening with the engine cfg.Engine names ("pool", the
// default, or "uring"). An io_uring engine that cannot run here (no
// io_uring in the kernel, kernel.io_uring_disabled, seccomp, missing
// operations, or left out by the nouring build tag as in the X220 ROM)
// says so once through cfg.Logf and falls back to pool.
func New(cfg Config) (Engine, error) {
	switch cfg.Engine {
	case "", "pool":
		return Listen(cfg)
	case "uring":
		if e, err := listenUring(cfg); err == nil {
			return e, nil
		} else if cfg.Logf != nil {
			cfg.Logf("httpd: io_uring engine unavailable (%v): using the pool engine", err)
		}
		cfg.Engine = "pool"
		return Listen(cfg)
	}
	return nil, fmt.Errorf("unknown engine %q (pool, uring)", cfg.Engine)
}

// Counters returns the server's counters.
func (s *Server) Counters() *Stats { return &s.Stats }

// Name is the engine's name.
func (s *Server) Name() string { return "pool" }

// spareP sees that the Go scheduler has a processor (P) to spare beside the
// server's event-loop threads. A loop waits in the kernel (epoll_wait,
// io_uring_enter) through the scheduler. While another P is idle, the
// runtime's sysmon leaves the waiting thread its P (for up to 10 ms) and the
// thread takes it back on return without help. With no P idle (GOMAXPROCS 1,
// as on one CPU or under taskset), sysmon takes the P away after 20 µs and
// hands it to a spinning thread; every wake-up then pays futex hand-offs to
// win a P back, and sysmon keeps polling at its fastest rate. Measured on the
// uring engine on one CPU with "Connection: close" clients, GOMAXPROCS 2
// alone: 10.4 -> 4.5 µs per request spent outside the loop's thread. PID 1 on
// the X220 (4 CPUs, 2 workers) does not need it.
func spareP(loops int) {
	if runtime.GOMAXPROCS(0) <= loops {
		runtime.GOMAXPROCS(loops + 1)
	}
}
