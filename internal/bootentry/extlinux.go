package bootentry

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// extlinux/syslinux/isolinux configuration, as syslinux reads it: keywords
// are case-insensitive; relative paths are relative to the configuration
// file's directory. LABEL with KERNEL/LINUX, INITRD (comma lists) and
// APPEND; a global APPEND (or INITRD) before the first LABEL is inherited
// by labels without their own, and "APPEND -" means no arguments at all;
// DEFAULT (a UI module such as vesamenu.c32 is not a label), ONTIMEOUT,
// MENU DEFAULT (for the menu it stands in); MENU LABEL (a '^' marks the
// hotkey and is not shown); MENU BEGIN … MENU END submenus, whose entries
// are titled "Submenu > Entry"; TEXT HELP … ENDTEXT skipped; TIMEOUT in
// tenths of a second (0: wait for the user, romboot's default timeout);
// INCLUDE, at most maxIncludeDepth deep — a deeper chain (a file
// including itself) is reported as a broken entry, not silently cut.
// Labels whose image is not a Linux kernel (COM32 modules *.c32,
// COMBOOT *.com/*.cbt, boot sectors *.bss/*.bs/*.bin, PXE *.0, multiboot
// through mboot.c32, LOCALBOOT, CONFIG) are listed as not bootable.

var extlinuxPaths = []string{
	"extlinux/extlinux.conf", "boot/extlinux/extlinux.conf",
	"syslinux/syslinux.cfg", "boot/syslinux/syslinux.cfg", "syslinux.cfg", "extlinux.conf",
	"isolinux/isolinux.cfg", "boot/isolinux/isolinux.cfg",
}

const (
	maxIncludeDepth = 16
	maxIncludes     = 256
	maxLabels       = 1024
)

type extState struct {
	fsys       fs.FS
	dir        string
	source     string
	def        string
	onTimeout  string
	timeout    int
	labels     []*extLabel
	cur        *extLabel
	menus      []*extMenu // the submenu stack; menus[0] is the top
	includes   int
	globalApp  *string
	globalInit []string
	problem    string
	inText     bool
}

type extMenu struct {
	title, label string
	def          *extLabel // MENU DEFAULT in this menu
	path         []string  // titles of the enclosing submenus
}

type extLabel struct {
	label, title, kernel, kind string
	kernelArgs                 []string // words after the image on the KERNEL line
	append                     *string
	initrds                    []string
	menu                       *extMenu
}

func findExtlinux(fsys fs.FS) *Menu {
	for _, p := range extlinuxPaths {
		data, err := readBounded(fsys, p)
		if err != nil {
			continue
		}
		st := &extState{fsys: fsys, dir: path.Dir(p), source: "extlinux:/" + p, timeout: -1}
		st.menus = []*extMenu{{}}
		st.parse(data, 0)
		m := st.menu()
		if len(m.Entries) > 0 {
			return m
		}
	}
	return nil
}

func (st *extState) top() *extMenu { return st.menus[len(st.menus)-1] }

