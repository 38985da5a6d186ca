package luks

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader for the LUKS2 metadata area. The init carries it
// instead of encoding/json (whose reflection costs about 70 KB of xz in ROM).
// It reads what cryptsetup's parser (json-c, not in strict mode) reads, so
// that romboot accepts the headers cryptsetup accepts: RFC 8259 JSON plus
// /* */ and // comments where white space may be, single-quoted strings,
// raw control characters in strings, a trailing comma in objects and
// arrays, true/false/null in any case, NaN and [-]Infinity, and json-c's
// loose numbers (leading zeros, "1.", a dangling exponent). It keeps the
// last of duplicate keys as json-c does, and nests at most 32 deep.

const maxJSONDepth = 31

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
	if err := p.space(); err != nil {
		return nil, err
	}
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

// space skips white space and comments; an unterminated comment is an
// error.
func (p *jparser) space() error {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '/':
			if p.pos+1 >= len(p.s) {
				return p.errorf("unterminated comment")
			}
			end := "\n"
			switch p.s[p.pos+1] {
			case '*':
				end = "*/"
			case '/':
			default:
				return p.errorf("bad comment")
			}
			i := indexFrom(p.s, p.pos+2, end)
			if i < 0 {
				return p.errorf("unterminated comment")
			}
			p.pos = i + len(end)
		default:
			return nil
		}
	}
	return nil
}

func indexFrom(s []byte, from int, sep string) int {
	for i := from; i+len(sep) <= len(s); i++ {
		if s[i] == 0 {
			return -1
		}
		if string(s[i:i+len(sep)]) == sep {
			return i
		}
	}
	return -1
}

func (p *jparser) value(depth int) (*jval, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.s[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"' || c == '\'':
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
	case p.lit("nan"), p.lit("infinity"):
		return &jval{kind: 'n', str: "NaN"}, nil
	}
	return nil, p.errorf("unexpected %q", p.s[p.pos])
}

// lit consumes the literal w in any case.
func (p *jparser) lit(w string) bool {
	if len(p.s)-p.pos < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if p.s[p.pos+i]|0x20 != w[i] {
			return false
		}
	}
	p.pos += len(w)
	return true
}

func (p *jparser) object(depth int) (*jval, error) {
	p.pos++ // {
	v := &jval{kind: 'o', obj: map[string]*jval{}}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		// '}' right after '{' or (json-c) after a trailing comma.
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		if p.pos >= len(p.s) || (p.s[p.pos] != '"' && p.s[p.pos] != '\'') {
			return nil, p.errorf("want a key")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.s) || p.s[p.pos] != ':' {
			return nil, p.errorf("want ':'")
		}
		p.pos++
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.obj[k] = val
		if err := p.space(); err != nil {
			return nil, err
		}
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
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		// ']' right after '[' or (json-c) after a trailing comma.
		if p.pos < len(p.s) && p.s[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, e)
		if err := p.space(); err != nil {
			return nil, err
		}
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

// string reads a string in double or (json-c) single quotes. Raw control
// characters are kept as json-c keeps them; a NUL byte is refused.
func (p *jparser) string() (string, error) {
	q := p.s[p.pos]
	p.pos++
	var out []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return string(out), nil
		case c == 0:
			return "", p.errorf("NUL byte in a string")
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
					if len(p.s)-p.pos >= 2 && p.s[p.pos] == '\\' && p.s[p.pos+1] == 'u' {
						p.pos += 2
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

// number reads a number as json-c does outside strict mode: digits with at
// most one '.', one exponent and signs where they may start; "007", "1."
// and "-.5" are numbers, a trailing e/E/+/- is dropped, "-" alone is not;
// "-Infinity" is NaN's kind of number. Integers (no '.' or exponent) keep
// their text.
func (p *jparser) number() (*jval, error) {
	start := p.pos
	isDouble, isExp := false, false
	negOK, posOK := true, false
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		ok := c >= '0' && c <= '9' || (!isExp && (c == 'e' || c == 'E')) || (negOK && c == '-') || (posOK && c == '+') || (!isDouble && c == '.')
		if !ok {
			break
		}
		negOK, posOK = false, false
		switch c {
		case '.':
			isDouble, negOK, posOK = true, true, true
		case 'e', 'E':
			isExp, isDouble, negOK, posOK = true, true, true, true
		}
		p.pos++
	}
	if p.pos-start == 1 && p.s[start] == '-' && p.lit("infinity") {
		return &jval{kind: 'n', str: "NaN"}, nil
	}
	if p.pos < len(p.s) {
		switch c := p.s[p.pos]; c {
		case ',', ']', '}', '/', ' ', '\t', '\n', '\r':
		default:
			if c != 0 {
				return nil, p.errorf("bad number")
			}
		}
	}
	text := string(p.s[start:p.pos])
	if isDouble {
		for len(text) > 1 && strings.ContainsRune("eE+-", rune(text[len(text)-1])) {
			text = text[:len(text)-1]
		}
		if _, err := strconv.ParseFloat(text, 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, p.errorf("bad number %q", text)
		}
		if !strings.ContainsAny(text, ".eE") {
			text += "." // still a double for the validation
		}
		return &jval{kind: 'n', str: text}, nil
	}
	if _, err := strconv.ParseInt(text, 10, 64); err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, p.errorf("bad number %q", text)
	}
	return &jval{kind: 'n', str: text}, nil
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
