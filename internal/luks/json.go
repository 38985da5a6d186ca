package luks

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader for the LUKS2 metadata area. The init carries it
// instead of encoding/json (whose reflection costs about 70 KB of xz in ROM);
// it accepts RFC 8259 JSON, keeps the last of duplicate keys as
// encoding/json does, and bounds nesting.

const maxJSONDepth = 16

// jval is a parsed JSON value: exactly one of the fields is meaningful,
// per kind.
type jval struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	obj  map[string]*jval
	arr  []*jval
	str  string // string, or the number's text
	b    bool
}

type jparser struct {
	s   []byte
	pos int
}

func parseJSON(b []byte) (*jval, error) {
	p := &jparser{s: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, p.errorf("data after the top-level value")
	}
	if v.kind != 'o' {
		return nil, errors.New("top-level value is not an object")
	}
	return v, nil
}

func (p *jparser) errorf(format string, a ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *jparser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (*jval, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	p.space()
	if p.pos >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.s[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return &jval{kind: 's', str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.lit("true"):
		return &jval{kind: 'b', b: true}, nil
	case p.lit("false"):
		return &jval{kind: 'b'}, nil
	case p.lit("null"):
		return &jval{kind: 'z'}, nil
	}
	return nil, p.errorf("unexpected %q", p.s[p.pos])
}

func (p *jparser) lit(w string) bool {
	if len(p.s)-p.pos >= len(w) && string(p.s[p.pos:p.pos+len(w)]) == w {
		p.pos += len(w)
		return true
	}
	return false
}

func (p *jparser) object(depth int) (*jval, error) {
	p.pos++ // {
	v := &jval{kind: 'o', obj: map[string]*jval{}}
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != '"' {
			return nil, p.errorf("want a key")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ':' {
			return nil, p.errorf("want ':'")
		}
		p.pos++
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.obj[k] = val
		p.space()
		if p.pos >= len(p.s) {
			return nil, p.errorf("unterminated object")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf("want ',' or '}'")
		}
	}
}

func (p *jparser) array(depth int) (*jval, error) {
	p.pos++ // [
	v := &jval{kind: 'a'}
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, e)
		p.space()
		if p.pos >= len(p.s) {
			return nil, p.errorf("unterminated array")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf("want ',' or ']'")
		}
	}
}

func (p *jparser) string() (string, error) {
	p.pos++ // "
	var out []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(out), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c == '\\':
			if p.pos+1 >= len(p.s) {
				return "", p.errorf("unterminated escape")
			}
			e := p.s[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errorf("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(utf8.RuneError)
					if p.lit("\\u") {
						if x, ok := p.hex4(); ok {
							r2 = x
						}
					}
					r = utf16.DecodeRune(r, r2)
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", p.errorf("bad escape \\%c", e)
			}
		default:
			out = append(out, c)
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jparser) hex4() (rune, bool) {
	if len(p.s)-p.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.s[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(n), true
}

func (p *jparser) number() (*jval, error) {
	start := p.pos
	if p.s[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.s) && p.s[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, p.errorf("bad number")
	}
	if p.pos < len(p.s) && p.s[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("bad number")
		}
	}
	if p.pos < len(p.s) && (p.s[p.pos] == 'e' || p.s[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.s) && (p.s[p.pos] == '+' || p.s[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("bad number")
		}
	}
	return &jval{kind: 'n', str: string(p.s[start:p.pos])}, nil
}

// Typed access with errors that name the field.

func (v *jval) get(key string) *jval {
	if v == nil || v.kind != 'o' {
		return nil
	}
	return v.obj[key]
}

// str returns a string field; absent is "".
func (v *jval) strField(key string) (string, error) {
	f := v.get(key)
	if f == nil || f.kind == 'z' {
		return "", nil
	}
	if f.kind != 's' {
		return "", fmt.Errorf("%s: want a string", key)
	}
	return f.str, nil
}

// u64String returns a LUKS2 decimal-string number field.
func (v *jval) u64String(key string) (uint64, error) {
	f := v.get(key)
	if f == nil {
		return 0, nil
	}
	if f.kind != 's' {
		return 0, fmt.Errorf("%s: want a decimal string", key)
	}
	n, err := strconv.ParseUint(f.str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: bad number %q", key, f.str)
	}
	return n, nil
}

// intField returns a JSON integer field; absent is def.
func (v *jval) intField(key string, def int64) (int64, error) {
	f := v.get(key)
	if f == nil {
		return def, nil
	}
	if f.kind != 'n' {
		return 0, fmt.Errorf("%s: want a number", key)
	}
	n, err := strconv.ParseInt(f.str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want an integer, got %s", key, f.str)
	}
	return n, nil
}

// strings returns an array of strings; absent is nil.
func (v *jval) strings(key string) ([]string, error) {
	f := v.get(key)
	if f == nil || f.kind == 'z' {
		return nil, nil
	}
	if f.kind != 'a' {
		return nil, fmt.Errorf("%s: want an array", key)
	}
	out := make([]string, 0, len(f.arr))
	for _, e := range f.arr {
		if e.kind != 's' {
			return nil, fmt.Errorf("%s: want strings", key)
		}
		out = append(out, e.str)
	}
	return out, nil
}
