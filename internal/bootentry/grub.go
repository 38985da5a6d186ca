package bootentry

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// grub.cfg is a program: romboot runs it the way GRUB's normal mode does,
// with the commands that decide the menu, and ignores the rest (insmod,
// search, load_video, …: romboot already knows where /boot is).
//
// Timing follows GRUB. The file runs to its end first: menuentry and
// submenu only register their entries (title and options expanded then).
// An entry's body runs when it is chosen, in the context the file left:
// every variable set anywhere in the file, with its final value, and the
// entry's arguments as $1 (the title), $2, … A submenu's body runs when the
// submenu is entered, in a new context holding only the exported variables.
// romboot runs every body to learn each entry's kernel, initrds and
// command line, each on its own copy of the context.

const (
	maxSteps     = 50000   // commands run, over everything
	maxDepth     = 32      // blocks, function calls and source files nested
	maxSources   = 8       // source/configfile nested
	maxValue     = 1 << 20 // bytes in one variable
	maxExpansion = 1 << 24 // bytes produced by expanding words, over everything
	maxEntries   = 1024    // menu entries
	maxEntryRun  = 2000    // commands one entry body may run
	maxTotal     = 200000  // commands run in all, entry bodies included
)

var errLimit = errors.New("resource limit")

// genv is a variable context. An entry body runs on an overlay whose reads
// fall through to the context the file left.
type genv struct {
	vars     map[string]string
	exported map[string]bool
	parent   *genv
}

func newEnv(parent *genv) *genv {
	return &genv{vars: map[string]string{}, exported: map[string]bool{}, parent: parent}
}

func (e *genv) get(k string) (string, bool) {
	for ; e != nil; e = e.parent {
		if v, ok := e.vars[k]; ok {
			return v, true
		}
	}
	return "", false
}

func (e *genv) isExported(k string) bool {
	for ; e != nil; e = e.parent {
		if x, ok := e.exported[k]; ok {
			return x
		}
	}
	return false
}

// exports copies the exported variables into a new context (GRUB's
// grub_env_context_open).
func (e *genv) exports() *genv {
	n := newEnv(nil)
	var chain []*genv
	for c := e; c != nil; c = c.parent {
		chain = append(chain, c)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, x := range chain[i].exported {
			n.exported[k] = x
		}
	}
	for k, x := range n.exported {
		if !x {
			delete(n.exported, k)
			continue
		}
		if v, ok := e.get(k); ok {
			n.vars[k] = v
		}
	}
	return n
}

// gmenu is a menu being built: what menuentry, submenu and blscfg register.
type gmenu struct {
	items []*gitem
}

type gitem struct {
	submenu  bool
	title    string
	id       string
	params   []string // $1 (the title), $2, …
	body     []gnode
	env      *genv // the context it was registered in
	prefix   string
	broken   string // why the entry cannot boot, known when registered
	children []*gitem
}

// scope is what a running command sees.
type scope struct {
	env    *genv
	params []string
	menu   *gmenu      // where menuentry registers; nil inside an entry body
	entry  *entryState // non-nil inside an entry body
	dir    string      // directory of the file being run, inside fsys
	depth  int
	source int
}

// entryState collects a menuentry's kernel and initrds while its body runs.
type entryState struct {
	kernel  string
	args    []string
	initrds []string
	other   string // a non-Linux loader the entry uses (chainloader, …)
}

type ctl uint8

const (
	ctlNone ctl = iota
	ctlReturn
	ctlBreak
	ctlContinue
)

// grubRun executes a grub.cfg.
type grubRun struct {
	fsys     fs.FS
	source   string
	funcs    map[string][]gnode
	steps    int
	limit    int // steps allowed: maxSteps, or what an entry body may use
	total    int // steps over everything
	expanded int
	entries  int
	ctl      ctl
	loops    int // break/continue count
	inLoop   int // loops running: break/continue outside one do nothing
	inFunc   int // functions running: return outside one fails
	// nextEntry is grubenv's next_entry (grub-reboot), set aside: GRUB
	// clears it with save_env, which a read-only /boot cannot do, so
	// following it would make a one-time choice permanent (Menu.NextEntry).
	nextEntry string
}

