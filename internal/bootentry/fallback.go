package bootentry

import (
	"io/fs"
	"sort"
	"strings"
)

// fallback offers the vmlinuz-<version> files at the root of /boot, newest
// first, each with initrd.img-<version> or initramfs-<version>.img.
func fallback(fsys fs.FS, cmdline string) (*Menu, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, e := range ents {
		if v, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); ok && v != "" && e.Type().IsRegular() {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return nil, ErrNoEntries
	}
	sort.Slice(versions, func(i, j int) bool { return CompareVersions(versions[i], versions[j]) > 0 })
	m := &Menu{Timeout: -1}
	for _, v := range versions {
		e := Entry{Title: "Linux " + v, Kernel: "/vmlinuz-" + v, Cmdline: cmdline, Source: "fallback"}
		for _, cand := range []string{"initrd.img-" + v, "initramfs-" + v + ".img"} {
			if isFile(fsys, cand) {
				e.Initrds = []string{"/" + cand}
				break
			}
		}
		m.Entries = append(m.Entries, e)
	}
	return m, nil
}

// CompareVersions orders version strings the way people read them: runs of
// digits compare as numbers (6.10 after 6.9), other runs byte-wise; a
// "~" sorts before anything, even the end (1.0~rc1 before 1.0).
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		if a == "" || b == "" {
			// ~ sorts before the end of a string.
			if strings.HasPrefix(a, "~") {
				return -1
			}
			if strings.HasPrefix(b, "~") {
				return 1
			}
			if a == "" {
				return -1
			}
			return 1
		}
		da, db := isDigit(a[0]), isDigit(b[0])
		switch {
		case da && db:
			na, ra := splitRun(a, true)
			nb, rb := splitRun(b, true)
			na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = ra, rb
		case da != db:
			// A non-digit run sorts before a number unless it is a
			// separator such as "." or "-": compare the characters.
			if a[0] == '~' {
				return -1
			}
			if b[0] == '~' {
				return 1
			}
			if da {
				return 1
			}
			return -1
		default:
			if a[0] != b[0] {
				if a[0] == '~' {
					return -1
				}
				if b[0] == '~' {
					return 1
				}
				return cmpInt(int(a[0]), int(b[0]))
			}
			a, b = a[1:], b[1:]
		}
	}
	return 0
}

func splitRun(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
