package diag

import "strings"

// secretName says whether a parameter's name looks like it carries a
// secret: a key, a passphrase, a token, credentials. Keyboard layouts are
// not keys.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, benign := range []string{"keymap", "keyboard", "keytable", "keylayout"} {
		n = strings.ReplaceAll(n, benign, "")
	}
	for _, s := range []string{"key", "pass", "secret", "token", "pwd", "cred"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// Redact replaces the values of secret-looking name=value words anywhere in
// s with "<redacted>": a command line, the kernel's "Kernel command line:"
// message, a log line quoting an edited command line (Go's %q form, with
// \" inside, included). A quoted value is redacted up to its closing quote.
func Redact(s string) string {
	if strings.IndexByte(s, '=') < 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		j := i
		for j > 0 && nameByte(s[j-1]) {
			j--
		}
		if j == i || !secretName(s[j:i]) {
			continue
		}
		start, end := i+1, i+1
		switch {
		case strings.HasPrefix(s[start:], `\"`):
			end = start + 2
			if k := strings.Index(s[end:], `\"`); k >= 0 {
				end += k + 2
			} else {
				end = len(s)
			}
		case strings.HasPrefix(s[start:], `"`):
			end = start + 1
			if k := strings.IndexByte(s[end:], '"'); k >= 0 {
				end += k + 1
			} else {
				end = len(s)
			}
		default:
			for end < len(s) && s[end] != ' ' && s[end] != '\t' && s[end] != '\n' && s[end] != '"' && s[end] != '\\' {
				end++
			}
		}
		if end == start {
			continue // an empty value hides nothing
		}
		b.WriteString(s[last:start])
		b.WriteString("<redacted>")
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
