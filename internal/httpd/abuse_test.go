package httpd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The abuse tests run the server in a child process (this test binary,
// re-executed) so that its RSS and descriptors are its own, with
// RLIMIT_NOFILE at 1024 like a PID 1 whose soft limit was not raised. While
// a scenario runs, a fresh client asks /open every 100 ms: the child opens
// 100 files (as the boot would) and answers; each answer must come within
// a second, each open must succeed.

const abuseEnv = "ROMBOOT_HTTPD_ABUSE_CHILD"

// TestAbuseChild is the child's server; it only runs when re-executed.
func TestAbuseChild(t *testing.T) {
	engine := os.Getenv(abuseEnv)
	if engine == "" {
		t.Skip("child process of the abuse tests")
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 1024, Max: 1024})
	page := []byte(strings.Repeat("0123456789abcdef", 16<<10)) // 256 KiB
	h := HandlerFunc(func(req *Request, resp *Response) {
		switch string(req.Path) {
		case "/page":
			resp.Body = append(resp.Body, page...)
		case "/open":
			var files []*os.File
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			for i := 0; i < 100; i++ {
				f, err := os.Open("/dev/null")
				if err != nil {
					resp.Status = 500
					resp.Body = append(resp.Body, err.Error()...)
					return
				}
				files = append(files, f)
			}
			resp.Body = append(resp.Body, "opened 100\n"...)
		default:
			testHandler().ServeHTTP(req, resp)
		}
	})
	s, err := New(Config{Engine: engine, Addr: "127.0.0.1:0", Workers: 2, Handler: h, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	fmt.Printf("listening %s\n", s.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	s.Shutdown()
	st := s.Counters()
	fmt.Fprintf(os.Stderr, "child %s: accepted %d requests %d reclaimed %d refused %d busy503 %d 408 %d timed out %d\n", engine,
		st.Accepted.Load(), st.Requests.Load(), st.Reclaimed.Load(), st.Refused.Load(), st.Busy503.Load(), st.Timeouts408.Load(), st.TimedOut.Load())
}

type child struct {
	pid  int
	addr string
	cmd  *exec.Cmd
}

func startChild(t *testing.T, engine string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAbuseChild$", "-test.v")
	cmd.Env = append(os.Environ(), abuseEnv+"="+engine)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("child did not stop within 10 s")
		}
	})
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "listening "); ok {
			go io.Copy(io.Discard, br)
			return &child{pid: cmd.Process.Pid, addr: a, cmd: cmd}
		}
	}
}

func (c *child) status(field string) int {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.pid), "status"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return -1
}

func (c *child) fds() int {
	ents, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(c.pid), "fd"))
	return len(ents)
}

// probe is a fresh client: it connects, asks /open and must get "opened
// 100" within a second.
func (c *child) probe() (time.Duration, error) {
	start := time.Now()
	for {
		err := c.ask(start.Add(time.Second))
		// A connection refused at the cap is closed at once (a reset or an
		// EOF before any answer): a real client tries again, within the
		// same second.
		if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && time.Since(start) < 900*time.Millisecond {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return time.Since(start), err
	}
}

// ask makes one request for /open, all of it before deadline.
func (c *child) ask(deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", c.addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	io.WriteString(conn, "GET /open HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != "opened 100\n" {
		return fmt.Errorf("%s %q", resp.Status, body)
	}
	return nil
}

const (
	maxRSSKiB  = 32 << 10
	maxFDs     = defaultMaxConns + 40
	abuseSlack = 100 // extra connections an engine may hold while reclaiming
)

// abuse runs attack in the background for d, probing meanwhile, and checks
// the child's limits.
func abuse(t *testing.T, engine string, d time.Duration, attack func(addr string, stop <-chan struct{})) {
	ch := startChild(t, engine)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); attack(ch.addr, stop) }()
	var worst time.Duration
	var failures []string
	maxFD, probes := 0, 0
	deadline := time.Now().Add(d)
	time.Sleep(300 * time.Millisecond) // let the attack build up
	for time.Now().Before(deadline) {
		lat, err := ch.probe()
		probes++
		worst = max(worst, lat)
		if err != nil || lat > time.Second {
			failures = append(failures, fmt.Sprintf("after %v: %v (%v)", time.Until(deadline), err, lat))
		}
		maxFD = max(maxFD, ch.fds())
		time.Sleep(100 * time.Millisecond)
	}
	rss := ch.status("VmHWM")
	close(stop)
	wg.Wait()
	t.Logf("%s: %d probes, slowest %v; peak RSS %d KiB; most descriptors %d", engine, probes, worst, rss, maxFD)
	if len(failures) > 0 {
		t.Errorf("fresh clients not answered within 1 s (%d of %d): %v", len(failures), probes, failures[:min(len(failures), 5)])
	}
	if rss > maxRSSKiB && !raceDetector {
		t.Errorf("peak RSS %d KiB > %d KiB", rss, maxRSSKiB)
	}
	if maxFD > maxFDs+abuseSlack {
		t.Errorf("%d descriptors open > %d", maxFD, maxFDs+abuseSlack)
	}
	// And afterwards the server still serves normally.
	time.Sleep(200 * time.Millisecond)
	if _, err := ch.probe(); err != nil {
		t.Errorf("after the attack: %v", err)
	}
}

