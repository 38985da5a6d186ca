// Package console talks to the person at the machine: passphrase prompts
// with echo off, numbered choices and single-key menus, on whatever
// terminal is PID 1's stdin (serial or framebuffer console).
package console

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Console is a terminal: in is read byte by byte (no buffering, so nothing
// typed ahead is lost between prompts), out gets the prompts.
type Console struct {
	In  *os.File
	Out io.Writer

	pending []byte // bytes read ahead while decoding an escape sequence
}

// maxLine bounds a line read from the console.
const maxLine = 1024

// HideTyping turns echo off for good: from now on, keys typed while no
// visible line is being read (ahead of a prompt, during an unlock, between
// tries) reach the next read without showing on the screen. A passphrase
// typed a little early must never appear on the console. ReadLine shows
// what is typed while it reads; Raw and ReadPassphrase put back this state.
// On a non-terminal it does nothing.
func (c *Console) HideTyping() error {
	_, err := c.setTermios(hidden)
	return err
}

// hidden is the mode typing stays in: line by line, nothing echoed (not
// even the newline).
func hidden(t *unix.Termios) {
	t.Lflag = t.Lflag&^(unix.ECHO|unix.ECHONL) | unix.ICANON
}

// setTermios applies change to the terminal's modes and returns the
// function that puts the old ones back (nil on a non-terminal).
func (c *Console) setTermios(change func(*unix.Termios)) (func(), error) {
	fd := int(c.In.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil
	}
	t := *old
	change(&t)
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, fmt.Errorf("setting the terminal's modes: %w", err)
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// ReadPassphrase turns echo off, prints prompt, reads a line, ends the
// prompt's line and restores the terminal. Echo goes off before the prompt
// shows, so nothing typed after the prompt can be echoed. The caller wipes
// the result.
func (c *Console) ReadPassphrase(prompt string) ([]byte, error) {
	restore, err := c.setTermios(hidden)
	if err != nil {
		return nil, err
	}
	if restore != nil {
		defer restore()
	}
	fmt.Fprint(c.Out, prompt)
	p, err := c.readLine()
	// The newline is ours, not the terminal's: one typed ahead was never
	// echoed, and the next output must not run on from the prompt.
	fmt.Fprintln(c.Out)
	return p, err
}

// ReadLine reads one line, without its newline, showing what is typed.
func (c *Console) ReadLine() (string, error) {
	restore, err := c.setTermios(func(t *unix.Termios) { t.Lflag |= unix.ICANON | unix.ECHO })
	if err != nil {
		return "", err
	}
	if restore != nil {
		defer restore()
	}
	b, err := c.readLine()
	return string(b), err
}

func (c *Console) readLine() ([]byte, error) {
	// Sized once: growing it would leave copies of a passphrase behind.
	line := make([]byte, 0, maxLine)
	var one [1]byte
	for {
		n, err := c.In.Read(one[:])
		if n == 1 {
			switch one[0] {
			case '\n', '\r':
				return line, nil
			case 0x7f, 0x08:
				if len(line) > 0 {
					line[len(line)-1] = 0
					line = line[:len(line)-1]
				}
				continue
			}
			if len(line) >= maxLine {
				clear(line)
				return nil, errors.New("line too long")
			}
			line = append(line, one[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			clear(line)
			return nil, err
		}
	}
}

// Choose shows a numbered list and returns the index picked (1-based on
// screen). It asks again on anything else.
func (c *Console) Choose(title string, items []string) (int, error) {
	for {
		fmt.Fprintln(c.Out, title)
		for i, it := range items {
			fmt.Fprintf(c.Out, "  %d) %s\n", i+1, it)
		}
		fmt.Fprintf(c.Out, "Choose 1-%d: ", len(items))
		s, err := c.ReadLine()
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err == nil && n >= 1 && n <= len(items) {
			return n - 1, nil
		}
		fmt.Fprintf(c.Out, "%q is not a number from 1 to %d.\n", strings.TrimSpace(s), len(items))
	}
}

// MenuItem is one key of a single-key menu.
type MenuItem struct {
	Key   byte
	Label string
}

// Menu shows the items and returns the key chosen; it asks again on an
// unknown key.
func (c *Console) Menu(title string, items []MenuItem) (byte, error) {
	for {
		fmt.Fprintln(c.Out, title)
		for _, it := range items {
			fmt.Fprintf(c.Out, "  %c  %s\n", it.Key, it.Label)
		}
		fmt.Fprint(c.Out, "> ")
		s, err := c.ReadLine()
		if err != nil {
			return 0, err
		}
		s = strings.ToLower(strings.TrimSpace(s))
		for _, it := range items {
			if len(s) == 1 && s[0] == it.Key {
				return it.Key, nil
			}
		}
		if s != "" {
			fmt.Fprintf(c.Out, "Unknown choice %q.\n", s)
		}
	}
}
