package qemu_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A diagnostics token that appears nowhere else.
const diagToken = "e2eTok3n-diag-5531"

// TestDiagFloodDuringBoot: the diagnostics server runs in PID 1 with a
// token on the command line while a LAN neighbour floods it through QEMU's
// forwarded port (idle connections, pipelined kernel-log requests never
// read, garbage); the boot still unlocks and reaches the target, /healthz
// stays answered, the token is asked for and never shown.
func TestDiagFloodDuringBoot(t *testing.T) {
	for _, engine := range []string{"pool", "uring"} {
		t.Run(engine, func(t *testing.T) { testDiagFlood(t, engine) })
	}
}

func testDiagFlood(t *testing.T, engine string) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	port := freePort(t)
	v := boot(t, "--disk", copyDisk(t, d), "--diag-port", fmt.Sprint(port),
		"--append", "ip=dhcp romboot.diag=0.0.0.0:80 romboot.diag_engine="+engine+" romboot.diag_token="+diagToken)
	v.Expect(fmt.Sprintf("diagnostics (%s engine)", engine), promptTimeout)
	v.Expect(prompt, promptTimeout)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get(t, base+"/healthz", 30*time.Second)

	// The token: asked for, accepted, never shown.
	client := &http.Client{Timeout: 20 * time.Second}
	if resp, err := client.Get(base + "/"); err != nil || resp.StatusCode != 401 {
		t.Errorf("/ without the token: %v %v", resp, err)
	}
	for _, path := range []string{"/", "/diag.json", "/dmesg", "/log"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+diagToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s with the token: %s", path, resp.Status)
		}
		if strings.Contains(string(body), diagToken) {
			t.Errorf("%s shows the token", path)
		}
		if path == "/dmesg" && !strings.Contains(string(body), "romboot.diag_token=<redacted>") {
			t.Errorf("/dmesg: no redacted \"Kernel command line:\" in %d bytes", len(body))
		}
	}
	// DNS rebinding: a page served under a foreign name is refused.
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Host = "attacker.example"
	req.Header.Set("Authorization", "Bearer "+diagToken)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 421 {
		t.Errorf("foreign Host: %v %v", resp, err)
	}

	// The flood, bounded: 300 idle connections, 20 that pipeline 200
	// kernel-log requests each without reading, 10 that send garbage,
	// until the target is reached (3 minutes at most).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		opened.Add(1)
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				keep(c)
			}
		}
	}()
	go func() {
		defer wg.Done()
		pipelined := strings.Repeat("GET /dmesg?token="+diagToken+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200)
		for i := 0; i < 20; i++ {
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				keep(c)
				go func() { c.SetWriteDeadline(time.Now().Add(30 * time.Second)); io.WriteString(c, pipelined) }()
			}
		}
	}()
	go func() {
		defer wg.Done()
		junk := []byte(strings.Repeat("\x16\x03\x01 garbage \r\n", 400))
		for i := 0; i < 10; i++ {
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				keep(c)
				go func() { c.SetWriteDeadline(time.Now().Add(30 * time.Second)); c.Write(junk) }()
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	time.Sleep(2 * time.Second)

	// A fresh client is answered during the flood (TCG is slow: 10 s).
	start := time.Now()
	if err := healthz(addr, 10*time.Second); err != nil {
		t.Errorf("fresh client during the flood (%d connections opened): %v", opened.Load(), err)
	}
	t.Logf("%s: fresh /healthz answered in %v with %d flood connections opened", engine, time.Since(start), opened.Load())

	v.Type(passphrase)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	t.Logf("%s: the boot reached the target with %d flood connections opened", engine, opened.Load())
	v.WaitExit(30 * time.Second)
	tr := v.Transcript()
	assertNoSecrets(t, tr)
	if strings.Contains(tr, diagToken) {
		t.Error("the console shows the diagnostics token")
	}
}

// healthz asks /healthz on a new connection within timeout.
func healthz(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
