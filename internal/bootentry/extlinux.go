package bootentry

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// extlinux/syslinux configuration: DEFAULT, LABEL, MENU LABEL, MENU DEFAULT,
// KERNEL/LINUX, INITRD (comma lists), APPEND, TIMEOUT (tenths of a second),
// INCLUDE. Keywords are case-insensitive; relative paths are relative to
// the configuration file's directory.

var extlinuxPaths = []string{
	"extlinux/extlinux.conf", "boot/extlinux/extlinux.conf",
	"syslinux/syslinux.cfg", "boot/syslinux/syslinux.cfg", "syslinux.cfg", "extlinux.conf",
}

const maxIncludes = 16

type extState struct {
	fsys     fs.FS
	dir      string
	source   string
	def      string
	timeout  int
	labels   []*extLabel
	cur      *extLabel
	includes int
}

type extLabel struct {
	label, title, kernel, append string
	initrds                      []string
	menuDefault                  bool
}

func findExtlinux(fsys fs.FS) *Menu {
	for _, p := range extlinuxPaths {
		data, err := readBounded(fsys, p)
		if err != nil {
			continue
		}
		st := &extState{fsys: fsys, dir: path.Dir(p), source: "extlinux:/" + p, timeout: -1}
		st.parse(data)
		m := st.menu()
		if len(m.Entries) > 0 {
			return m
		}
	}
	return nil
}

func (st *extState) parse(data []byte) {
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		}
		key = strings.ToUpper(key)
		if key == "MENU" {
			sub, rest := val, ""
			if i := strings.IndexAny(val, " \t"); i >= 0 {
				sub, rest = val[:i], strings.TrimSpace(val[i+1:])
			}
			switch strings.ToUpper(sub) {
			case "LABEL":
				if st.cur != nil {
					st.cur.title = rest
				}
			case "DEFAULT":
				if st.cur != nil {
					st.cur.menuDefault = true
				}
			}
			continue
		}
		switch key {
		case "DEFAULT":
			st.def = val
		case "TIMEOUT":
			if n, err := strconv.Atoi(val); err == nil && n >= 0 {
				st.timeout = (n + 9) / 10 // tenths of a second
			}
		case "LABEL":
			st.cur = &extLabel{label: val}
			st.labels = append(st.labels, st.cur)
		case "KERNEL", "LINUX":
			if st.cur != nil {
				st.cur.kernel = st.resolve(val)
			}
		case "INITRD":
			if st.cur != nil {
				for _, p := range strings.Split(val, ",") {
					if p = strings.TrimSpace(p); p != "" {
						st.cur.initrds = append(st.cur.initrds, st.resolve(p))
					}
				}
			}
		case "APPEND":
			if st.cur != nil {
				st.cur.append = val
			}
		case "INCLUDE":
			if st.includes < maxIncludes {
				st.includes++
				if inc, err := readBounded(st.fsys, strings.TrimPrefix(st.resolve(val), "/")); err == nil {
					st.parse(inc)
				}
			}
		}
	}
}

func (st *extState) resolve(p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return "/" + strings.TrimPrefix(path.Join(st.dir, p), "/")
}

func (st *extState) menu() *Menu {
	m := &Menu{Timeout: st.timeout}
	for _, l := range st.labels {
		if l.kernel == "" {
			continue
		}
		args := strings.Fields(l.append)
		initrds := l.initrds
		var cmd []string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "initrd="); ok && len(l.initrds) == 0 {
				for _, p := range strings.Split(v, ",") {
					initrds = append(initrds, st.resolve(p))
				}
				continue
			}
			cmd = append(cmd, a)
		}
		title := l.title
		if title == "" {
			title = l.label
		}
		if l.menuDefault || (st.def != "" && strings.EqualFold(l.label, st.def)) {
			m.Default = len(m.Entries)
		}
		m.Entries = append(m.Entries, Entry{Title: title, ID: l.label, Kernel: l.kernel, Initrds: initrds, Cmdline: strings.Join(cmd, " "), Source: st.source})
	}
	return m
}
