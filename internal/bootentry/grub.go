package bootentry

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// The GRUB subset grub-mkconfig and distro scripts emit: commands separated
// by newlines or ';', words with '…', "…" and \ quoting, $var and ${var}
// expansion, name=value and `set` assignments, if/elif/else/fi with `[ … ]`
// tests, menuentry and submenu blocks, function definitions (skipped),
// load_env from grubenv. Everything else (insmod, search, load_video, …) is
// ignored: romboot already knows where /boot is.

const (
	maxCommands = 200000
	maxDepth    = 32
)

// gcmd is one parsed command; a block command (menuentry, submenu, function)
// has its body.
type gcmd struct {
	words []string // raw, quotes intact; expanded when run
	body  []gcmd
	line  int
}

type grubLexer struct {
	src   string
	pos   int
	line  int
	count int
}

var errUnbalanced = errors.New("unbalanced braces")

// parseBlock reads commands until EOF (top) or a lone '}' (inside a block).
func (l *grubLexer) parseBlock(depth int, top bool) ([]gcmd, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: blocks nested deeper than %d", l.line, maxDepth)
	}
	var cmds []gcmd
	for {
		words, end, err := l.command()
		if err != nil {
			return nil, err
		}
		if len(words) > 0 {
			l.count++
			if l.count > maxCommands {
				return nil, fmt.Errorf("more than %d commands", maxCommands)
			}
			if words[0] == "}" {
				if top || len(words) > 1 {
					return nil, fmt.Errorf("line %d: %w", l.line, errUnbalanced)
				}
				return cmds, nil
			}
			c := gcmd{words: words, line: l.line}
			if words[len(words)-1] == "{" {
				c.words = words[:len(words)-1]
				if c.body, err = l.parseBlock(depth+1, false); err != nil {
					return nil, err
				}
			}
			if len(c.words) == 0 {
				return nil, fmt.Errorf("line %d: a block without a command", l.line)
			}
			cmds = append(cmds, c)
		}
		if end {
			if !top {
				return nil, fmt.Errorf("line %d: missing '}': %w", l.line, errUnbalanced)
			}
			return cmds, nil
		}
	}
}

// command reads the words up to a newline, ';' or end of input. A '{' ends
// the command (it opens a block) and a '}' is a command of its own.
func (l *grubLexer) command() (words []string, eof bool, err error) {
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
			flush()
			if len(words) > 0 {
				return words, false, nil
			}
		case c == ';':
			l.pos++
			flush()
			if len(words) > 0 {
				return words, false, nil
			}
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
			flush()
		case c == '#' && !inWord:
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case (c == '{' || c == '}') && !inWord && l.boundary(l.pos+1):
			l.pos++
			if c == '}' && len(words) > 0 {
				l.pos-- // end this command first; '}' comes next
				return words, false, nil
			}
			words = append(words, string(c))
			return words, false, nil
		case c == '\'':
			end := strings.IndexByte(l.src[l.pos+1:], '\'')
			if end < 0 {
				return nil, false, fmt.Errorf("line %d: unterminated '", l.line)
			}
			s := l.src[l.pos : l.pos+end+2]
			l.line += strings.Count(s, "\n")
			w.WriteString(s)
			l.pos += end + 2
			inWord = true
		case c == '"':
			i := l.pos + 1
			for i < len(l.src) && l.src[i] != '"' {
				if l.src[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(l.src) {
				return nil, false, fmt.Errorf("line %d: unterminated \"", l.line)
			}
			s := l.src[l.pos : i+1]
			l.line += strings.Count(s, "\n")
			w.WriteString(s)
			l.pos = i + 1
			inWord = true
		case c == '\\':
			if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\n' {
				l.pos += 2 // line continuation
				l.line++
				continue
			}
			end := min(l.pos+2, len(l.src))
			w.WriteString(l.src[l.pos:end])
			l.pos = end
			inWord = true
		default:
			w.WriteByte(c)
			l.pos++
			inWord = true
		}
	}
	flush()
	return words, true, nil
}

func (l *grubLexer) boundary(i int) bool {
	return i >= len(l.src) || strings.IndexByte(" \t\r\n;", l.src[i]) >= 0
}

