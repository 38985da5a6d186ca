package bootentry

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Boot Loader Specification (UAPI.1) type 1 entries: loader/entries/*.conf,
// one "key value" per line (spaces or tabs), initrd and options repeatable.

// maxBLSEntries bounds how many entry files are read.
const maxBLSEntries = 256

type blsEntry struct {
	id, title, version, machineID, sortKey, arch string
	linux                                        string
	initrds, options                             []string
	initrdLines                                  []string // as written, for blscfg
}

// parseBLSEntry parses one entry file.
func parseBLSEntry(id string, data []byte) blsEntry {
	e := blsEntry{id: id}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		}
		switch key {
		case "title":
			e.title = val
		case "version":
			e.version = val
		case "machine-id":
			e.machineID = val
		case "sort-key":
			e.sortKey = val
		case "architecture":
			e.arch = strings.ToLower(val)
		case "linux":
			e.linux = val
		case "initrd":
			e.initrds = append(e.initrds, strings.Fields(val)...)
			e.initrdLines = append(e.initrdLines, val)
		case "options":
			e.options = append(e.options, val)
		}
	}
	return e
}

// blsLess orders entries as the specification says: entries with a
// sort-key first, by sort-key, then machine-id, then version (newest
// first); the others after them by file name, newest version first.
func blsLess(a, b blsEntry) bool {
	if (a.sortKey != "") != (b.sortKey != "") {
		return a.sortKey != ""
	}
	if a.sortKey != "" {
		if a.sortKey != b.sortKey {
			return a.sortKey < b.sortKey
		}
		if a.machineID != b.machineID {
			return a.machineID < b.machineID
		}
		if c := CompareVersions(a.version, b.version); c != 0 {
			return c > 0
		}
	}
	return CompareVersions(a.id, b.id) > 0
}

// readBLS reads dir/*.conf, for this machine's architecture, unsorted.
func readBLS(fsys fs.FS, dir string) []blsEntry {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var out []blsEntry
	for _, de := range ents {
		name := de.Name()
		if !strings.HasSuffix(name, ".conf") || !de.Type().IsRegular() || len(out) >= maxBLSEntries {
			continue
		}
		data, err := readBounded(fsys, path.Join(dir, name))
		if err != nil {
			continue
		}
		e := parseBLSEntry(strings.TrimSuffix(name, ".conf"), data)
		if e.linux == "" || (e.arch != "" && e.arch != "x64" && e.arch != "x86_64" && e.arch != "amd64") {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (e blsEntry) entry(source string) Entry {
	title := e.title
	if title == "" {
		title = e.id
	}
	if e.version != "" && !strings.Contains(title, e.version) && e.title != "" {
		title += " (" + e.version + ")"
	}
	return Entry{
		Title:   title,
		ID:      e.id,
		Kernel:  e.linux,
		Initrds: append([]string(nil), e.initrds...),
		Cmdline: strings.Join(strings.Fields(strings.Join(e.options, " ")), " "),
		Source:  source,
	}
}

// findBLS reads loader/entries and loader/loader.conf (default with globs,
// timeout).
func findBLS(fsys fs.FS) *Menu {
	ents := readBLS(fsys, "loader/entries")
	if len(ents) == 0 {
		return nil
	}
	sort.SliceStable(ents, func(i, j int) bool { return blsLess(ents[i], ents[j]) })
	m := &Menu{Timeout: -1}
	for _, e := range ents {
		m.Entries = append(m.Entries, e.entry("bls:/loader/entries/"+e.id+".conf"))
	}
	if data, err := readBounded(fsys, "loader/loader.conf"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "default":
				pat := strings.TrimSuffix(f[1], ".conf")
				for i, e := range m.Entries {
					if ok, _ := path.Match(pat, e.ID); ok {
						m.Default = i
						break
					}
				}
			case "timeout":
				if n, err := strconv.Atoi(f[1]); err == nil {
					m.Timeout = n
				} else if f[1] == "menu-force" {
					m.Timeout = 30
				}
			}
		}
	}
	return m
}

// blscfg registers the Boot Loader Spec entries as menu entries, as the
// blscfg command of Fedora's and RHEL's GRUB does: from $blsdir (default
// /loader/entries, then /boot/loader/entries), newest first (by version
// when every entry has one, then by file name, rpm's version order); the
// title as written (the linux path when there is none), the file name as
// id; $name references in options expanded now with the current variables
// (RHEL 8's $kernelopts and $tuned_params from grubenv), the rest when the
// entry runs, where words that expand to nothing (an empty $tuned_initrd)
// are dropped, as in any GRUB command.
func (r *grubRun) blscfg(sc *scope) error {
	if sc.menu == nil {
		return nil
	}
	dir, _ := sc.env.get("blsdir")
	dir = strings.Trim(dir, "/")
	if dir == "" {
		dir = "loader/entries"
	}
	ents := readBLS(r.fsys, dir)
	if len(ents) == 0 {
		dir = "boot/loader/entries"
		ents = readBLS(r.fsys, dir)
	}
	useVersion := true
	for _, e := range ents {
		if e.version == "" {
			useVersion = false
		}
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		if useVersion {
			if c := rpmVercmp(a.version, b.version); c != 0 {
				return c > 0
			}
		}
		return rpmVercmp(a.id, b.id) > 0
	})
	for _, e := range ents {
		r.entries++
		if r.entries > maxEntries {
			return fmt.Errorf("%w: more than %d menu entries", errLimit, maxEntries)
		}
		title := e.title
		if title == "" {
			title = e.linux
		}
		src := "linux " + e.linux
		if len(e.options) > 0 {
			src += " " + blsExpand(strings.Join(e.options, " "), sc)
		}
		if len(e.initrdLines) > 0 {
			src += "\ninitrd " + strings.Join(e.initrdLines, " ")
		}
		it := &gitem{title: title, id: e.id, params: []string{title}, prefix: sc.dir, env: sc.env}
		body, err := parseGrubScript(src)
		if err != nil {
			it.broken = "GRUB cannot read the entry's command: " + err.Error()
		}
		it.body = body
		if it.body == nil {
			it.body = []gnode{}
		}
		sc.menu.items = append(sc.menu.items, it)
	}
	return nil
}

// blsExpand substitutes $name (letters, digits, _) with the variable's
// value, dropping unset ones, and keeps everything else as written.
func blsExpand(s string, sc *scope) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
			j++
		}
		if v, ok := sc.env.get(s[i+1 : j]); ok && j > i+1 {
			b.WriteString(v)
		}
		i = j
	}
	return b.String()
}

// rpmVercmp compares versions as rpm (and GRUB's blscfg) do: runs of digits
// as numbers, runs of letters as strings, a number newer than letters,
// other characters only separate, '~' older than anything.
func rpmVercmp(a, b string) int {
	if a == b {
		return 0
	}
	sep := func(c byte) bool { return !isAlnum(c) && c != '~' }
	for a != "" || b != "" {
		for a != "" && sep(a[0]) {
			a = a[1:]
		}
		for b != "" && sep(b[0]) {
			b = b[1:]
		}
		if strings.HasPrefix(a, "~") || strings.HasPrefix(b, "~") {
			if !strings.HasPrefix(a, "~") {
				return 1
			}
			if !strings.HasPrefix(b, "~") {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			break
		}
		num := isDigit(a[0])
		class := func(c byte) bool {
			if num {
				return isDigit(c)
			}
			return isAlnum(c) && !isDigit(c)
		}
		i, j := 0, 0
		for i < len(a) && class(a[i]) {
			i++
		}
		for j < len(b) && class(b[j]) {
			j++
		}
		if j == 0 {
			if num {
				return 1
			}
			return -1
		}
		x, y := a[:i], b[:j]
		if num {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				return cmpInt(len(x), len(y))
			}
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
		a, b = a[i:], b[j:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}
