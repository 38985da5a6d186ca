// Package bootmenu shows the boot entries on the console and lets the
// person choose one: a numbered list with the default marked, a countdown
// any key stops, arrow keys or numbers to choose, `e` to edit the command
// line for this boot only, Enter to boot. Plain text, redrawn by printing
// again, so it works on a serial line as on the framebuffer console.
package bootmenu

import (
	"errors"
	"fmt"
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

// Choose returns the entry to boot. With one bootable entry, or a timeout of
// zero, it returns the default without showing anything.
func Choose(c *console.Console, m *bootentry.Menu, timeout time.Duration) (bootentry.Entry, error) {
	bootable := 0
	for _, e := range m.Entries {
		if e.Broken == "" {
			bootable++
		}
	}
	if bootable <= 1 || timeout == 0 {
		return m.DefaultEntry()
	}
	if timeout < 0 {
		timeout = DefaultTimeout
	}
	timeout = min(timeout, MaxTimeout)
	restore := c.Raw()
	defer restore()
	s := &state{c: c, m: m, sel: m.Default}
	if s.sel < 0 || s.sel >= len(m.Entries) {
		s.sel = 0
	}
	return s.run(timeout)
}

type state struct {
	c   *console.Console
	m   *bootentry.Menu
	sel int
	num int // digits typed so far
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
	fmt.Fprint(w, "Up/Down or a number to choose, e to edit the command line, Enter to boot.\r\n")
}

func (s *state) run(timeout time.Duration) (bootentry.Entry, error) {
	s.draw()
	// Countdown: any key stops it and is then handled as usual.
	for left := int((timeout + time.Second - 1) / time.Second); left > 0; left-- {
		fmt.Fprintf(s.c.Out, "\rBooting %q in %2d s (press any key to stop)… ", s.m.Entries[s.sel].Title, left)
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
	return s.boot()
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
	line := []byte(e.Cmdline)
	fmt.Fprintf(s.c.Out, "\r\nEdit the command line of %q (Enter boots, Esc cancels):\r\n> %s", e.Title, line)
	for {
		k, err := s.c.ReadKey(-1)
		if err != nil {
			return bootentry.Entry{}, false, err
		}
		switch {
		case k.Special == "enter":
			fmt.Fprint(s.c.Out, "\r\n")
			e.Cmdline = strings.TrimSpace(string(line))
			e.Edited = true
			return e, true, nil
		case k.Special == "esc":
			fmt.Fprint(s.c.Out, "\r\n")
			return bootentry.Entry{}, false, nil
		case k.Special == "backspace":
			if len(line) > 0 {
				line = line[:len(line)-1]
				fmt.Fprint(s.c.Out, "\b \b")
			}
		case k.Special == "ctrl-u":
			fmt.Fprint(s.c.Out, strings.Repeat("\b \b", len(line)))
			line = line[:0]
		case k.Byte != 0 && len(line) < 4096:
			line = append(line, k.Byte)
			fmt.Fprintf(s.c.Out, "%c", k.Byte)
		}
	}
}
