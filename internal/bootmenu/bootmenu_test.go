package bootmenu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/console"
)

func menu() *bootentry.Menu {
	return &bootentry.Menu{Default: 0, Timeout: 5, Entries: []bootentry.Entry{
		{Title: "Debian", Kernel: "/vmlinuz-a", Cmdline: "root=/dev/a ro"},
		{Title: "Debian (recovery)", Kernel: "/vmlinuz-a", Cmdline: "root=/dev/a ro single"},
		{Title: "Old", Kernel: "/vmlinuz-old", Broken: "kernel /vmlinuz-old not found"},
	}}
}

// typed returns a console whose input arrives as the test writes it.
func typed(t *testing.T) (*console.Console, *os.File, *bytes.Buffer) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	var out bytes.Buffer
	return &console.Console{In: r, Out: &out}, w, &out
}

func TestCountdownBootsDefault(t *testing.T) {
	c, _, out := typed(t)
	start := time.Now()
	e, err := Choose(c, menu(), time.Second, nil)
	if err != nil || e.Title != "Debian" {
		t.Fatalf("%+v %v", e, err)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Fatal("did not wait for the countdown")
	}
	if !strings.Contains(out.String(), `Booting "Debian" in  1 s`) || !strings.Contains(out.String(), "> * 1) Debian") {
		t.Fatalf("screen:\n%s", out)
	}
}

func TestChooseByNumberAndArrows(t *testing.T) {
	for input, want := range map[string]string{
		"2\r":            "Debian (recovery)",
		"\x1b[B\r":       "Debian (recovery)",
		"\x1b[A\x1b[A\r": "Debian (recovery)", // up twice from 1 wraps to 3, then 2
		"x\r":            "Debian",            // any key stops the countdown
		"3\r2\r":         "Debian (recovery)", // a broken entry does not boot
	} {
		c, w, out := typed(t)
		w.WriteString(input)
		e, err := Choose(c, menu(), 10*time.Second, nil)
		if err != nil || e.Title != want {
			t.Errorf("%q: got %q (%v), want %q\n%s", input, e.Title, err, want, out)
		}
	}
}

func TestEdit(t *testing.T) {
	c, w, out := typed(t)
	w.WriteString("e\x7f\x7f\x7f rw romboot.e2e=1\r")
	e, err := Choose(c, menu(), 10*time.Second, nil)
	if err != nil || e.Cmdline != "root=/dev/a rw romboot.e2e=1" || !e.Edited || e.Title != "Debian" {
		t.Fatalf("%+v %v\n%s", e, err, out)
	}
	// Esc cancels the edit: the entry boots unchanged.
	c, w, _ = typed(t)
	w.WriteString("2e junk\x1b\r")
	e, err = Choose(c, menu(), 10*time.Second, nil)
	if err != nil || e.Cmdline != "root=/dev/a ro single" || e.Edited {
		t.Fatalf("after Esc: %+v %v", e, err)
	}
}

func TestNoMenu(t *testing.T) {
	c, _, out := typed(t)
	m := menu()
	m.Entries = m.Entries[:1]
	if e, err := Choose(c, m, 5*time.Second, nil); err != nil || e.Title != "Debian" || out.Len() != 0 {
		t.Fatalf("one entry: %+v %v %q", e, err, out)
	}
	if e, err := Choose(c, menu(), 0, nil); err != nil || e.Title != "Debian" || out.Len() != 0 {
		t.Fatalf("timeout 0: %+v %v %q", e, err, out)
	}
}

// An unattended boot never stalls on a broken default: the first bootable
// entry boots, with a warning.
func TestBrokenDefaultUnattended(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Second} {
		c, _, _ := typed(t)
		m := menu()
		m.Default = 2
		var warned []string
		e, err := Choose(c, m, timeout, func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) })
		if err != nil || e.Title != "Debian" {
			t.Fatalf("timeout %v: %+v %v", timeout, e, err)
		}
		if len(warned) != 1 || !strings.Contains(warned[0], `"Old" cannot boot`) {
			t.Errorf("timeout %v: warnings %q", timeout, warned)
		}
	}
}

// NoCountdown shows the menu even for one entry and waits for a key.
func TestNoCountdown(t *testing.T) {
	c, w, out := typed(t)
	m := menu()
	m.Entries = m.Entries[:1]
	go func() { time.Sleep(1500 * time.Millisecond); w.WriteString("\r") }()
	start := time.Now()
	e, err := Choose(c, m, NoCountdown, nil)
	if err != nil || e.Title != "Debian" || time.Since(start) < time.Second || !strings.Contains(out.String(), "romboot boot menu:") {
		t.Fatalf("%+v %v %v\n%s", e, err, time.Since(start), out)
	}
}

// Esc leaves the menu (for the recovery menu); a menu with nothing
// bootable is not shown at all, even when asked for.
func TestLeaveAndNothingBootable(t *testing.T) {
	c, w, _ := typed(t)
	w.WriteString("\x1b")
	if _, err := Choose(c, menu(), NoCountdown, nil); !errors.Is(err, ErrLeft) {
		t.Errorf("Esc: %v", err)
	}
	c, _, _ = typed(t)
	m := menu()
	m.Entries = m.Entries[2:]
	if _, err := Choose(c, m, NoCountdown, nil); err == nil || !strings.Contains(err.Error(), "no entry can boot") {
		t.Errorf("nothing bootable: %v", err)
	}
}