func parseGrub(fsys fs.FS, cfgPath string, data []byte) (*Menu, error) {
	nodes, err := parseGrubScript(string(data))
	if err != nil {
		return nil, err
	}
	dir := path.Dir(cfgPath)
	r := &grubRun{fsys: fsys, source: "grub:/" + cfgPath, funcs: map[string][]gnode{}, limit: maxSteps}
	env := newEnv(nil)
	// What GRUB itself defines, as the generated scripts test it.
	for _, kv := range []string{
		"feature_menuentry_id=y", "feature_default_font_path=y", "feature_all_video_module=y",
		"feature_timeout_style=y", "feature_platform_search_hint=y", "feature_200_final=y",
		"feature_nativedisk_cmd=y", "grub_platform=pc", "grub_cpu=i386", "root=",
		"prefix=/" + dir, "config_directory=/" + dir, "cmdpath=/" + dir, "config_file=/" + cfgPath,
	} {
		k, v, _ := strings.Cut(kv, "=")
		env.vars[k] = v
		env.exported[k] = true
	}
	top := &gmenu{}
	sc := &scope{env: env, menu: top, dir: dir}
	if _, err := r.exec(nodes, sc); err != nil {
		return nil, err
	}
	r.ctl = ctlNone
	m := &Menu{Timeout: -1, NextEntry: r.nextEntry}
	if err := r.finish(top, nil, nil, m); err != nil {
		return nil, err
	}
	if t, ok := env.get("timeout"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(t)); err == nil {
			m.Timeout = n
		}
	}
	def, _ := env.get("default")
	m.Default = pickGrub(m.Entries, def)
	return m, nil
}

// finish runs the bodies of a finished menu's entries and enters its
// submenus, appending the entries to m in menu order.
func (r *grubRun) finish(g *gmenu, titles []string, index []int, m *Menu) error {
	for pos, it := range g.items {
		full := append(append([]string(nil), titles...), it.title)
		here := append(append([]int(nil), index...), pos)
		if it.submenu {
			sub := it.env.exports()
			inner := &gmenu{}
			r.steps, r.limit = 0, maxSteps
			sc := &scope{env: sub, params: it.params, menu: inner, dir: it.prefix}
			r.ctl = ctlNone
			if _, err := r.exec(it.body, sc); err != nil {
				return err
			}
			if err := r.finish(inner, full, here, m); err != nil {
				return err
			}
			continue
		}
		// An entry body runs on its own budget: one that loops is
		// broken, the others still boot (GRUB hangs only when it is
		// chosen).
		st := &entryState{}
		broken := it.broken
		if it.body != nil {
			overlay := newEnv(it.env)
			r.ctl = ctlNone
			overlay.vars["chosen"] = strings.Join(full, ">")
			sc := &scope{env: overlay, params: it.params, entry: st, dir: it.prefix}
			r.steps, r.limit = 0, maxEntryRun
			if _, err := r.exec(it.body, sc); err != nil {
				if !errors.Is(err, errLimit) || r.expanded > maxExpansion || r.total > maxTotal {
					return err
				}
				broken = "its GRUB commands stop at a " + err.Error()
			}
			r.ctl = ctlNone
		}
		e := Entry{
			Title:   strings.Join(full, " > "),
			ID:      it.id,
			Kernel:  st.kernel,
			Initrds: st.initrds,
			Cmdline: grubCmdline(st.args),
			Source:  r.source,
			Broken:  broken,
			index:   here,
		}
		if st.kernel == "" && st.other != "" && e.Broken == "" {
			e.Broken = st.other + " entry: not a Linux kernel"
		}
		m.Entries = append(m.Entries, e)
	}
	return nil
}

