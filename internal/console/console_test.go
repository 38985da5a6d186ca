package console

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipeConsole(t *testing.T, input string) (*Console, *bytes.Buffer) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.WriteString(input); w.Close() }()
	t.Cleanup(func() { r.Close() })
	var out bytes.Buffer
	return &Console{In: r, Out: &out}, &out
}

func TestPassphraseAndMenu(t *testing.T) {
	c, out := pipeConsole(t, "s3cret\x7fT\nx\n\n7\n2\nR\n")
	p, err := c.ReadPassphrase("Enter passphrase for /dev/vda1: ")
	if err != nil || string(p) != "s3creT" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	if strings.Contains(out.String(), "s3cre") {
		t.Fatal("passphrase echoed")
	}
	if k, err := c.Menu("Recovery", []MenuItem{{'r', "retry"}, {'b', "reboot"}}); err != nil || k != 'r' {
		// "x" is unknown, "" is ignored, then "7" unknown... the menu keeps
		// asking until a known key; the first known one in the input is R.
		t.Fatalf("menu %q, %v", k, err)
	}
	if !strings.Contains(out.String(), `Unknown choice "x"`) {
		t.Fatalf("no complaint about x: %s", out)
	}
}

func TestChoose(t *testing.T) {
	c, out := pipeConsole(t, "0\nabc\n2\n")
	n, err := c.Choose("Which?", []string{"a", "b"})
	if err != nil || n != 1 {
		t.Fatalf("choose %d %v", n, err)
	}
	if strings.Count(out.String(), "Which?") != 3 {
		t.Fatalf("did not ask again:\n%s", out)
	}
}

// ptyConsole is a console on a pseudo-terminal: the kernel's line
// discipline echoes (or not) exactly as on the machine's console. type_
// writes keys on the other side and, when nothing is reading, waits until
// the line discipline holds them, so they arrive in the terminal mode of
// that moment; screen returns everything shown so far.
func ptyConsole(t *testing.T) (c *Console, type_ func(keys string, reading bool), screen func() string) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var shown []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			mu.Lock()
			shown = append(shown, buf[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { s.Close(); <-done; m.Close() })
	type_ = func(keys string, reading bool) {
		before, _ := unix.IoctlGetInt(int(s.Fd()), unix.TIOCINQ)
		if _, err := m.WriteString(keys); err != nil {
			t.Fatal(err)
		}
		for i := 0; !reading; i++ {
			if n, _ := unix.IoctlGetInt(int(s.Fd()), unix.TIOCINQ); n >= before+len(keys) {
				return
			}
			if i == 2000 {
				t.Fatalf("the terminal never received %q", keys)
			}
			time.Sleep(time.Millisecond)
		}
	}
	screen = func() string {
		time.Sleep(50 * time.Millisecond) // let echo and output drain
		mu.Lock()
		defer mu.Unlock()
		return string(shown)
	}
	return &Console{In: s, Out: s}, type_, screen
}

// A passphrase typed before its prompt shows (during device discovery, an
// unlock, or right after "Wrong passphrase") must not be echoed either.
func TestTypedAheadPassphraseNeverShows(t *testing.T) {
	c, typ, screen := ptyConsole(t)
	if err := c.HideTyping(); err != nil {
		t.Fatal(err)
	}
	typ("early-Secret-1\n", false) // before the first prompt
	p, err := c.ReadPassphrase("Enter passphrase: ")
	if err != nil || string(p) != "early-Secret-1" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	typ("ahead-Secret-2\n", false) // while the first one is being tried
	p, err = c.ReadPassphrase("Enter passphrase: ")
	if err != nil || string(p) != "ahead-Secret-2" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	// A menu shows what is typed: the same terminal does echo.
	done := make(chan string)
	go func() { s, _ := c.ReadLine(); done <- s }()
	for i := 0; ; i++ {
		tio, err := unix.IoctlGetTermios(int(c.In.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO != 0 {
			break
		}
		if i == 2000 {
			t.Fatal("ReadLine never turned echo on")
		}
		time.Sleep(time.Millisecond)
	}
	typ("menu-choice\n", true)
	if s := <-done; s != "menu-choice" {
		t.Fatalf("menu line %q", s)
	}
	typ("after-Secret-3\n", false) // after the menu, hidden again
	p, err = c.ReadPassphrase("Enter passphrase: ")
	if err != nil || string(p) != "after-Secret-3" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	out := screen()
	if strings.Contains(out, "Secret") {
		t.Errorf("a passphrase was shown:\n%q", out)
	}
	if !strings.Contains(out, "menu-choice") {
		t.Errorf("the menu's line was not echoed:\n%q", out)
	}
	if strings.Count(out, "Enter passphrase: \r\n") != 3 {
		t.Errorf("each prompt should end its own line:\n%q", out)
	}
}
