package console

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Key is one key press: a printable byte, or a named special key.
type Key struct {
	Byte    byte   // printable character, 0 for a special key
	Special string // "up", "down", "enter", "backspace", "esc", "ctrl-u", "other"
}

// Raw switches the terminal to raw input (no echo, no line buffering) and
// returns the function that restores it. On a non-terminal it does nothing.
func (c *Console) Raw() func() {
	restore, err := c.setTermios(func(t *unix.Termios) {
		t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Iflag &^= unix.ICRNL | unix.IXON
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	})
	if err != nil || restore == nil {
		return func() {}
	}
	return restore
}

// ErrTimeout is returned by ReadKey when no key came in time.
var ErrTimeout = errors.New("no key pressed")

// ReadKey waits up to timeout (forever when timeout < 0) for one key and
// decodes the arrow keys' escape sequences.
func (c *Console) ReadKey(timeout time.Duration) (Key, error) {
	b, err := c.readByte(timeout)
	if err != nil {
		return Key{}, err
	}
	switch b {
	case '\r', '\n':
		return Key{Special: "enter"}, nil
	case 0x7f, 0x08:
		return Key{Special: "backspace"}, nil
	case 0x15:
		return Key{Special: "ctrl-u"}, nil
	case 0x1b:
		// ESC alone, or ESC [ A/B (arrows), ESC O A/B.
		b2, err := c.readByte(50 * time.Millisecond)
		if err != nil {
			return Key{Special: "esc"}, nil
		}
		if b2 != '[' && b2 != 'O' {
			c.pending = append(c.pending, b2) // a key of its own, typed fast
			return Key{Special: "esc"}, nil
		}
		b3, err := c.readByte(50 * time.Millisecond)
		if err != nil {
			return Key{Special: "esc"}, nil
		}
		switch b3 {
		case 'A':
			return Key{Special: "up"}, nil
		case 'B':
			return Key{Special: "down"}, nil
		}
		return Key{Special: "other"}, nil
	}
	if b >= 0x20 && b < 0x7f {
		return Key{Byte: b}, nil
	}
	return Key{Special: "other"}, nil
}

func (c *Console) readByte(timeout time.Duration) (byte, error) {
	if len(c.pending) > 0 {
		b := c.pending[0]
		c.pending = c.pending[1:]
		return b, nil
	}
	fd := int(c.In.Fd())
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, ErrTimeout
		}
		var one [1]byte
		k, err := c.In.Read(one[:])
		if k == 1 {
			return one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// EditLine edits one line in raw mode, starting from initial: printable
// keys append, Backspace deletes, Ctrl-U clears. Enter returns the line and
// true, Esc returns false. The line is bounded at 4096 bytes.
func (c *Console) EditLine(prompt, initial string) (string, bool, error) {
	line := []byte(initial)
	fmt.Fprintf(c.Out, "%s%s", prompt, line)
	for {
		k, err := c.ReadKey(-1)
		if err != nil {
			return "", false, err
		}
		switch {
		case k.Special == "enter":
			fmt.Fprint(c.Out, "\r\n")
			return string(line), true, nil
		case k.Special == "esc":
			fmt.Fprint(c.Out, "\r\n")
			return "", false, nil
		case k.Special == "backspace":
			if len(line) > 0 {
				line = line[:len(line)-1]
				fmt.Fprint(c.Out, "\b \b")
			}
		case k.Special == "ctrl-u":
			fmt.Fprint(c.Out, strings.Repeat("\b \b", len(line)))
			line = line[:0]
		case k.Byte != 0 && len(line) < 4096:
			line = append(line, k.Byte)
			fmt.Fprintf(c.Out, "%c", k.Byte)
		}
	}
}
