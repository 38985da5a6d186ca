// Package tinyfmt is the part of the standard fmt package the init uses
// (Errorf, Sprintf, Appendf, Fprintf, Fprint, Fprintln), without reflection:
// operands are formatted by a type switch over the types the init prints
// (strings, byte slices, integers, floats, bools, errors, Stringers, string
// slices). Dropping fmt and reflect from the init saves about 50 KB of xz in
// the ROM (docs/x220.md, "What each trim bought").
//
// The packages the x220 init links import it as fmt, so their code reads
// as with the standard package, and `go vet` checks their format strings
// as it does for the standard one (each function forwards to the standard
// fmt in a branch the compiler removes). For the types and verbs above the
// output is the standard package's, byte for byte (TestSameAsFmt); other
// operand types print as `%!v(unsupported)` instead of panicking.
package tinyfmt

import (
	"errors"
	stdfmt "fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// std forwards every call to the standard fmt when true: it is false, so
// the compiler drops those calls (and the linker fmt and reflect), but vet
// sees each function as a printf wrapper and checks its callers.
const std = false

// Stringer is fmt.Stringer.
type Stringer interface{ String() string }

// Sprintf formats like fmt.Sprintf.
func Sprintf(format string, a ...any) string {
	if std {
		return stdfmt.Sprintf(format, a...)
	}
	return string(Appendf(nil, format, a...))
}

// Appendf formats like fmt.Appendf.
func Appendf(b []byte, format string, a ...any) []byte {
	if std {
		return stdfmt.Appendf(b, format, a...)
	}
	p := printer{buf: b}
	p.printf(format, a)
	return p.buf
}

// Fprintf formats like fmt.Fprintf.
func Fprintf(w io.Writer, format string, a ...any) (int, error) {
	if std {
		return stdfmt.Fprintf(w, format, a...)
	}
	return w.Write(Appendf(nil, format, a...))
}

// Fprint formats like fmt.Fprint: operands in their default format, a space
// between two operands when neither is a string.
func Fprint(w io.Writer, a ...any) (int, error) {
	if std {
		return stdfmt.Fprint(w, a...)
	}
	var p printer
	for i, v := range a {
		_, s1 := v.(string)
		if i > 0 {
			_, s0 := a[i-1].(string)
			if !s0 && !s1 {
				p.buf = append(p.buf, ' ')
			}
		}
		p.value(v, 'v', noSpec)
	}
	return w.Write(p.buf)
}

// Fprintln formats like fmt.Fprintln: operands in their default format
// separated by spaces, then a newline.
func Fprintln(w io.Writer, a ...any) (int, error) {
	if std {
		return stdfmt.Fprintln(w, a...)
	}
	var p printer
	for i, v := range a {
		if i > 0 {
			p.buf = append(p.buf, ' ')
		}
		p.value(v, 'v', noSpec)
	}
	p.buf = append(p.buf, '\n')
	return w.Write(p.buf)
}

// Errorf formats like fmt.Errorf: an operand of %w that is an error is
// wrapped (errors.Is, errors.As and errors.Unwrap see it); several %w wrap
// them all.
func Errorf(format string, a ...any) error {
	if std {
		return stdfmt.Errorf(format, a...)
	}
	p := printer{wrap: true}
	p.printf(format, a)
	s := string(p.buf)
	switch len(p.wrapped) {
	case 0:
		return errors.New(s)
	case 1:
		return &wrapError{s, p.wrapped[0]}
	default:
		return &wrapErrors{s, p.wrapped}
	}
}

type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

type wrapErrors struct {
	msg  string
	errs []error
}

func (e *wrapErrors) Error() string   { return e.msg }
func (e *wrapErrors) Unwrap() []error { return e.errs }

// noSpec is a verb without flags, width or precision.
var noSpec = spec{width: -1, prec: -1}

// spec is one verb's flags, width and precision.
type spec struct {
	minus, plus, sharp, space, zero bool
	width, prec                     int // -1: none
}

type printer struct {
	buf     []byte
	wrap    bool // Errorf: %w wraps
	wrapped []error
}

func (p *printer) printf(format string, a []any) {
	arg := 0
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			j := i + 1
			for j < len(format) && format[j] != '%' {
				j++
			}
			p.buf = append(p.buf, format[i:j]...)
			i = j
			continue
		}
		i++
		s := noSpec
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '-':
				s.minus = true
				s.zero = false
			case '+':
				s.plus = true
			case '#':
				s.sharp = true
			case ' ':
				s.space = true
			case '0':
				s.zero = !s.minus
			default:
				break flags
			}
		}
		s.width, i = number(format, i)
		if i < len(format) && format[i] == '.' {
			i++
			s.prec, i = number(format, i)
			if s.prec < 0 {
				s.prec = 0
			}
		}
		if i >= len(format) {
			p.buf = append(p.buf, "%!(NOVERB)"...)
			break
		}
		verb, size := utf8.DecodeRuneInString(format[i:])
		i += size
		if verb == '%' {
			p.buf = append(p.buf, '%')
			continue
		}
		if arg >= len(a) {
			p.buf = append(p.buf, '%', '!')
			p.buf = utf8.AppendRune(p.buf, verb)
			p.buf = append(p.buf, "(MISSING)"...)
			continue
		}
		v := a[arg]
		arg++
		if verb == 'w' {
			if err, ok := v.(error); ok && p.wrap {
				p.wrapped = append(p.wrapped, err)
				verb = 'v'
			} else {
				p.bad('w', v)
				continue
			}
		}
		p.value(v, verb, s)
	}
	if arg < len(a) {
		p.buf = append(p.buf, "%!(EXTRA "...)
		for j, v := range a[arg:] {
			if j > 0 {
				p.buf = append(p.buf, ", "...)
			}
			p.buf = append(p.buf, typeName(v)...)
			p.buf = append(p.buf, '=')
			p.value(v, 'v', noSpec)
		}
		p.buf = append(p.buf, ')')
	}
}