// expand removes quotes and substitutes variables in one raw word.
func expand(raw string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '\'':
			end := strings.IndexByte(raw[i+1:], '\'')
			if end < 0 {
				b.WriteString(raw[i+1:])
				return b.String()
			}
			b.WriteString(raw[i+1 : i+1+end])
			i += end + 2
		case '"':
			i++
			for i < len(raw) && raw[i] != '"' {
				switch {
				case raw[i] == '\\' && i+1 < len(raw) && strings.IndexByte("$\"\\", raw[i+1]) >= 0:
					b.WriteByte(raw[i+1])
					i += 2
				case raw[i] == '$':
					i = expandVar(raw, i, vars, &b)
				default:
					b.WriteByte(raw[i])
					i++
				}
			}
			i++
		case '\\':
			if i+1 < len(raw) {
				b.WriteByte(raw[i+1])
			}
			i += 2
		case '$':
			i = expandVar(raw, i, vars, &b)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// expandVar writes the value of the variable at raw[i] ('$') and returns the
// index after it.
func expandVar(raw string, i int, vars map[string]string, b *strings.Builder) int {
	j := i + 1
	if j < len(raw) && raw[j] == '{' {
		end := strings.IndexByte(raw[j:], '}')
		if end < 0 {
			b.WriteString(raw[i:])
			return len(raw)
		}
		b.WriteString(vars[raw[j+1:j+end]])
		return j + end + 1
	}
	if j < len(raw) && (raw[j] == '#' || raw[j] == '?') {
		j++
	} else {
		for j < len(raw) && (isAlnum(raw[j]) || raw[j] == '_') {
			j++
		}
	}
	if j == i+1 {
		b.WriteByte('$')
		return j
	}
	b.WriteString(vars[raw[i+1:j]])
	return j
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// grubRun executes a parsed grub.cfg to collect its menu.
type grubRun struct {
	fsys     fs.FS
	prefix   string // directory of grub.cfg inside fsys
	source   string
	vars     map[string]string
	exported map[string]bool
	funcs    map[string][]gcmd
	entries  []Entry
	steps    int
	calls    int
	// nextEntry is grubenv's next_entry, set aside (Menu.NextEntry).
	nextEntry string
}

// entryState collects a menuentry's kernel and initrds while its body runs.
type entryState struct {
	kernel  string
	args    []string
	initrds []string
}

func parseGrub(fsys fs.FS, cfgPath string, data []byte) (*Menu, error) {
	l := &grubLexer{src: string(data), line: 1}
	cmds, err := l.parseBlock(0, true)
	if err != nil {
		return nil, err
	}
	r := &grubRun{
		fsys:   fsys,
		prefix: path.Dir(cfgPath),
		source: "grub:/" + cfgPath,
		vars: map[string]string{
			// What GRUB itself defines, as the generated scripts test it.
			"feature_menuentry_id":         "y",
			"feature_default_font_path":    "y",
			"feature_all_video_module":     "y",
			"feature_timeout_style":        "y",
			"feature_platform_search_hint": "y",
			"grub_platform":                "pc",
			"grub_cpu":                     "i386",
			"prefix":                       "/" + path.Dir(cfgPath),
			"config_directory":             "/" + path.Dir(cfgPath),
			"root":                         "",
		},
		// GRUB runs a menu entry in a new context holding only the
		// exported variables (root and prefix are exported by GRUB).
		exported: map[string]bool{"root": true, "prefix": true, "config_directory": true},
		funcs:    map[string][]gcmd{},
	}
	for k := range r.vars {
		if strings.HasPrefix(k, "feature_") || strings.HasPrefix(k, "grub_") {
			r.exported[k] = true
		}
	}
	var idx []int
	r.run(cmds, nil, &idx, nil, 0)
	m := &Menu{Entries: r.entries, Timeout: -1, NextEntry: r.nextEntry}
	if t, err := strconv.Atoi(strings.TrimSpace(r.vars["timeout"])); err == nil {
		m.Timeout = t
	}
	m.Default = r.pick(r.vars["default"])
	return m, nil
}

// pick resolves a GRUB default: an index path ("1>2"), an id or a title
// (also as "Submenu title>Entry title").
func (r *grubRun) pick(def string) int {
	def = strings.TrimSpace(def)
	if def == "" {
		return 0
	}
	parts := strings.Split(def, ">")
	var want []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			want = nil
			break
		}
		want = append(want, n)
	}
	for i, e := range r.entries {
		if want != nil && equalInts(e.index, want) {
			return i
		}
	}
	for i, e := range r.entries {
		if e.ID == def || e.Title == def || strings.ReplaceAll(e.Title, " > ", ">") == def {
			return i
		}
	}
	// The last component may name an entry inside a submenu by id.
	last := parts[len(parts)-1]
	for i, e := range r.entries {
		if e.ID != "" && e.ID == last {
			return i
		}
	}
	return 0
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// run executes cmds. titles is the submenu path; idx counts menu items at
// this level; entry is non-nil inside a menuentry body.
func (r *grubRun) run(cmds []gcmd, titles []string, idx *[]int, entry *entryState, depth int) {
	level := 0
	for i := 0; i < len(cmds); i++ {
		r.steps++
		if r.steps > maxCommands || depth > maxDepth {
			return
		}
		c := cmds[i]
		name := expand(c.words[0], r.vars)
		switch {
		case name == "if":
			end, branches := r.ifBranches(cmds, i)
			for _, br := range branches {
				if br.cond == nil || r.test(br.cond) {
					r.run(br.body, titles, idx, entry, depth+1)
					break
				}
			}
			i = end
		case name == "menuentry" || name == "submenu":
			title, id := r.entryTitle(c.words[1:])
			here := append(append([]int(nil), (*idx)...), level)
			level++
			full := append(append([]string(nil), titles...), title)
			if name == "submenu" {
				r.run(c.body, full, &here, nil, depth+1)
				continue
			}
			saved := r.vars
			r.vars = r.entryContext()
			st := &entryState{}
			r.run(c.body, full, idx, st, depth+1)
			r.vars = saved
			r.entries = append(r.entries, Entry{
				Title:   strings.Join(full, " > "),
				ID:      id,
				Kernel:  st.kernel,
				Initrds: st.initrds,
				Cmdline: strings.Join(st.args, " "),
				Source:  r.source,
				index:   here,
			})
		case name == "function":
			if len(c.words) > 1 {
				r.funcs[expand(c.words[1], r.vars)] = c.body
			}
		case name == "export":
			for _, w := range r.expandAll(c.words[1:]) {
				r.exported[w] = true
			}
		case r.funcs[name] != nil:
			r.call(name, r.expandAll(c.words[1:]), titles, idx, entry, depth)
		case name == "set" && len(c.words) > 1:
			r.assign(expand(c.words[1], r.vars))
		case strings.Contains(name, "=") && !strings.HasPrefix(name, "="):
			r.assign(name)
		case name == "blscfg":
			r.blscfg(&level, idx)
		case name == "load_env":
			r.loadEnv(c.words[1:])
		case entry != nil && (name == "linux" || name == "linux16" || name == "linuxefi"):
			args := r.expandAll(c.words[1:])
			if len(args) > 0 {
				entry.kernel, entry.args = args[0], args[1:]
			}
		case entry != nil && (name == "initrd" || name == "initrd16" || name == "initrdefi"):
			entry.initrds = r.expandAll(c.words[1:])
		}
	}
}

// entryContext is the variables a menu entry's body sees: the exported ones.
func (r *grubRun) entryContext() map[string]string {
	c := make(map[string]string, len(r.exported))
	for k := range r.exported {
		if v, ok := r.vars[k]; ok {
			c[k] = v
		}
	}
	return c
}

// maxCalls bounds function calls (a recursive function must not hang us).
const maxCalls = 10000

// call runs a function defined in the file with its positional parameters;
// GRUB functions share the caller's variables.
func (r *grubRun) call(name string, args []string, titles []string, idx *[]int, entry *entryState, depth int) {
	r.calls++
	if r.calls > maxCalls {
		return
	}
	saved := map[string]string{}
	for i := 1; i <= 9; i++ {
		k := strconv.Itoa(i)
		saved[k] = r.vars[k]
		r.vars[k] = ""
		if i <= len(args) {
			r.vars[k] = args[i-1]
		}
	}
	saved["#"] = r.vars["#"]
	r.vars["#"] = strconv.Itoa(len(args))
	r.run(r.funcs[name], titles, idx, entry, depth+1)
	for k, v := range saved {
		r.vars[k] = v
	}
}

func (r *grubRun) expandAll(words []string) []string {
	out := make([]string, 0, len(words))
	for _, w := range words {
		if s := expand(w, r.vars); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *grubRun) assign(kv string) {
	k, v, _ := strings.Cut(kv, "=")
	if k != "" {
		r.vars[k] = v
	}
}

// entryTitle returns the title and --id of a menuentry's arguments.
func (r *grubRun) entryTitle(words []string) (title, id string) {
	args := r.expandAll(words)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--id" || a == "--class" || a == "--users" || a == "--hotkey":
			if i+1 < len(args) {
				if a == "--id" {
					id = args[i+1]
				}
				i++
			}
		case strings.HasPrefix(a, "--id="):
			id = strings.TrimPrefix(a, "--id=")
		case strings.HasPrefix(a, "--"):
		case title == "":
			title = a
		}
	}
	return title, id
}