func (st *extState) parse(data []byte, depth int) {
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if st.inText {
			if strings.EqualFold(line, "ENDTEXT") {
				st.inText = false
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val := splitKey(line)
		key = strings.ToUpper(key)
		if key == "MENU" {
			st.menuCommand(val, depth)
			continue
		}
		switch key {
		case "TEXT":
			st.inText = true
		case "DEFAULT":
			st.def = val
		case "ONTIMEOUT":
			st.onTimeout = val
		case "TIMEOUT":
			if n, err := strconv.Atoi(val); err == nil && n > 0 {
				st.timeout = (n + 9) / 10 // tenths of a second
			} else if err == nil && n == 0 {
				st.timeout = -1 // syslinux waits for the user
			}
		case "LABEL":
			if len(st.labels) >= maxLabels {
				st.fail(fmt.Sprintf("more than %d labels", maxLabels))
				st.cur = nil
				continue
			}
			st.cur = &extLabel{label: val, menu: st.top()}
			st.labels = append(st.labels, st.cur)
		case "KERNEL", "LINUX", "COM32", "COMBOOT", "BOOT", "BSS", "PXE", "FDIMAGE", "CONFIG", "LOCALBOOT":
			if st.cur != nil {
				st.cur.kernel, st.cur.kind = "", imageKind(key, val)
				if st.cur.kind == "" {
					f := strings.Fields(val)
					if len(f) > 0 {
						st.cur.kernel, st.cur.kernelArgs = st.resolve(f[0]), f[1:]
					}
				}
			}
		case "INITRD":
			var list []string
			for _, p := range strings.Split(val, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, st.resolve(p))
				}
			}
			if st.cur != nil {
				st.cur.initrds = list
			} else {
				st.globalInit = list
			}
		case "APPEND":
			v := val
			if st.cur != nil {
				st.cur.append = &v
			} else {
				st.globalApp = &v
			}
		case "INCLUDE":
			st.include(val, depth)
		}
	}
}

func (st *extState) include(val string, depth int) {
	st.includes++
	if depth+1 > maxIncludeDepth || st.includes > maxIncludes {
		st.fail(fmt.Sprintf("INCLUDE %s: more than %d nested or %d in all (does a file include itself?); later entries are missing", firstField(val), maxIncludeDepth, maxIncludes))
		return
	}
	if inc, err := readBounded(st.fsys, strings.TrimPrefix(st.resolve(firstField(val)), "/")); err == nil {
		st.parse(inc, depth+1)
	}
}

func (st *extState) fail(msg string) {
	if st.problem == "" {
		st.problem = msg
	}
}

func (st *extState) menuCommand(val string, depth int) {
	sub, rest := splitKey(val)
	switch strings.ToUpper(sub) {
	case "LABEL":
		if st.cur != nil && st.cur.menu == st.top() {
			st.cur.title = menuText(rest)
		} else if len(st.menus) > 1 {
			st.top().label = menuText(rest)
		}
	case "TITLE":
		if st.cur == nil || st.cur.menu != st.top() {
			st.top().title = menuText(rest)
		}
	case "DEFAULT":
		if st.cur != nil && st.cur.menu == st.top() {
			st.top().def = st.cur
		}
	case "BEGIN":
		if len(st.menus) > maxDepth {
			st.fail(fmt.Sprintf("MENU BEGIN nested deeper than %d", maxDepth))
			return
		}
		parent := st.top()
		path := append([]string(nil), parent.path...)
		if parent != st.menus[0] {
			path = append(path, parent.name())
		}
		st.menus = append(st.menus, &extMenu{label: rest, path: path})
		st.cur = nil
	case "END":
		if len(st.menus) > 1 {
			st.menus = st.menus[:len(st.menus)-1]
		}
		st.cur = nil
	case "INCLUDE":
		st.include(rest, depth)
	}
}

// name is how a submenu appears in its parent menu: its MENU LABEL, else
// its MENU TITLE, else the MENU BEGIN tag.
func (m *extMenu) name() string {
	if m.label != "" && !strings.EqualFold(m.label, m.title) && m.title != "" {
		return m.label
	}
	if m.title != "" {
		return m.title
	}
	return m.label
}

// menuText drops the '^' that marks a hotkey in MENU LABEL and MENU TITLE.
func menuText(s string) string {
	return strings.ReplaceAll(s, "^", "")
}

