// Package bootlog is romboot's log: every line stamped with the time since
// the kernel started (CLOCK_BOOTTIME, the clock printk uses), written to the
// console and kept in memory for the diagnostics; plus the boot timeline,
// one entry per stage with its duration.
package bootlog

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxLines bounds the lines kept in memory.
const maxLines = 2000

// Stage is one step of the boot with its start and duration since boot.
type Stage struct {
	Name     string
	Start    time.Duration
	Duration time.Duration
	Err      string
}

// Log is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	out    io.Writer
	now    func() time.Duration
	lines  []string
	stages []Stage
}

// New returns a log writing to out.
func New(out io.Writer) *Log { return &Log{out: out, now: SinceBoot} }

// SinceBoot is the time since the kernel started.
func SinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Printf logs one line. Never pass it a secret.
func (l *Log) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		line := fmt.Sprintf("[%5d.%06d] romboot: %s", l.now()/time.Second, l.now()%time.Second/time.Microsecond, m)
		l.lines = append(l.lines, line)
		if len(l.lines) > maxLines {
			l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-maxLines:]...)
		}
		if l.out != nil {
			fmt.Fprintln(l.out, line)
		}
	}
}

// Stage logs the start of a stage and returns the function that ends it
// (with its error, if any) and records its duration.
func (l *Log) Stage(name string) func(error) {
	start := l.now()
	l.Printf("%s...", name)
	return func(err error) {
		d := l.now() - start
		s := Stage{Name: name, Start: start, Duration: d}
		if err != nil {
			s.Err = err.Error()
			l.Printf("%s failed after %s: %v", name, fmtDur(d), err)
		} else {
			l.Printf("%s: done in %s", name, fmtDur(d))
		}
		l.mu.Lock()
		l.stages = append(l.stages, s)
		l.mu.Unlock()
	}
}

// Lines returns the kept log lines.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Stages returns the timeline so far.
func (l *Log) Stages() []Stage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Stage(nil), l.stages...)
}

// Timeline formats the stages as a table: start, duration, name.
func (l *Log) Timeline() string {
	var b strings.Builder
	b.WriteString("boot timeline (since kernel start):\n")
	for _, s := range l.Stages() {
		status := ""
		if s.Err != "" {
			status = "  FAILED"
		}
		fmt.Fprintf(&b, "  %9s  +%-9s  %s%s\n", fmtDur(s.Start), fmtDur(s.Duration), s.Name, status)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}
