package httpd

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConnLimitKeepsDescriptors: with RLIMIT_NOFILE at 200 the cap leaves
// a quarter (at least 64) to the process beyond what it has open.
func TestConnLimitKeepsDescriptors(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 200, Max: old.Max}); err != nil {
		t.Skip(err)
	}
	n, err := connLimit(512)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n > 200-64-8 {
		t.Fatalf("cap %d with RLIMIT_NOFILE 200", n)
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 70, Max: old.Max})
	if _, err := connLimit(512); err == nil {
		t.Fatal("serving with no descriptors to spare")
	}
}

// TestShutdownBounded: a handler that hangs does not hold Shutdown past
// StopTimeout.
func TestShutdownBounded(t *testing.T) {
	forEngines(t, func(t *testing.T, engine string) {
		release := make(chan struct{})
		defer close(release)
		h := HandlerFunc(func(req *Request, resp *Response) { <-release })
		s, err := New(Config{Engine: engine, Addr: "127.0.0.1:0", Handler: h, StopTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s.Serve()
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		s.Shutdown()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Shutdown took %v with a hung handler", d)
		}
		if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
			t.Fatal("still accepting after Shutdown")
		}
	})
}

// TestBudgetRefuses: answers that do not fit the memory budget get 503
// instead of growing the server.
func TestBudgetRefuses(t *testing.T) {
	forEngines(t, func(t *testing.T, engine string) {
		s := start(t, engine, Config{MemoryBudget: 256 << 10})
		var conns []net.Conn
		for i := 0; i < 8; i++ {
			c := dial(t, s)
			c.(*net.TCPConn).SetReadBuffer(4096)
			// 8 MiB of answers, never read: past what the kernel's
			// socket buffers take, the rest waits in the server.
			go io.WriteString(c, strings.Repeat("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", 8))
			conns = append(conns, c)
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.Counters().Busy503.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if s.Counters().Busy503.Load() == 0 {
			t.Fatal("1 MiB answers to 8 clients that do not read fit a 256 KiB budget")
		}
	})
}
