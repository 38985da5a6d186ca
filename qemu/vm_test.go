package qemu_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vm is a QEMU guest driven through its serial console, like a person at
// the keyboard: wait for text, type a line.
type vm struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	cursor int // Expect searches from here
	done   chan error
}

// boot starts qemu/run with the payload from ROMBOOT_BUILD and args.
func boot(t testing.TB, args ...string) *vm {
	t.Helper()
	build := os.Getenv("ROMBOOT_BUILD")
	all := append([]string{"--kernel", filepath.Join(build, "bzImage"), "--initrd", filepath.Join(build, "initramfs.cpio.xz")}, args...)
	return bootCmd(t, "./run", all...)
}

// bootCmd starts a QEMU guest whose serial console is the command's stdio.
func bootCmd(t testing.TB, name string, args ...string) *vm {
	t.Helper()
	cmd := exec.Command(name, args...)
	v := &vm{t: t, cmd: cmd, done: make(chan error, 1)}
	var err error
	if v.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			v.mu.Lock()
			v.out.Write(buf[:n])
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { v.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		_ = os.WriteFile(filepath.Join(os.TempDir(), "romboot-e2e-"+name+".log"), []byte(v.Transcript()), 0o644)
		if t.Failed() {
			t.Logf("console transcript:\n%s", v.Transcript())
		}
	})
	return v
}

// Transcript is everything the console printed so far.
func (v *vm) Transcript() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

// Expect waits until s appears after the previous match and returns the
// text up to and including it.
func (v *vm) Expect(s string, timeout time.Duration) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		all := v.out.String()
		v.mu.Unlock()
		if i := strings.Index(all[v.cursor:], s); i >= 0 {
			seg := all[v.cursor : v.cursor+i+len(s)]
			v.cursor += i + len(s)
			return seg
		}
		select {
		case err := <-v.done:
			v.done <- err
			v.mu.Lock()
			all = v.out.String()
			v.mu.Unlock()
			if strings.Contains(all[v.cursor:], s) {
				continue
			}
			v.t.Fatalf("QEMU exited (%v) before %q appeared", err, s)
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("%q did not appear within %v", s, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Line returns the rest of the line after the previous match.
func (v *vm) Line(timeout time.Duration) string {
	v.t.Helper()
	return strings.TrimRight(v.Expect("\n", timeout), "\r\n")
}

// Type sends a line to the console.
func (v *vm) Type(line string) {
	v.t.Helper()
	if _, err := fmt.Fprintf(v.stdin, "%s\r", line); err != nil {
		v.t.Fatalf("typing: %v", err)
	}
}

// Send types raw keys, without a newline.
func (v *vm) Send(keys string) {
	v.t.Helper()
	if _, err := io.WriteString(v.stdin, keys); err != nil {
		v.t.Fatalf("typing: %v", err)
	}
}

// WaitExit waits for QEMU to end (the guest powered off).
func (v *vm) WaitExit(timeout time.Duration) {
	v.t.Helper()
	select {
	case err := <-v.done:
		v.done <- err
		if err != nil {
			v.t.Fatalf("QEMU exited with %v", err)
		}
	case <-time.After(timeout):
		v.t.Fatalf("QEMU did not exit within %v", timeout)
	}
}

// Monitor runs a command in the QEMU monitor: Ctrl-A c switches the console
// (serial and monitor share stdio with -nographic) to the monitor and back.
func (v *vm) Monitor(cmd string) {
	v.t.Helper()
	v.Send("\x01c")
	v.Expect("(qemu) ", 10*time.Second)
	v.Send(cmd + "\r")
	v.Expect("(qemu) ", 30*time.Second)
	v.Send("\x01c")
}