// grubCmdline joins the linux command's arguments as GRUB's loader does:
// an argument holding a space is put in double quotes, and a double quote
// or backslash inside it is escaped, so the kernel reads it back as one.
func grubCmdline(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if !strings.ContainsAny(a, " \t") {
			b.WriteString(a)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(a); j++ {
			if a[j] == '"' || a[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(a[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// pickGrub resolves GRUB's default: a menu position path ("1>2"), an id or
// a title, each step of a path naming a submenu ('>' inside a title is
// written '>>').
func pickGrub(entries []Entry, def string) int {
	def = strings.TrimSpace(def)
	if def == "" {
		return 0
	}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(def); i++ {
		if def[i] == '>' {
			if i+1 < len(def) && def[i+1] == '>' {
				cur.WriteByte('>')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(def[i])
	}
	parts = append(parts, cur.String())
	var want []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			want = nil
			break
		}
		want = append(want, n)
	}
	for i, e := range entries {
		if want != nil && equalInts(e.index, want) {
			return i
		}
	}
	joined := strings.Join(parts, " > ")
	for i, e := range entries {
		if e.ID == def || e.Title == joined {
			return i
		}
	}
	// The last step may name an entry inside a submenu by id.
	last := parts[len(parts)-1]
	for i, e := range entries {
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

// exec runs statements; ok is the status of the last command.
func (r *grubRun) exec(nodes []gnode, sc *scope) (bool, error) {
	ok := true
	if sc.depth > maxDepth {
		return false, fmt.Errorf("%w: blocks, functions and files nested deeper than %d", errLimit, maxDepth)
	}
	for i := range nodes {
		if r.ctl != ctlNone {
			return ok, nil
		}
		r.steps++
		r.total++
		if r.steps > r.limit || r.total > maxTotal {
			return false, fmt.Errorf("%w: more than %d commands run (a loop or recursion without end?)", errLimit, min(r.limit, maxTotal))
		}
		n := &nodes[i]
		var err error
		switch n.kind {
		case nIf:
			ok = true
			for _, arm := range n.arms {
				run := true
				if arm.cond != nil {
					if run, err = r.exec(arm.cond, sc); err != nil {
						return false, err
					}
				}
				if run {
					ok, err = r.exec(arm.body, sc)
					break
				}
			}
		case nFor:
			r.inLoop++
			var list []string
			if list, err = r.expandAll(n.words[1:], sc); err != nil {
				return false, err
			}
			ok = true
			for _, v := range list {
				if err = r.set(sc, n.words[0], v); err != nil {
					return false, err
				}
				if ok, err = r.exec(n.body, sc); err != nil {
					return false, err
				}
				if r.loopCtl() {
					break
				}
			}
			r.inLoop--
		case nWhile, nUntil:
			r.inLoop++
			ok = true
			for {
				var c bool
				if c, err = r.exec(n.cond, sc); err != nil {
					return false, err
				}
				if c != (n.kind == nWhile) {
					break
				}
				if ok, err = r.exec(n.body, sc); err != nil {
					return false, err
				}
				if r.loopCtl() {
					break
				}
				r.steps++
				if r.steps > r.limit {
					return false, fmt.Errorf("%w: more than %d commands run (a loop without end?)", errLimit, r.limit)
				}
			}
			r.inLoop--
		case nFunc:
			r.funcs[n.words[0]] = n.body
		case nMenu:
			ok, err = r.register(n, sc)
		case nCmd:
			ok, err = r.command(n, sc)
		}
		if err != nil {
			return false, err
		}
	}
	return ok, nil
}

// loopCtl consumes a break or continue at the end of a loop iteration and
// says whether the loop ends.
func (r *grubRun) loopCtl() bool {
	switch r.ctl {
	case ctlBreak:
		r.loops--
		if r.loops <= 0 {
			r.ctl, r.loops = ctlNone, 0
		}
		return true
	case ctlContinue:
		r.ctl = ctlNone
	case ctlReturn:
		return true
	}
	return false
}

// register handles menuentry and submenu: the options and title are
// expanded now, the body runs later.
func (r *grubRun) register(n *gnode, sc *scope) (bool, error) {
	args, err := r.expandAll(n.words[1:], sc)
	if err != nil {
		return false, err
	}
	if sc.menu == nil {
		return true, nil // a menuentry inside an entry body: not in the menu we show
	}
	r.entries++
	if r.entries > maxEntries {
		return false, fmt.Errorf("%w: more than %d menu entries", errLimit, maxEntries)
	}
	it := &gitem{submenu: n.words[0] == "submenu", body: n.body, prefix: sc.dir, env: sc.env}
	if it.body == nil {
		it.body = []gnode{}
	}
	var params []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			params = append(params, args[i+1:]...)
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--class", "--users", "--hotkey", "--id", "--source":
			// A long option with a value takes the next argument when
			// it has no "=", even an empty one (GRUB's argument parser).
			if !hasVal {
				if i+1 >= len(args) {
					return true, nil // GRUB: "missing mandatory option", no entry
				}
				i++
				val = args[i]
			}
			if name == "--id" {
				it.id = val
			}
			continue
		case "--unrestricted":
			continue
		}
		if strings.HasPrefix(a, "--") {
			return true, nil // GRUB: "unknown argument", no entry
		}
		params = append(params, a)
	}
	if len(params) == 0 {
		return true, nil // GRUB refuses an entry without a title
	}
	it.title = params[0]
	it.params = params
	sc.menu.items = append(sc.menu.items, it)
	return true, nil
}

// command runs one simple command.
func (r *grubRun) command(n *gnode, sc *scope) (bool, error) {
	// name=value is an assignment when the name is a plain identifier.
	if k, v, ok := strings.Cut(n.words[0], "="); ok && len(n.words) == 1 && isName(k) {
		val, err := r.expandJoined(v, sc)
		if err != nil {
			return false, err
		}
		return true, r.set(sc, k, val)
	}
	argv, err := r.expandAll(n.words, sc)
	if err != nil {
		return false, err
	}
	if len(argv) == 0 {
		return true, nil
	}
	name, args := argv[0], argv[1:]
	if body, ok := r.funcs[name]; ok {
		return r.call(body, args, sc)
	}
	switch name {
	case "set":
		if len(args) == 0 {
			return true, nil
		}
		k, v, _ := strings.Cut(args[0], "=")
		if !isName(k) {
			return false, nil
		}
		return true, r.set(sc, k, v)
	case "unset":
		for _, k := range args {
			sc.env.vars[k] = ""
			delete(sc.env.vars, k)
			if sc.env.parent != nil {
				sc.env.vars[k] = "" // hide the parent's value
			}
		}
	case "export":
		for _, k := range args {
			sc.env.exported[k] = true
		}
	case "setparams":
		sc.params = append([]string(nil), args...)
	case "shift":
		k := 1
		if len(args) > 0 {
			if v, err := strconv.Atoi(args[0]); err == nil && v >= 0 {
				k = v
			}
		}
		if k > len(sc.params) {
			return false, nil
		}
		sc.params = sc.params[k:]
	case "return":
		if r.inFunc == 0 {
			return false, nil
		}
		r.ctl = ctlReturn
		return len(args) == 0 || args[0] == "0", nil
	case "break", "continue":
		if r.inLoop == 0 {
			return true, nil
		}
		r.ctl, r.loops = ctlBreak, 1
		if name == "continue" {
			r.ctl = ctlContinue
		}
		if len(args) > 0 {
			if v, err := strconv.Atoi(args[0]); err == nil && v > 0 {
				r.loops = v
			}
		}
	case "true", ":":
	case "false":
		return false, nil
	case "[", "test":
		// GRUB drops a final "]" for both and requires it for neither.
		if len(args) > 0 && args[len(args)-1] == "]" {
			args = args[:len(args)-1]
		}
		return r.test(args), nil
	case "source", ".", "configfile":
		if len(args) == 0 {
			return false, nil
		}
		return r.sourceFile(name, args[0], sc)
	case "load_env":
		return r.loadEnv(args, sc)
	case "blscfg", "bls_import":
		return true, r.blscfg(sc)
	case "linux", "linux16", "linuxefi":
		if sc.entry != nil && len(args) > 0 {
			sc.entry.kernel = absolute(args[0])
			sc.entry.args = args[1:]
		}
	case "initrd", "initrd16", "initrdefi":
		if sc.entry != nil {
			sc.entry.initrds = nil
			for _, a := range args {
				if !strings.HasPrefix(a, "--") {
					sc.entry.initrds = append(sc.entry.initrds, absolute(a))
				}
			}
		}
	case "chainloader", "multiboot", "multiboot2", "kfreebsd", "knetbsd", "kopenbsd", "appleloader", "legacy_kernel", "xnu_kernel", "xnu_kernel64", "ntldr", "freedos", "plan9", "truecrypt":
		if sc.entry != nil {
			sc.entry.other = name
		}
	case "keystatus":
		return false, nil // no key is held down
	}
	return true, nil
}

// absolute keeps GRUB paths as written: they are relative to the device
// root, so a path without a leading / or device is made absolute.
func absolute(p string) string {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "(") {
		return p
	}
	return "/" + p
}

// call runs a function with its own positional parameters; variables are
// shared with the caller, as in GRUB.
func (r *grubRun) call(body []gnode, args []string, sc *scope) (bool, error) {
	inner := *sc
	inner.params = args
	inner.depth = sc.depth + 1
	r.inFunc++
	ok, err := r.exec(body, &inner)
	r.inFunc--
	if r.ctl == ctlReturn {
		r.ctl = ctlNone
	}
	return ok, err
}

// sourceFile runs another script file: source (and '.') in the current
// context, configfile in a new one holding the exported variables. A
// missing file fails the command, as in GRUB, and the script goes on.
func (r *grubRun) sourceFile(cmd, name string, sc *scope) (bool, error) {
	if sc.source >= maxSources {
		return false, fmt.Errorf("%w: %s %s: files nested deeper than %d", errLimit, cmd, name, maxSources)
	}
	p := name
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "(") {
		p = path.Join("/", sc.dir, p)
	}
	p = strings.TrimPrefix(Resolve(r.fsys, p), "/")
	data, err := readBounded(r.fsys, p)
	if err != nil {
		return false, nil
	}
	nodes, err := parseGrubScript(string(data))
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", cmd, name, err)
	}
	inner := *sc
	inner.dir = path.Dir(p)
	inner.depth = sc.depth + 1
	inner.source = sc.source + 1
	if cmd == "configfile" {
		inner.env = sc.env.exports()
		inner.params = nil
	}
	ok, err := r.exec(nodes, &inner)
	if r.ctl == ctlReturn {
		r.ctl = ctlNone
	}
	return ok, err
}

func isName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (r *grubRun) set(sc *scope, k, v string) error {
	if len(v) > maxValue {
		return fmt.Errorf("%w: variable %s grows past %d bytes", errLimit, k, maxValue)
	}
	sc.env.vars[k] = v
	return nil
}

// lookup returns a variable or a special parameter.
func (r *grubRun) lookup(sc *scope, name string) (string, bool) {
	switch {
	case name == "#":
		return strconv.Itoa(len(sc.params)), true
	case name == "@" || name == "*":
		return strings.Join(sc.params, " "), true
	case name == "?":
		return "0", true
	case name != "" && isDigit(name[0]):
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 || n > len(sc.params) {
			return "", false
		}
		return sc.params[n-1], true
	}
	return sc.env.get(name)
}

// expandAll expands words into arguments, as GRUB does: quotes removed,
// variables substituted, an unquoted substitution split at blanks, and a
// word that expands to nothing without quotes dropped.
func (r *grubRun) expandAll(words []string, sc *scope) ([]string, error) {
	var out []string
	for _, w := range words {
		fields, err := r.expandWord(w, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, fields...)
	}
	return out, nil
}

// expandJoined expands the value of an assignment: no field splitting.
func (r *grubRun) expandJoined(w string, sc *scope) (string, error) {
	f, err := r.expandWordSplit(w, sc, false)
	return strings.Join(f, ""), err
}

func (r *grubRun) expandWord(w string, sc *scope) ([]string, error) {
	return r.expandWordSplit(w, sc, true)
}

// wordExpander builds the fields of one word; the first error sticks.
type wordExpander struct {
	r      *grubRun
	b      strings.Builder
	have   bool // the current field exists (it may be empty but quoted)
	fields []string
	err    error
}

func (x *wordExpander) emit() {
	if x.have {
		x.fields = append(x.fields, x.b.String())
	}
	x.b.Reset()
	x.have = false
}

func (x *wordExpander) add(s string) {
	x.have = true
	x.r.expanded += len(s)
	if x.r.expanded > maxExpansion || x.b.Len()+len(s) > maxValue {
		if x.err == nil {
			x.err = fmt.Errorf("%w: expanding words produced more than %d bytes", errLimit, maxValue)
		}
		return
	}
	x.b.WriteString(s)
}

// split adds an unquoted variable's value, a new field at each blank.
func (x *wordExpander) split(v string) {
	for v != "" {
		i := strings.IndexAny(v, " \t\n")
		if i < 0 {
			x.add(v)
			return
		}
		if i > 0 {
			x.add(v[:i])
		}
		x.emit()
		v = v[i+1:]
	}
}

func (r *grubRun) expandWordSplit(raw string, sc *scope, split bool) ([]string, error) {
	x := &wordExpander{r: r}
	variable := func(i int, quoted bool) int {
		name, next := varName(raw, i)
		if next == i+1 {
			x.add("$")
		} else if v, _ := r.lookup(sc, name); v != "" {
			if quoted || !split {
				x.add(v)
			} else {
				x.split(v)
			}
		}
		return next
	}
	for i := 0; i < len(raw) && x.err == nil; {
		switch c := raw[i]; c {
		case '\'':
			end := strings.IndexByte(raw[i+1:], '\'')
			if end < 0 {
				end = len(raw) - i - 1
			}
			x.add(raw[i+1 : i+1+end])
			i += end + 2
		case '"':
			x.add("")
			for i++; i < len(raw) && raw[i] != '"'; {
				switch {
				case raw[i] == '\\' && i+1 < len(raw) && strings.IndexByte("$\"\\\n", raw[i+1]) >= 0:
					if raw[i+1] != '\n' {
						x.add(raw[i+1 : i+2])
					}
					i += 2
				case raw[i] == '$':
					i = variable(i, true)
				default:
					x.add(raw[i : i+1])
					i++
				}
			}
			i++
		case '\\':
			// Outside quotes a backslash takes the next character
			// literally: \x20 is "x20", not a space (GRUB's lexer).
			if i+1 < len(raw) && raw[i+1] != '\n' {
				x.add(raw[i+1 : i+2])
			}
			i += 2
		case '$':
			i = variable(i, false)
		default:
			x.add(raw[i : i+1])
			i++
		}
	}
	if x.err != nil {
		return nil, x.err
	}
	x.emit()
	if !split && len(x.fields) == 0 {
		x.fields = []string{""}
	}
	return x.fields, nil
}

// varName reads the reference at raw[i] ('$'): $name, ${name}, $1…, $#,
// $?, $@, $*. It returns the name and the index after the reference; next
// is i+1 when there is no reference.
func varName(raw string, i int) (string, int) {
	j := i + 1
	if j < len(raw) && raw[j] == '{' {
		end := strings.IndexByte(raw[j:], '}')
		if end < 0 {
			return "", i + 1
		}
		return raw[j+1 : j+end], j + end + 1
	}
	switch {
	case j < len(raw) && strings.IndexByte("#?@*", raw[j]) >= 0:
		return raw[j : j+1], j + 1
	case j < len(raw) && isDigit(raw[j]):
		for j < len(raw) && isDigit(raw[j]) {
			j++
		}
	case j < len(raw) && (isAlnum(raw[j]) || raw[j] == '_'):
		for j < len(raw) && (isAlnum(raw[j]) || raw[j] == '_') {
			j++
		}
	}
	return raw[i+1 : j], j
}

// test evaluates GRUB's test / [ expression: binary and unary operators,
// '!' negating the next term, '-a' (implicit between terms), '-o', and
// parentheses, left to right as GRUB's test command does.
func (r *grubRun) test(args []string) bool {
	pos := 0
	return r.testExpr(args, &pos, 0)
}

func (r *grubRun) testExpr(a []string, pos *int, depth int) bool {
	and, or, invert := true, false, false
	val := func(v bool) {
		if invert {
			v = !v
		}
		and = and && v
		invert = false
	}
	for *pos < len(a) {
		p := *pos
		if p+2 < len(a) {
			if v, ok := r.binary(a[p], a[p+1], a[p+2]); ok {
				val(v)
				*pos += 3
				continue
			}
		}
		if p+1 < len(a) {
			if v, ok := r.unary(a[p], a[p+1]); ok {
				val(v)
				*pos += 2
				continue
			}
		}
		switch a[p] {
		case ")":
			*pos++
			return or || and
		case "(":
			*pos++
			if depth < maxDepth {
				val(r.testExpr(a, pos, depth+1))
			}
			continue
		case "!":
			invert = !invert
		case "-a":
		case "-o":
			or = or || and
			and = true
		default:
			val(a[p] != "")
		}
		*pos++
	}
	return or || and
}

func (r *grubRun) binary(x, op, y string) (bool, bool) {
	switch op {
	case "=", "==":
		return x == y, true
	case "!=":
		return x != y, true
	case "<":
		return x < y, true
	case "<=":
		return x <= y, true
	case ">":
		return x > y, true
	case ">=":
		return x >= y, true
	case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
		a, _ := strconv.ParseInt(x, 10, 64)
		b, _ := strconv.ParseInt(y, 10, 64)
		c := cmpInt64(a, b)
		switch op {
		case "-eq":
			return c == 0, true
		case "-ne":
			return c != 0, true
		case "-lt":
			return c < 0, true
		case "-le":
			return c <= 0, true
		case "-gt":
			return c > 0, true
		}
		return c >= 0, true
	case "-pgt", "-plt":
		c := CompareVersions(x, y)
		return (op == "-pgt" && c > 0) || (op == "-plt" && c < 0), true
	}
	return false, false
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *grubRun) unary(op, x string) (bool, bool) {
	switch op {
	case "-n":
		return x != "", true
	case "-z":
		return x == "", true
	case "-e", "-f", "-s", "-d":
		st, err := fs.Stat(r.fsys, strings.TrimPrefix(Resolve(r.fsys, x), "/"))
		if err != nil {
			return false, true
		}
		switch op {
		case "-s":
			return st.Size() > 0, true
		case "-d":
			return st.IsDir(), true
		case "-f":
			return !st.IsDir(), true
		}
		return true, true
	}
	return false, false
}

// loadEnv reads a grubenv block ($prefix/grubenv, or -f FILE) into the
// variables; with variable names after the options, only those.
func (r *grubRun) loadEnv(args []string, sc *scope) (bool, error) {
	prefix, _ := sc.env.get("prefix")
	file := path.Join(prefix, "grubenv")
	var only []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-f" || a == "--file") && i+1 < len(args):
			file = args[i+1]
			i++
		case strings.HasPrefix(a, "--file="):
			file = strings.TrimPrefix(a, "--file=")
		case strings.HasPrefix(a, "-"):
		default:
			only = append(only, a)
		}
	}
	data, err := readBounded(r.fsys, strings.TrimPrefix(Resolve(r.fsys, file), "/"))
	if err != nil {
		return false, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !isName(k) {
			continue
		}
		if only != nil && !contains(only, k) {
			continue
		}
		// grub-editenv escapes backslash and newline with a backslash.
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
				if v[i] == 'n' {
					b.WriteByte('\n')
					continue
				}
			}
			b.WriteByte(v[i])
		}
		if k == "next_entry" {
			r.nextEntry = b.String()
			continue
		}
		if err := r.set(sc, k, b.String()); err != nil {
			return false, err
		}
	}
	return true, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