// hold keeps conns open until stop, then closes them.
func hold(stop <-chan struct{}, conns *[]net.Conn, mu *sync.Mutex) {
	<-stop
	mu.Lock()
	for _, c := range *conns {
		c.Close()
	}
	mu.Unlock()
}

func abuseEngines(t *testing.T, f func(t *testing.T, engine string)) {
	if testing.Short() {
		t.Skip("abuse tests take a while")
	}
	forEngines(t, f)
}

// TestAbuseConnectionFlood: 3,000 connections that send nothing, opened as
// fast as the client can.
func TestAbuseConnectionFlood(t *testing.T) {
	abuseEngines(t, func(t *testing.T, engine string) {
		abuse(t, engine, 3*time.Second, func(addr string, stop <-chan struct{}) {
			var mu sync.Mutex
			var conns []net.Conn
			for i := 0; i < 3000; i++ {
				select {
				case <-stop:
					i = 3000
					continue
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			hold(stop, &conns, &mu)
		})
	})
}

// TestAbusePipelinedLargeResponses: 40 connections each pipeline 400
// requests for a 256 KiB page and never read an answer.
func TestAbusePipelinedLargeResponses(t *testing.T) {
	abuseEngines(t, func(t *testing.T, engine string) {
		abuse(t, engine, 3*time.Second, func(addr string, stop <-chan struct{}) {
			var mu sync.Mutex
			var conns []net.Conn
			req := strings.Repeat("GET /page HTTP/1.1\r\nHost: x\r\n\r\n", 400)
			for i := 0; i < 40; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				c.(*net.TCPConn).SetReadBuffer(4096)
				go func() { c.SetWriteDeadline(time.Now().Add(5 * time.Second)); io.WriteString(c, req) }()
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			hold(stop, &conns, &mu)
		})
	})
}

// TestAbuseSlowReaders: 300 connections ask for the 256 KiB page and read
// a few bytes now and then.
func TestAbuseSlowReaders(t *testing.T) {
	abuseEngines(t, func(t *testing.T, engine string) {
		abuse(t, engine, 4*time.Second, func(addr string, stop <-chan struct{}) {
			var wg sync.WaitGroup
			for i := 0; i < 300; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return
					}
					defer c.Close()
					c.(*net.TCPConn).SetReadBuffer(4096)
					io.WriteString(c, "GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
					var b [16]byte
					for {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Millisecond):
						}
						c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
						if _, err := c.Read(b[:]); err != nil && !os.IsTimeout(err) {
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	})
}

// TestAbuseSlowloris: 1,000 connections send a request a byte every
// 300 ms, reconnecting 300 ms after the server drops them.
func TestAbuseSlowloris(t *testing.T) {
	abuseEngines(t, func(t *testing.T, engine string) {
		abuse(t, engine, 4*time.Second, func(addr string, stop <-chan struct{}) {
			var wg sync.WaitGroup
			for i := 0; i < 1000; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := "GET /hello HTTP/1.1\r\nHost: x\r\nX-Padding: " + strings.Repeat("a", 200)
					for {
						c, err := net.DialTimeout("tcp", addr, time.Second)
						if err != nil {
							select {
							case <-stop:
								return
							case <-time.After(100 * time.Millisecond):
								continue
							}
						}
						for j := 0; ; j++ {
							select {
							case <-stop:
								c.Close()
								return
							case <-time.After(300 * time.Millisecond):
							}
							if _, err := c.Write([]byte{req[j%len(req)]}); err != nil {
								break
							}
						}
						c.Close()
						time.Sleep(300 * time.Millisecond)
					}
				}()
			}
			wg.Wait()
		})
	})
}

// TestAbuseGarbage: 30 connections pour random bytes (and some header-like
// junk), 64 KiB every 10 ms each, reconnecting when dropped.
func TestAbuseGarbage(t *testing.T) {
	abuseEngines(t, func(t *testing.T, engine string) {
		abuse(t, engine, 3*time.Second, func(addr string, stop <-chan struct{}) {
			var wg sync.WaitGroup
			for i := 0; i < 30; i++ {
				wg.Add(1)
				go func(seed int64) {
					defer wg.Done()
					rnd := rand.New(rand.NewSource(seed))
					junk := make([]byte, 64<<10)
					rnd.Read(junk)
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, err := net.DialTimeout("tcp", addr, time.Second)
						if err != nil {
							time.Sleep(50 * time.Millisecond)
							continue
						}
						go io.Copy(io.Discard, c)
						for k := 0; k < 20; k++ {
							if k%2 == 0 {
								copy(junk, "GET /page HTTP/1.1\r\nHost: x\r\nX: ")
							} else {
								junk[0] = byte(rnd.Intn(256))
							}
							time.Sleep(10 * time.Millisecond)
							c.SetWriteDeadline(time.Now().Add(time.Second))
							if _, err := c.Write(junk); err != nil {
								break
							}
						}
						c.Close()
					}
				}(int64(i))
			}
			wg.Wait()
		})
	})
}