// number reads a decimal number at format[i:]; -1 when there is none.
func number(format string, i int) (int, int) {
	n := -1
	for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
		if n < 0 {
			n = 0
		}
		if n = n*10 + int(format[i]-'0'); n > 1e6 {
			n = 1e6 // fmt's limit too
		}
	}
	return n, i
}

func (p *printer) value(v any, verb rune, s spec) {
	switch verb {
	case 'v', 's', 'x', 'X', 'q':
		switch x := v.(type) {
		case error:
			p.str(x.Error(), verb, s, v)
			return
		case Stringer:
			p.str(x.String(), verb, s, v)
			return
		}
	}
	if _, n, unsigned, ok := integer(v); ok {
		p.integer(n, unsigned, verb, s, v)
		return
	}
	switch x := v.(type) {
	case nil:
		if verb == 'v' {
			p.pad("<nil>", s)
		} else {
			p.bad(verb, v)
		}
	case string:
		p.str(x, verb, s, v)
	case []byte:
		if verb == 'v' || verb == 'd' {
			p.buf = append(p.buf, '[')
			for i, c := range x {
				if i > 0 {
					p.buf = append(p.buf, ' ')
				}
				p.buf = strconv.AppendUint(p.buf, uint64(c), 10)
			}
			p.buf = append(p.buf, ']')
			return
		}
		p.str(string(x), verb, s, v)
	case bool:
		if verb != 'v' && verb != 't' {
			p.bad(verb, v)
			return
		}
		p.pad(strconv.FormatBool(x), s)
	case float64:
		p.float(x, verb, s, v)
	case float32:
		p.float(float64(x), verb, s, v)
	case []string:
		if verb != 'v' && verb != 's' && verb != 'q' {
			p.bad(verb, v)
			return
		}
		p.buf = append(p.buf, '[')
		for i, e := range x {
			if i > 0 {
				p.buf = append(p.buf, ' ')
			}
			p.str(e, verb, noSpec, e)
		}
		p.buf = append(p.buf, ']')
	default:
		p.buf = append(p.buf, '%', '!')
		p.buf = utf8.AppendRune(p.buf, verb)
		p.buf = append(p.buf, "(unsupported)"...)
	}
}

func (p *printer) str(x string, verb rune, s spec, v any) {
	switch verb {
	case 'v', 's':
		if s.prec >= 0 {
			x = truncate(x, s.prec)
		}
		p.pad(x, s)
	case 'q':
		if s.prec >= 0 {
			x = truncate(x, s.prec)
		}
		switch {
		case s.sharp && strconv.CanBackquote(x):
			p.pad("`"+x+"`", s)
		case s.plus:
			p.pad(strconv.QuoteToASCII(x), s)
		default:
			p.pad(strconv.Quote(x), s)
		}
	case 'x', 'X':
		digits := "0123456789abcdef"
		if verb == 'X' {
			digits = "0123456789ABCDEF"
		}
		var h []byte
		for i := 0; i < len(x); i++ {
			if i > 0 && s.space {
				h = append(h, ' ')
			}
			if s.sharp && (i == 0 || s.space) {
				h = append(h, '0', byte(verb))
			}
			h = append(h, digits[x[i]>>4], digits[x[i]&15])
		}
		p.pad(string(h), s)
	default:
		p.bad(verb, v)
	}
}

func truncate(x string, n int) string {
	for i := range x {
		if n == 0 {
			return x[:i]
		}
		n--
	}
	return x
}

