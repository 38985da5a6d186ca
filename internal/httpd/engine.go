package httpd

import (
	"fmt"
	"net/netip"
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
