package tinyfmt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

type stringer struct{ s string }

func (s stringer) String() string { return "<" + s.s + ">" }

// Each case is formatted by this package and by the standard fmt: the
// verbs, flags and operand types the init's packages use, and the marks
// for a wrong verb, a missing and an extra operand.
var cases = []struct {
	format string
	args   []any
}{
	{"plain", nil},
	{"100%% sure", nil},
	{"%s and %s", []any{"a", "bé"}},
	{"%s", []any{[]byte("bytes")}},
	{"%v|%s|%q", []any{errors.New("boom"), os.ErrNotExist, fs.ErrPermission}},
	{"%v %s %q %x", []any{stringer{"x"}, stringer{"y"}, stringer{"z"}, stringer{"hi"}}},
	{"%d %d %d %d %d %d", []any{0, -1, int64(-1 << 63), uint64(1<<64 - 1), uint8(255), int32(-7)}},
	{"%v %v %v", []any{42, uint16(7), int8(-3)}},
	{"%2d|%5d|%4d|%10d|%-4d|%06d|%06d", []any{3, 42, -42, 1234567, 5, 42, -42}},
	{"%08x %04x %02x %x %X %#x", []any{uint32(0xdeadbeef), 0x1f, byte(10), 255, 255, 255}},
	{"%x %X % x %#x", []any{[]byte{0, 1, 0xab}, []byte{0xab}, []byte{1, 2}, []byte{1, 2}}},
	{"%x", []any{"hi"}},
	{"%x", []any{-42}},
	{"%q %q %+q %#q", []any{"a\"b\n", []byte("x\x00"), "é", "back`tick"}},
	{"%q", []any{'x'}},
	{"%c%c", []any{'é', 65}},
	{"%9s|%-9s|%-12s|%-8s|%.2s|%5.1s", []any{"abc", "abc", "abcdefghijklmn", "é", "héllo", "xyz"}},
	{"%g %g %g %.3f %.3f %v", []any{30.0, 0.5, 1e21, 1.23456, -0.0004, 2.5}},
	{"%v %t", []any{true, false}},
	{"%v %s", []any{[]string{"a", "b"}, []string{}}},
	{"%q", []any{[]string{"a b", "c"}}},
	{"%v %d", []any{[]byte{1, 2}, []byte{3}}},
	{"%v %s %d", []any{1500 * time.Millisecond, time.Second, time.Second}},
	{"%v", []any{nil}},
	{"%s", []any{nil}},
	{"%d", []any{"str"}},
	{"%s", []any{42}},
	{"%t", []any{1}},
	{"%d %d", []any{1}},
	{"%d", []any{1, "x", 2}},
	{"%z", []any{1}},
	{"trailing %", nil},
	{"%!", nil},
}

func TestSameAsFmt(t *testing.T) {
	for _, c := range cases {
		got, want := Sprintf(c.format, c.args...), fmt.Sprintf(c.format, c.args...)
		if got != want {
			t.Errorf("Sprintf(%q, %#v) = %q, fmt says %q", c.format, c.args, got, want)
		}
		if got := string(Appendf([]byte("pre:"), c.format, c.args...)); got != "pre:"+want {
			t.Errorf("Appendf(%q) = %q, want %q", c.format, got, "pre:"+want)
		}
		var b bytes.Buffer
		n, err := Fprintf(&b, c.format, c.args...)
		if b.String() != want || n != len(want) || err != nil {
			t.Errorf("Fprintf(%q) wrote %q (%d, %v), want %q", c.format, b.String(), n, err, want)
		}
	}
}

func TestFprintAsFmt(t *testing.T) {
	lists := [][]any{
		{"a", "b"},
		{1, 2, "x", 3, errors.New("e"), stringer{"s"}},
		{"prompt: ", 3, "\n"},
		{},
		{nil, true, 2.5},
	}
	for _, a := range lists {
		var got, want bytes.Buffer
		Fprint(&got, a...)
		fmt.Fprint(&want, a...)
		if got.String() != want.String() {
			t.Errorf("Fprint(%#v) = %q, fmt says %q", a, got.String(), want.String())
		}
		got.Reset()
		want.Reset()
		Fprintln(&got, a...)
		fmt.Fprintln(&want, a...)
		if got.String() != want.String() {
			t.Errorf("Fprintln(%#v) = %q, fmt says %q", a, got.String(), want.String())
		}
	}
}

func TestErrorfWraps(t *testing.T) {
	base := os.ErrNotExist
	other := errors.New("other")

	plain := Errorf("no wrap %d: %v", 1, base)
	if plain.Error() != fmt.Errorf("no wrap %d: %v", 1, base).Error() || errors.Unwrap(plain) != nil {
		t.Errorf("Errorf without %%w = %q, unwraps to %v", plain, errors.Unwrap(plain))
	}

	one := Errorf("open %s: %w", "/boot", base)
	if one.Error() != "open /boot: file does not exist" {
		t.Errorf("Errorf = %q", one)
	}
	if !errors.Is(one, fs.ErrNotExist) || errors.Unwrap(one) != base {
		t.Errorf("Errorf(%%w) does not wrap: Unwrap = %v", errors.Unwrap(one))
	}
	var pe *fs.PathError
	wrappedPath := Errorf("read: %w", &fs.PathError{Op: "read", Path: "/x", Err: base})
	if !errors.As(wrappedPath, &pe) || pe.Path != "/x" {
		t.Errorf("errors.As through Errorf failed: %v", wrappedPath)
	}

	two := Errorf("%w and %w", base, other)
	if two.Error() != fmt.Errorf("%w and %w", base, other).Error() || !errors.Is(two, base) || !errors.Is(two, other) {
		t.Errorf("Errorf with two %%w = %q, Is base %v, Is other %v", two, errors.Is(two, base), errors.Is(two, other))
	}

	badW := "bad %w" // a variable, so that vet lets the wrong operand through
	// Outside Errorf, %w is a wrong verb (fmt also names the type: reflection).
	if got := Sprintf(badW, base); !strings.HasPrefix(got, "bad %!w(") {
		t.Errorf("Sprintf(%%w) = %q, want the wrong-verb mark", got)
	}
	notErr := Errorf(badW, "string")
	if want := fmt.Errorf(badW, "string").Error(); notErr.Error() != want || errors.Unwrap(notErr) != nil {
		t.Errorf("Errorf(%%w, non-error) = %q, want %q and nothing wrapped", notErr, want)
	}
}

// An operand type the package does not know prints a mark, never panics.
func TestUnsupportedOperand(t *testing.T) {
	type point struct{ X, Y int }
	format := "at %v, %d"
	got := Sprintf(format, point{1, 2}, map[string]int{})
	if !strings.Contains(got, "%!v(unsupported)") || !strings.Contains(got, "%!d(unsupported)") {
		t.Errorf("Sprintf with unknown types = %q", got)
	}
}

// Width and precision are bounded: a format string cannot make the
// printer allocate without limit.
func TestHugeWidth(t *testing.T) {
	got := Sprintf("%99999999999d|", 1)
	if len(got) > 2_000_000 {
		t.Errorf("a huge width produced %d bytes", len(got))
	}
}
