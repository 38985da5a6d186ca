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

// Redacted returns the command line with the values of secret-looking
// parameters (romboot.*key*, *pass*, *secret*) replaced by "<redacted>".
func (p Params) Redacted() string {
	out := make([]string, len(p.keys))
	for i, k := range p.keys {
		v := p.vals[i]
		lk := strings.ToLower(k)
		if v != "" && (strings.Contains(lk, "key") || strings.Contains(lk, "pass") || strings.Contains(lk, "secret")) {
			v = "<redacted>"
		}
		if !p.eq[i] {
			out[i] = k
			continue
		}
		if strings.ContainsAny(v, " \t") {
			v = `"` + v + `"`
		}
		out[i] = k + "=" + v
	}
	return strings.Join(out, " ")
}
