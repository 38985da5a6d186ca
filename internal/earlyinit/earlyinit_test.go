package earlyinit

import (
	"os"
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
