package bootentry

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strings"
)

// The GRUB script grammar, as GRUB's own lexer and parser read it: commands
// separated by newlines or ';'; words with '…', "…" and \ quoting and $var,
// ${var}, $1…$N, $#, $@, $* and $? references; '{' and '}' are tokens
// wherever they stand outside quotes and ${…}; comments start a token with
// '#'; if/elif/else/fi, for … in … do … done, while/until … do … done,
// function NAME { … } and menuentry/submenu … { … } blocks.

type tokKind uint8

const (
	tWord tokKind = iota
	tSep          // newline or ';'
	tLBrace
	tRBrace
	tEOF
)

type token struct {
	kind tokKind
	text string // raw, quotes intact (tWord)
	line int
}

// maxTokens bounds the tokens of one file.
const maxTokens = 1 << 20

// lexGrub splits src into tokens.
func lexGrub(src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		if len(toks) > maxTokens {
			return nil, fmt.Errorf("more than %d words", maxTokens)
		}
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2 // line continuation
			line++
		case c == '\n' || c == ';':
			toks = append(toks, token{kind: tSep, line: line})
			if c == '\n' {
				line++
			}
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '{':
			toks = append(toks, token{kind: tLBrace, line: line})
			i++
		case c == '}':
			toks = append(toks, token{kind: tRBrace, line: line})
			i++
		default:
			start, startLine := i, line
			var err error
			i, line, err = lexWord(src, i, line)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tWord, text: src[start:i], line: startLine})
		}
	}
	return append(toks, token{kind: tEOF, line: line}), nil
}

// lexWord returns the end of the word starting at src[i].
func lexWord(src string, i, line int) (int, int, error) {
	for i < len(src) {
		c := src[i]
		switch c {
		case ' ', '\t', '\r', '\n', ';', '{', '}':
			return i, line, nil
		case '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return 0, 0, fmt.Errorf("line %d: unterminated '", line)
			}
			line += strings.Count(src[i:i+end+2], "\n")
			i += end + 2
		case '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return 0, 0, fmt.Errorf("line %d: unterminated \"", line)
			}
			line += strings.Count(src[i:j+1], "\n")
			i = j + 1
		case '\\':
			if i+1 < len(src) && src[i+1] == '\n' {
				line++
			}
			i = min(i+2, len(src))
		case '$':
			if i+1 < len(src) && src[i+1] == '{' {
				end := strings.IndexByte(src[i+2:], '}')
				if end < 0 || strings.ContainsAny(src[i+2:i+2+end], " \t\n;") {
					return 0, 0, fmt.Errorf("line %d: unterminated ${", line)
				}
				i += end + 3
				continue
			}
			i++
		default:
			i++
		}
	}
	return i, line, nil
}

type nodeKind uint8

const (
	nCmd nodeKind = iota
	nIf
	nFor
	nWhile
	nUntil
	nMenu // menuentry or submenu: words[0] says which
	nFunc
)

// gnode is one parsed statement.
type gnode struct {
	kind  nodeKind
	words []string // nCmd: the command; nMenu: the command and its arguments; nFunc: the name; nFor: the variable then the list
	body  []gnode
	cond  []gnode // nWhile, nUntil
	arms  []ifArm // nIf
	line  int
}

type ifArm struct {
	cond []gnode // nil for else
	body []gnode
}

type grubParser struct {
	toks []token
	pos  int
}

func parseGrubScript(src string) ([]gnode, error) {
	toks, err := lexGrub(src)
	if err != nil {
		return nil, err
	}
	p := &grubParser{toks: toks}
	nodes, stop, err := p.list(0, nil)
	if err != nil {
		return nil, err
	}
	if stop.kind != tEOF {
		return nil, fmt.Errorf("line %d: unexpected %s", stop.line, describe(stop))
	}
	return nodes, nil
}

func describe(t token) string {
	switch t.kind {
	case tRBrace:
		return "'}'"
	case tLBrace:
		return "'{'"
	case tEOF:
		return "end of file"
	}
	return fmt.Sprintf("%q", t.text)
}

// list parses statements until end of file, a '}' or one of the keywords
// in stops at the start of a command; it returns that token, unconsumed
// except for keywords.
func (p *grubParser) list(depth int, stops []string) ([]gnode, token, error) {
	if depth > maxDepth {
		return nil, token{}, fmt.Errorf("line %d: blocks nested deeper than %d", p.toks[p.pos].line, maxDepth)
	}
	var nodes []gnode
	for {
		t := p.toks[p.pos]
		switch t.kind {
		case tSep:
			p.pos++
			continue
		case tEOF, tRBrace:
			return nodes, t, nil
		case tLBrace:
			return nil, t, fmt.Errorf("line %d: '{' without menuentry, submenu or function", t.line)
		}
		for _, s := range stops {
			if t.text == s {
				p.pos++
				return nodes, t, nil
			}
		}
		n, err := p.statement(depth)
		if err != nil {
			return nil, t, err
		}
		nodes = append(nodes, n)
	}
}