type branch struct {
	cond []string // nil for else
	body []gcmd
}

// ifBranches splits if … then … elif … else … fi starting at cmds[i] and
// returns the index of the "fi" and the branches.
func (r *grubRun) ifBranches(cmds []gcmd, i int) (int, []branch) {
	var brs []branch
	cur := branch{cond: cmds[i].words[1:]}
	depth := 0
	inBody := false
	for j := i + 1; j < len(cmds); j++ {
		w := cmds[j].words
		switch {
		case w[0] == "if":
			depth++
		case w[0] == "fi" && depth > 0:
			depth--
		case depth == 0 && w[0] == "then":
			inBody = true
			if len(w) > 1 {
				cur.body = append(cur.body, gcmd{words: w[1:], body: cmds[j].body, line: cmds[j].line})
			}
			continue
		case depth == 0 && (w[0] == "elif" || w[0] == "else"):
			brs = append(brs, cur)
			cur = branch{}
			if w[0] == "elif" {
				cur.cond = w[1:]
				inBody = false
			} else {
				inBody = true
				if len(w) > 1 {
					cur.body = append(cur.body, gcmd{words: w[1:], body: cmds[j].body, line: cmds[j].line})
				}
			}
			continue
		case depth == 0 && w[0] == "fi":
			return j, append(brs, cur)
		}
		if inBody {
			cur.body = append(cur.body, cmds[j])
		} else if cur.cond != nil {
			cur.cond = append(cur.cond, w...) // a condition spanning commands
		}
	}
	return len(cmds), append(brs, cur) // unterminated if: run what we have
}

