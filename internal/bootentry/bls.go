package bootentry

import (
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

// readBLS reads dir/*.conf, sorted. vars expands $var in options (GRUB's
// blscfg does this with its environment, e.g. Fedora's $kernelopts).
func readBLS(fsys fs.FS, dir string, vars map[string]string) []blsEntry {
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
		if vars != nil {
			for i, o := range e.options {
				e.options[i] = expand(o, vars)
			}
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return blsLess(out[i], out[j]) })
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
	ents := readBLS(fsys, "loader/entries", nil)
	if len(ents) == 0 {
		return nil
	}
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