func (p *printer) integer(n int64, unsigned bool, verb rune, s spec, v any) {
	var d []byte
	neg := !unsigned && n < 0
	u := uint64(n)
	if neg {
		u = -u
	}
	switch verb {
	case 'v', 'd':
		d = strconv.AppendUint(nil, u, 10)
	case 'x':
		d = strconv.AppendUint(nil, u, 16)
	case 'X':
		d = []byte(toUpper(strconv.FormatUint(u, 16)))
	case 'o':
		d = strconv.AppendUint(nil, u, 8)
	case 'b':
		d = strconv.AppendUint(nil, u, 2)
	case 'c':
		p.pad(string(rune(n)), s)
		return
	case 'q':
		p.pad(strconv.QuoteRune(rune(n)), s)
		return
	default:
		p.bad(verb, v)
		return
	}
	if s.prec >= 0 {
		s.zero = false
		for len(d) < s.prec {
			d = append([]byte{'0'}, d...)
		}
		if s.prec == 0 && u == 0 {
			d = d[:0]
		}
	}
	var prefix string
	switch {
	case neg:
		prefix = "-"
	case s.plus:
		prefix = "+"
	case s.space:
		prefix = " "
	}
	if s.sharp {
		switch verb {
		case 'x':
			prefix += "0x"
		case 'X':
			prefix += "0X"
		case 'o':
			if len(d) == 0 || d[0] != '0' {
				prefix += "0"
			}
		case 'b':
			prefix += "0b"
		}
	}
	if s.zero && !s.minus && s.width > 0 {
		for len(prefix)+len(d) < s.width {
			d = append([]byte{'0'}, d...)
		}
	}
	p.pad(prefix+string(d), spec{minus: s.minus, width: s.width, prec: -1})
}

func (p *printer) float(f float64, verb rune, s spec, v any) {
	switch verb {
	case 'v', 'g', 'f', 'e', 'F':
	default:
		p.bad(verb, v)
		return
	}
	if verb == 'v' {
		verb = 'g'
	}
	if verb == 'F' {
		verb = 'f'
	}
	prec := s.prec
	if prec < 0 && verb != 'g' {
		prec = 6
	}
	d := strconv.FormatFloat(f, byte(verb), prec, 64)
	if s.plus && d[0] != '-' && d[0] != '+' {
		d = "+" + d
	}
	if s.zero && !s.minus && s.width > 0 {
		sign := ""
		if d[0] == '-' || d[0] == '+' {
			sign, d = d[:1], d[1:]
		}
		for len(sign)+len(d) < s.width {
			d = "0" + d
		}
		d = sign + d
	}
	p.pad(d, spec{minus: s.minus, width: s.width, prec: -1})
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// pad writes x padded with spaces to the width (on the right with '-').
func (p *printer) pad(x string, s spec) {
	n := s.width - utf8.RuneCountInString(x)
	if !s.minus {
		for ; n > 0; n-- {
			p.buf = append(p.buf, ' ')
		}
	}
	p.buf = append(p.buf, x...)
	for ; n > 0; n-- {
		p.buf = append(p.buf, ' ')
	}
}

// bad writes the standard package's mark for a verb that does not suit
// its operand: %!verb(type=value).
func (p *printer) bad(verb rune, v any) {
	p.buf = append(p.buf, '%', '!')
	p.buf = utf8.AppendRune(p.buf, verb)
	p.buf = append(p.buf, '(')
	if v == nil {
		p.buf = append(p.buf, "<nil>"...)
	} else {
		p.buf = append(p.buf, typeName(v)...)
		p.buf = append(p.buf, '=')
		p.value(v, 'v', noSpec)
	}
	p.buf = append(p.buf, ')')
}

// integer returns an integer operand's type name and value.
func integer(v any) (name string, n int64, unsigned, ok bool) {
	switch x := v.(type) {
	case int:
		return "int", int64(x), false, true
	case int8:
		return "int8", int64(x), false, true
	case int16:
		return "int16", int64(x), false, true
	case int32:
		return "int32", int64(x), false, true
	case int64:
		return "int64", x, false, true
	case time.Duration:
		return "time.Duration", int64(x), false, true
	case uint:
		return "uint", int64(x), true, true
	case uint8:
		return "uint8", int64(x), true, true
	case uint16:
		return "uint16", int64(x), true, true
	case uint32:
		return "uint32", int64(x), true, true
	case uint64:
		return "uint64", int64(x), true, true
	case uintptr:
		return "uintptr", int64(x), true, true
	}
	return "", 0, false, false
}

// typeName names the operand types value handles (reflect would name any).
func typeName(v any) string {
	if name, _, _, ok := integer(v); ok {
		return name
	}
	switch v.(type) {
	case string:
		return "string"
	case []byte:
		return "[]uint8"
	case bool:
		return "bool"
	case float64:
		return "float64"
	case float32:
		return "float32"
	case []string:
		return "[]string"
	}
	return "?"
}