// test evaluates an if condition: `[ … ]`/`test …`, or a command, which is
// false unless it is one romboot knows succeeds (search, true).
func (r *grubRun) test(cond []string) bool {
	args := r.expandAllKeepEmpty(cond)
	if len(args) == 0 {
		return false
	}
	neg := false
	if args[0] == "!" {
		neg, args = true, args[1:]
	}
	if len(args) == 0 {
		return neg
	}
	var res bool
	switch args[0] {
	case "[":
		if len(args) > 1 && args[len(args)-1] == "]" {
			args = args[1 : len(args)-1]
		} else {
			args = args[1:]
		}
		res = r.evalTest(args)
	case "test":
		res = r.evalTest(args[1:])
	case "true", "search":
		res = true
	default:
		res = false
	}
	return res != neg
}

func (r *grubRun) expandAllKeepEmpty(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = expand(w, r.vars)
	}
	return out
}

func (r *grubRun) evalTest(a []string) bool {
	if len(a) > 0 && a[0] == "!" {
		return !r.evalTest(a[1:])
	}
	switch len(a) {
	case 0:
		return false
	case 1:
		return a[0] != ""
	case 2:
		switch a[0] {
		case "-n":
			return a[1] != ""
		case "-z":
			return a[1] == ""
		case "-e", "-f", "-s", "-d":
			p := strings.TrimPrefix(Resolve(r.fsys, a[1]), "/")
			st, err := fs.Stat(r.fsys, p)
			if err != nil {
				return false
			}
			switch a[0] {
			case "-s":
				return st.Size() > 0
			case "-d":
				return st.IsDir()
			case "-f":
				return st.Mode().IsRegular()
			}
			return true
		}
	case 3:
		switch a[1] {
		case "=", "==":
			return a[0] == a[2]
		case "!=":
			return a[0] != a[2]
		case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
			x, err1 := strconv.Atoi(a[0])
			y, err2 := strconv.Atoi(a[2])
			if err1 != nil || err2 != nil {
				return false
			}
			return map[string]bool{"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[a[1]]
		}
	}
	return false
}

// blscfg adds the Boot Loader Spec entries as menu entries, as Fedora's and
// RHEL's GRUB does, expanding $variables in their options.
func (r *grubRun) blscfg(level *int, idx *[]int) {
	dir := "loader/entries"
	if _, err := fs.Stat(r.fsys, dir); err != nil {
		dir = "boot/loader/entries"
	}
	for _, b := range readBLS(r.fsys, dir, r.vars) {
		e := b.entry(r.source + " (blscfg " + dir + "/" + b.id + ".conf)")
		e.index = append(append([]int(nil), (*idx)...), *level)
		*level++
		r.entries = append(r.entries, e)
	}
}

// loadEnv reads the grubenv block next to grub.cfg (or the file given with
// -f) into the variables.
func (r *grubRun) loadEnv(args []string) {
	file := path.Join(r.prefix, "grubenv")
	words := r.expandAll(args)
	for i := 0; i < len(words); i++ {
		if (words[i] == "-f" || words[i] == "--file") && i+1 < len(words) {
			file = strings.TrimPrefix(Resolve(r.fsys, words[i+1]), "/")
			i++
		}
	}
	data, err := readBounded(r.fsys, file)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			if k == "next_entry" {
				// grub-reboot's one-time entry: GRUB clears it with
				// save_env, which a read-only /boot cannot do, so it
				// would become permanent. Reported, not followed.
				r.nextEntry = v
				continue
			}
			r.vars[k] = v
		}
	}
}