func splitKey(line string) (string, string) {
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i], strings.TrimSpace(line[i+1:])
	}
	return line, ""
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// imageKind says why a label's image is not a Linux kernel, or "" when it
// is one: syslinux picks the loader by keyword, and for KERNEL by the file
// name's extension.
func imageKind(key, val string) string {
	name := strings.ToLower(firstField(val))
	switch key {
	case "LINUX":
		return ""
	case "COM32":
		return "a COM32 module (" + name + ")"
	case "COMBOOT":
		return "a COMBOOT program (" + name + ")"
	case "BOOT", "BSS":
		return "a boot sector image (" + name + ")"
	case "PXE":
		return "a PXE image (" + name + ")"
	case "FDIMAGE":
		return "a floppy image (" + name + ")"
	case "CONFIG":
		return "another syslinux configuration (" + name + ")"
	case "LOCALBOOT":
		return "a local disk boot (LOCALBOOT)"
	}
	switch {
	case path.Base(name) == "mboot.c32":
		return "a multiboot image (mboot.c32)"
	case strings.HasSuffix(name, ".c32"):
		return "a COM32 module (" + name + ")"
	case strings.HasSuffix(name, ".com"), strings.HasSuffix(name, ".cbt"):
		return "a COMBOOT program (" + name + ")"
	case strings.HasSuffix(name, ".bss"), strings.HasSuffix(name, ".bs"), strings.HasSuffix(name, ".bin"):
		return "a boot sector image (" + name + ")"
	case strings.HasSuffix(name, ".0"):
		return "a PXE image (" + name + ")"
	}
	return ""
}

func (st *extState) resolve(p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return "/" + strings.TrimPrefix(path.Join(st.dir, p), "/")
}

func (st *extState) menu() *Menu {
	m := &Menu{Timeout: st.timeout}
	def := st.def
	if strings.HasSuffix(strings.ToLower(firstField(def)), ".c32") {
		def = "" // DEFAULT vesamenu.c32 names the menu program
	}
	// What boots when the menu times out: ONTIMEOUT, else the top menu's
	// MENU DEFAULT, else the DEFAULT label, else the first entry.
	defOnTimeout, defMenu, defLabel := -1, -1, -1
	top := st.menus[0]
	for _, l := range st.labels {
		if l.kernel == "" && l.kind == "" {
			continue // a label without an image (MENU SEPARATOR, MENU GOTO, …)
		}
		app := l.append
		if app == nil {
			app = st.globalApp
		}
		// syslinux runs "KERNEL line + APPEND": words after the image
		// come first.
		args := append([]string(nil), l.kernelArgs...)
		if app != nil && strings.TrimSpace(*app) != "-" {
			args = append(args, strings.Fields(*app)...)
		}
		initrds := l.initrds
		if initrds == nil {
			initrds = st.globalInit
		}
		var cmd []string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "initrd="); ok {
				if l.initrds == nil {
					for _, p := range strings.Split(v, ",") {
						if p != "" {
							initrds = append(initrds, st.resolve(p))
						}
					}
				}
				continue
			}
			cmd = append(cmd, a)
		}
		title := l.title
		if title == "" {
			title = l.label
		}
		titles := append([]string(nil), l.menu.path...)
		if l.menu != top {
			titles = append(titles, l.menu.name())
		}
		title = strings.Join(append(titles, title), " > ")
		i := len(m.Entries)
		if st.onTimeout != "" && strings.EqualFold(l.label, firstField(st.onTimeout)) && defOnTimeout < 0 {
			defOnTimeout = i
		}
		if def != "" && strings.EqualFold(l.label, firstField(def)) && defLabel < 0 {
			defLabel = i
		}
		if top.def == l {
			defMenu = i
		}
		e := Entry{Title: title, ID: l.label, Kernel: l.kernel, Initrds: initrds, Cmdline: strings.Join(cmd, " "), Source: st.source}
		if l.kind != "" {
			e.Broken = "not a Linux kernel: " + l.kind
			e.Initrds, e.Cmdline = nil, ""
		}
		m.Entries = append(m.Entries, e)
	}
	if st.problem != "" {
		m.Entries = append(m.Entries, Entry{Title: "(" + strings.TrimPrefix(st.source, "extlinux:/") + " is incomplete)", Source: st.source, Broken: st.problem})
	}
	for _, d := range []int{defOnTimeout, defMenu, defLabel} {
		if d >= 0 {
			m.Default = d
			break
		}
	}
	return m
}
