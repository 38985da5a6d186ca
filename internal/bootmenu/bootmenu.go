// Package bootmenu shows the boot entries on the console and lets the
// person choose one: a numbered list with the default marked, a countdown
// any key stops, arrow keys or numbers to choose, `e` to edit the command
// line for this boot only, Enter to boot, Esc to leave for the recovery
// menu. Plain text, redrawn by printing again, so it works on a serial line
// as on the framebuffer console.
package bootmenu

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/console"
)

const (
	// MaxTimeout caps the countdown whatever the configuration says.
	MaxTimeout = 30 * time.Second
	// DefaultTimeout is used when the configuration sets none.
	DefaultTimeout = 5 * time.Second
)

// NoCountdown as the timeout shows the menu and waits for a choice.
const NoCountdown = time.Duration(-2)

// ErrLeft is returned when the person leaves the menu with Esc.
var ErrLeft = errors.New("boot menu left with Esc")

// Choose returns the entry to boot. With one bootable entry, or a timeout of
// zero, it returns the default without showing anything. A default that
// cannot boot is never waited on: unattended, the first bootable entry is
// booted and warn says so.
func Choose(c *console.Console, m *bootentry.Menu, timeout time.Duration, warn func(string, ...any)) (bootentry.Entry, error) {
	bootable := 0
	for _, e := range m.Entries {
		if e.Broken == "" {
			bootable++
		}
	}
	s := &state{c: c, m: m, sel: m.Default, warn: warn}
	if s.sel < 0 || s.sel >= len(m.Entries) {
		s.sel = 0
	}
	if bootable == 0 || (timeout != NoCountdown && (bootable <= 1 || timeout == 0)) {
		return s.unattended()
	}
	restore := c.Raw()
	defer restore()
	if timeout == NoCountdown {
		s.draw()
		return s.interactive()
	}
	if timeout < 0 {
		timeout = DefaultTimeout
	}
	return s.run(min(timeout, MaxTimeout))
}

type state struct {
	c    *console.Console
	m    *bootentry.Menu
	sel  int
	num  int // digits typed so far
	warn func(string, ...any)
}

// unattended boots the default, or the first bootable entry when the
// default cannot boot, saying so.
func (s *state) unattended() (bootentry.Entry, error) {
	e, err := s.m.DefaultEntry()
	if err != nil {
		return e, err
	}
	if d := s.m.Entries[s.m.Default]; d.Broken != "" && s.warn != nil {
		s.warn("the default entry %q cannot boot (%s); booting %q instead", d.Title, d.Broken, e.Title)
	}
	return e, nil
}

func (s *state) draw() {
	w := s.c.Out
	fmt.Fprint(w, "\r\nromboot boot menu:\r\n")
	for i, e := range s.m.Entries {
		mark := "  "
		if i == s.sel {
			mark = "> "
		}
		def := " "
		if i == s.m.Default {
			def = "*"
		}
		line := fmt.Sprintf("%s%s%2d) %s", mark, def, i+1, e.Title)
		if e.Broken != "" {
			line += "  [cannot boot: " + e.Broken + "]"
		}
		fmt.Fprint(w, line+"\r\n")
	}
	fmt.Fprint(w, "Up/Down or a number to choose, e to edit the command line, Enter to boot, Esc for the recovery menu.\r\n")
}

func (s *state) run(timeout time.Duration) (bootentry.Entry, error) {
	s.draw()
	// Countdown: any key stops it and is then handled as usual.
	for left := int((timeout + time.Second - 1) / time.Second); left > 0; left-- {
		fmt.Fprintf(s.c.Out, "\rBooting %q in %2d s (press any key to stop)... ", s.m.Entries[s.sel].Title, left)
		k, err := s.c.ReadKey(time.Second)
		if errors.Is(err, console.ErrTimeout) {
			continue
		}
		fmt.Fprint(s.c.Out, "\r\n")
		if err != nil {
			return bootentry.Entry{}, err
		}
		if e, done, err := s.handle(k); done || err != nil {
			return e, err
		}
		return s.interactive()
	}
	fmt.Fprint(s.c.Out, "\r\n")
	s.m.Default = s.sel
	return s.unattended()
}

func (s *state) interactive() (bootentry.Entry, error) {
	for {
		k, err := s.c.ReadKey(-1)
		if err != nil {
			return bootentry.Entry{}, err
		}
		if e, done, err := s.handle(k); done || err != nil {
			return e, err
		}
	}
}

// handle acts on one key; done means boot the returned entry.
func (s *state) handle(k console.Key) (bootentry.Entry, bool, error) {
	n := len(s.m.Entries)
	switch {
	case k.Special == "up":
		s.sel, s.num = (s.sel+n-1)%n, 0
		s.draw()
	case k.Special == "down":
		s.sel, s.num = (s.sel+1)%n, 0
		s.draw()
	case k.Byte >= '0' && k.Byte <= '9':
		d := int(k.Byte - '0')
		if v := s.num*10 + d; v >= 1 && v <= n {
			s.num = v
		} else if d >= 1 && d <= n {
			s.num = d
		} else {
			s.num = 0
			return bootentry.Entry{}, false, nil
		}
		s.sel = s.num - 1
		s.draw()
	case k.Byte == 'e':
		s.num = 0
		e, ok, err := s.edit()
		if err != nil || ok {
			return e, ok, err
		}
		s.draw()
	case k.Special == "esc":
		return bootentry.Entry{}, false, ErrLeft
	case k.Special == "enter":
		e, err := s.boot()
		if err != nil {
			fmt.Fprintf(s.c.Out, "%v\r\n", err)
			return bootentry.Entry{}, false, nil
		}
		return e, true, nil
	}
	return bootentry.Entry{}, false, nil
}

func (s *state) boot() (bootentry.Entry, error) {
	e := s.m.Entries[s.sel]
	if e.Broken != "" {
		return bootentry.Entry{}, fmt.Errorf("%q cannot boot: %s", e.Title, e.Broken)
	}
	return e, nil
}

// edit lets the person change the selected entry's command line for this
// boot: Enter boots with it, Esc goes back to the menu.
func (s *state) edit() (bootentry.Entry, bool, error) {
	e := s.m.Entries[s.sel]
	if e.Broken != "" {
		fmt.Fprintf(s.c.Out, "%q cannot boot: %s\r\n", e.Title, e.Broken)
		return bootentry.Entry{}, false, nil
	}
	fmt.Fprintf(s.c.Out, "\r\nEdit the command line of %q (Enter boots, Esc cancels):\r\n", e.Title)
	line, ok, err := s.c.EditLine("> ", e.Cmdline)
	if err != nil || !ok {
		return bootentry.Entry{}, false, err
	}
	e.Cmdline = strings.TrimSpace(line)
	e.Edited = true
	return e, true, nil
}
