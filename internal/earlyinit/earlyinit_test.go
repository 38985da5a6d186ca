package earlyinit

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// After IgnoreSignals, the signals that end a Go program leave it running.
func TestIgnoreSignals(t *testing.T) {
	IgnoreSignals()
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP} {
		if err := unix.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // a delivered signal would have ended the test binary
}

func TestQuietKernel(t *testing.T) {
	old := ConsoleLevel
	defer func() { ConsoleLevel = old }()
	var calls []int
	ConsoleLevel = func(action int) error { calls = append(calls, action); return nil }
	outer := QuietKernel()
	inner := QuietKernel() // a prompt inside the recovery menu
	inner()
	inner() // a second call changes nothing
	if len(calls) != 1 || calls[0] != unix.SYSLOG_ACTION_CONSOLE_OFF {
		t.Fatalf("after the inner restore: %v, want only CONSOLE_OFF", calls)
	}
	outer()
	if len(calls) != 2 || calls[1] != unix.SYSLOG_ACTION_CONSOLE_ON {
		t.Fatalf("after the outer restore: %v, want CONSOLE_OFF, CONSOLE_ON", calls)
	}
	// Where syslog(2) is refused, nothing is switched back either.
	calls = nil
	ConsoleLevel = func(action int) error { calls = append(calls, action); return unix.EPERM }
	QuietKernel()()
	if len(calls) != 1 {
		t.Fatalf("refused: %v, want the one CONSOLE_OFF attempt", calls)
	}
}

// On this machine's kernel (as root): the console level really drops to
// the minimum while quiet and comes back after. /proc/sys is only read here
// to watch it.
func TestQuietKernelSyslog(t *testing.T) {
	level := func() []string {
		b, err := os.ReadFile("/proc/sys/kernel/printk")
		if err != nil {
			t.Skipf("cannot watch the console level: %v", err)
		}
		return strings.Fields(string(b))
	}
	before := level()
	if os.Geteuid() != 0 || len(before) < 3 || before[0] == before[2] {
		t.Skipf("needs root and a console level above the minimum (printk %v)", before)
	}
	restore := QuietKernel()
	during := level()
	restore()
	after := level()
	if during[0] != before[2] {
		t.Errorf("while quiet the console level is %s, want the minimum %s", during[0], before[2])
	}
	if after[0] != before[0] {
		t.Errorf("after, the console level is %s, want %s back", after[0], before[0])
	}
}
