// Package cmdline parses the kernel command line (/proc/cmdline) the way the
// kernel does: words separated by spaces, double quotes group a value.
package cmdline

import (
	"strings"
)

// Params is a parsed command line, in order.
type Params struct {
	Raw  string
	keys []string
	vals []string
	eq   []bool // the word had an '='
}

// Parse splits a command line into key[=value] words.
func Parse(s string) Params {
	p := Params{Raw: strings.TrimSpace(s)}
	var w strings.Builder
	inQuote, any := false, false
	flush := func() {
		if !any {
			return
		}
		k, v, eq := strings.Cut(w.String(), "=")
		p.keys = append(p.keys, k)
		p.vals = append(p.vals, v)
		p.eq = append(p.eq, eq)
		w.Reset()
		any = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			any = true
		case !inQuote && (c == ' ' || c == '\t' || c == '\n'):
			flush()
		default:
			w.WriteByte(c)
			any = true
		}
	}
	flush()
	return p
}

// Get returns the value of the last occurrence of key.
func (p Params) Get(key string) (string, bool) {
	for i := len(p.keys) - 1; i >= 0; i-- {
		if p.keys[i] == key {
			return p.vals[i], true
		}
	}
	return "", false
}

// Keys returns the keys in order (with repeats).
func (p Params) Keys() []string { return append([]string(nil), p.keys...) }

// IsSecret says whether a parameter's value looks secret (its key names a
// key, pass, secret or token) and must not be shown.
func IsSecret(key string) bool {
	lk := strings.ToLower(key)
	return strings.Contains(lk, "key") || strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token")
}

// Word is one key[=value] word of a command line.
type Word struct {
	Key, Value string
	Eq         bool // the word had an '='
}

// String writes the word back, quoting a value with blanks.
func (w Word) String() string {
	if !w.Eq {
		return w.Key
	}
	v := w.Value
	if strings.ContainsAny(v, " \t") {
		v = `"` + v + `"`
	}
	return w.Key + "=" + v
}

// Words returns the words whose key starts with prefix, in order (all words
// for an empty prefix).
func (p Params) Words(prefix string) []Word {
	var out []Word
	for i, k := range p.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Word{k, p.vals[i], p.eq[i]})
		}
	}
	return out
}

// Redacted returns the command line with the values of secret-looking
// parameters (see IsSecret) replaced by "<redacted>".
func (p Params) Redacted() string {
	out := make([]string, len(p.keys))
	for i, k := range p.keys {
		w := Word{k, p.vals[i], p.eq[i]}
		if w.Value != "" && IsSecret(k) {
			w.Value = "<redacted>"
		}
		out[i] = w.String()
	}
	return strings.Join(out, " ")
}