// words collects the words up to the end of the command.
func (p *grubParser) words() []string {
	var w []string
	for p.toks[p.pos].kind == tWord {
		w = append(w, p.toks[p.pos].text)
		p.pos++
	}
	return w
}

func (p *grubParser) skipSeps() {
	for p.toks[p.pos].kind == tSep {
		p.pos++
	}
}

// block parses "{ list }".
func (p *grubParser) block(depth int, what string, line int) ([]gnode, error) {
	if p.toks[p.pos].kind != tLBrace {
		return nil, fmt.Errorf("line %d: %s without '{'", line, what)
	}
	p.pos++
	body, stop, err := p.list(depth+1, nil)
	if err != nil {
		return nil, err
	}
	if stop.kind != tRBrace {
		return nil, fmt.Errorf("line %d: %s: missing '}'", line, what)
	}
	p.pos++
	return body, nil
}

// expect parses a list that must end with one of the keywords.
func (p *grubParser) expect(depth int, line int, what string, stops ...string) ([]gnode, string, error) {
	nodes, stop, err := p.list(depth+1, stops)
	if err != nil {
		return nil, "", err
	}
	if stop.kind != tWord {
		return nil, "", fmt.Errorf("line %d: %s without %s", line, what, strings.Join(stops, "/"))
	}
	return nodes, stop.text, nil
}

func (p *grubParser) statement(depth int) (gnode, error) {
	t := p.toks[p.pos]
	switch t.text {
	case "if":
		p.pos++
		n := gnode{kind: nIf, line: t.line}
		cond, _, err := p.expect(depth, t.line, "if", "then")
		if err != nil {
			return n, err
		}
		for {
			body, kw, err := p.expect(depth, t.line, "if", "elif", "else", "fi")
			if err != nil {
				return n, err
			}
			n.arms = append(n.arms, ifArm{cond: cond, body: body})
			switch kw {
			case "fi":
				return n, nil
			case "elif":
				if cond, _, err = p.expect(depth, t.line, "elif", "then"); err != nil {
					return n, err
				}
			case "else":
				body, _, err := p.expect(depth, t.line, "else", "fi")
				if err != nil {
					return n, err
				}
				n.arms = append(n.arms, ifArm{body: body})
				return n, nil
			}
		}
	case "for":
		p.pos++
		n := gnode{kind: nFor, line: t.line}
		w := p.words()
		if len(w) < 2 || w[1] != "in" {
			return n, fmt.Errorf("line %d: for without NAME in", t.line)
		}
		n.words = append([]string{w[0]}, w[2:]...)
		p.skipSeps()
		if p.toks[p.pos].kind != tWord || p.toks[p.pos].text != "do" {
			return n, fmt.Errorf("line %d: for without do", t.line)
		}
		p.pos++
		body, _, err := p.expect(depth, t.line, "for", "done")
		n.body = body
		return n, err
	case "while", "until":
		p.pos++
		n := gnode{kind: nWhile, line: t.line}
		if t.text == "until" {
			n.kind = nUntil
		}
		cond, _, err := p.expect(depth, t.line, t.text, "do")
		if err != nil {
			return n, err
		}
		n.cond = cond
		n.body, _, err = p.expect(depth, t.line, t.text, "done")
		return n, err
	case "function":
		p.pos++
		w := p.words()
		if len(w) != 1 {
			return gnode{}, fmt.Errorf("line %d: function needs one name", t.line)
		}
		p.skipSeps() // function NAME may have its { on the next line
		body, err := p.block(depth, "function", t.line)
		return gnode{kind: nFunc, words: w, body: body, line: t.line}, err
	}
	// Any command may take a block right after its arguments (GRUB's
	// grammar: word arguments0 block0); menuentry and submenu use it,
	// others ignore it. A menuentry without one registers nothing.
	w := p.words()
	n := gnode{kind: nCmd, words: w, line: t.line}
	if p.toks[p.pos].kind == tLBrace {
		body, err := p.block(depth, w[0], t.line)
		if err != nil {
			return n, err
		}
		n.body = body
		if w[0] == "menuentry" || w[0] == "submenu" {
			n.kind = nMenu
		}
	}
	return n, nil
}
