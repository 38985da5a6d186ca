// Command httpd serves romboot's diagnostics pages for the machine it runs
// on, with the same engine the payload uses, and /hello (a fixed 13-byte
// body) for benchmarks.
//
//	httpd -listen 127.0.0.1:8080 -engine pool [-workers 2] [-hosts a.lan] [-token-env VAR]
//	httpd -listen 127.0.0.1:8080 -engine uring [-sqpoll -sqpoll-idle 50ms -sqpoll-cpu 1]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/romboot/romboot/internal/diag"
	"github.com/romboot/romboot/internal/httpd"
)

var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "httpd:", err)
		os.Exit(1)
	}
}

// run serves until SIGINT/SIGTERM (or until stop is closed, for tests).
func run(args []string, stderr io.Writer, stop <-chan struct{}) error {
	fs := flag.NewFlagSet("httpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address:port to listen on")
	engine := fs.String("engine", "pool", "server engine: pool or uring (falls back to pool where io_uring is unavailable)")
	workers := fs.Int("workers", 0, "event-loop threads (pool; 0: one per CPU, at most 4)")
	sqpoll := fs.Bool("sqpoll", false, "uring: a kernel thread polls the submission queue")
	sqpollIdle := fs.Duration("sqpoll-idle", 50*time.Millisecond, "uring: how long the SQPOLL thread spins before sleeping")
	sqpollCPU := fs.Int("sqpoll-cpu", -1, "uring: CPU to pin the SQPOLL thread to (-1: none)")
	maxConns := fs.Int("max-conns", 0, "connection cap (0: the default, 512, lowered by RLIMIT_NOFILE)")
	hosts := fs.String("hosts", "", "comma-separated host names to answer to besides IP addresses and localhost")
	tokenEnv := fs.String("token-env", "", "name of an environment variable holding the access token (every page but /healthz asks for it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logf := func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	access := httpd.Access{Open: []string{"/healthz"}}
	if *tokenEnv != "" {
		if access.Token = os.Getenv(*tokenEnv); access.Token == "" {
			return fmt.Errorf("-token-env %s: the variable is empty", *tokenEnv)
		}
	}
	if *hosts != "" {
		access.Hosts = strings.Split(*hosts, ",")
	}
	s, err := httpd.New(httpd.Config{
		Engine:     *engine,
		Addr:       *listen,
		Workers:    *workers,
		MaxConns:   *maxConns,
		SQPoll:     *sqpoll,
		SQPollIdle: *sqpollIdle,
		SQPollCPU:  *sqpollCPU,
		Handler:    httpd.Protect(diag.Handler(diag.Sources{Version: version, Root: "/"}), access),
		Logf:       logf,
	})
	if err != nil {
		return err
	}
	s.Serve()
	fmt.Fprintf(stderr, "httpd: serving on http://%s/ (engine %s)\n", s.Addr(), s.Name())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-stop:
	}
	s.Shutdown()
	return nil
}
