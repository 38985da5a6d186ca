//go:build nouring

package httpd

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
)

const uringBuilt = false

// TestUringLeftOut: in a build without the io_uring engine (the X220
// ROM), a command line that asks for it still gets a diagnostics server:
// the pool engine, with one line that says why.
func TestUringLeftOut(t *testing.T) {
	var logs []string
	s, err := New(Config{Engine: "uring", Addr: "127.0.0.1:0", Handler: testHandler(),
		Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Shutdown()
	if s.Name() != "pool" || len(logs) != 1 || !strings.Contains(logs[0], "not built into this payload") {
		t.Fatalf("engine %s, logs %q", s.Name(), logs)
	}
	c := dial(t, s)
	if resp, _ := roundTrip(t, c, bufio.NewReader(c), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
}
