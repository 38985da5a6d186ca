package earlyinit

import (
	"os"
	"path/filepath"
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
	old := PrintkPath
	defer func() { PrintkPath = old }()
	PrintkPath = filepath.Join(t.TempDir(), "printk")
	os.WriteFile(PrintkPath, []byte("7\t4\t1\t7\n"), 0o644)
	restore := QuietKernel()
	if b, _ := os.ReadFile(PrintkPath); string(b) != "1" {
		t.Fatalf("during: %q", b)
	}
	restore()
	if b, _ := os.ReadFile(PrintkPath); string(b) != "7" {
		t.Fatalf("after: %q", b)
	}
}
