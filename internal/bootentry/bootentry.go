// Package bootentry finds the kernels a /boot partition offers, with their
// initrds and command lines, the way the distro's own boot loader would:
// GRUB's grub.cfg (run as GRUB runs it, blscfg included), then Boot Loader
// Spec entries, then extlinux/syslinux/isolinux configurations, then the
// newest vmlinuz-<version> on the partition.
//
// It reads through an fs.FS rooted at the mounted /boot, never writes, and
// treats every file as untrusted input: bounded sizes, steps, nesting and
// memory, errors instead of panics.
package bootentry

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Entry is one bootable (or broken) choice.
type Entry struct {
	Title   string   // "Debian GNU/Linux" or "Advanced options for Debian > Debian, with Linux 6.1.0-18-amd64"
	ID      string   // GRUB --id, if any
	Kernel  string   // path inside the /boot filesystem, e.g. /vmlinuz-6.1.0-18-amd64
	Initrds []string // in order (microcode first)
	Cmdline string
	Source  string // "grub:/grub/grub.cfg", "fallback"
	Broken  string // why it cannot boot; "" when it can
	Edited  bool   // the command line was edited at the menu
	index   []int  // GRUB menu position, for default=1>2
}

// Menu is what a /boot offers.
type Menu struct {
	Entries []Entry
	Default int // index into Entries
	Timeout int // seconds, -1 when none was set
	// NextEntry is grubenv's next_entry (grub-reboot), which is not
	// followed: a read-only /boot cannot clear it, so it would stick.
	NextEntry string
}

// Options carry what the kernel command line says about entries.
type Options struct {
	// FallbackCmdline is the command line for the vmlinuz-* fallback
	// (romboot.cmdline=).
	FallbackCmdline string
	// CmdlineAppend is added to every entry's command line
	// (romboot.cmdline_append=).
	CmdlineAppend string
	// Entry picks the default by title, id or 1-based index
	// (romboot.entry=).
	Entry string
}

// maxConfigSize bounds a configuration file read into memory.
const maxConfigSize = 4 << 20

// grubPaths are tried in order, relative to the /boot filesystem (a separate
// /boot has grub/ at its root; a /boot inside / has boot/grub/), then
// EFI/*/grub.cfg.
var grubPaths = []string{
	"grub/grub.cfg", "grub2/grub.cfg", "boot/grub/grub.cfg", "boot/grub2/grub.cfg",
}

// ErrNoEntries is returned when nothing on the partition can be booted.
var ErrNoEntries = errors.New("no boot entries found: no grub.cfg, loader/entries or extlinux.conf with an entry, and no vmlinuz-<version>")

// Find returns the menu of the /boot filesystem fsys. Sources, in order:
// GRUB (grub/, grub2/, boot/grub*/, EFI/*/grub.cfg), Boot Loader Spec
// entries (loader/entries/*.conf), extlinux/syslinux, and last the newest
// vmlinuz-<version> files. The first source with an entry wins.
func Find(fsys fs.FS, opt Options) (*Menu, error) {
	m, err := find(fsys, opt)
	if err != nil {
		return nil, err
	}
	markBroken(fsys, m)
	if opt.CmdlineAppend != "" {
		for i := range m.Entries {
			m.Entries[i].Cmdline = strings.TrimSpace(m.Entries[i].Cmdline + " " + opt.CmdlineAppend)
		}
	}
	if opt.Entry != "" {
		if err := m.Pick(opt.Entry); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func find(fsys fs.FS, opt Options) (*Menu, error) {
	m, problems, err := findFirst(fsys, opt)
	if err != nil {
		return nil, err
	}
	// A configuration that could not be read is shown as a broken entry
	// after the ones found elsewhere, so the menu says why it is missing.
	for _, p := range problems {
		if !strings.HasSuffix(p, ": no menuentry") {
			m.Entries = append(m.Entries, Entry{Title: "(" + p + ")", Source: "romboot", Broken: "this configuration could not be read"})
		}
	}
	return m, nil
}

func findFirst(fsys fs.FS, opt Options) (*Menu, []string, error) {
	var problems []string
	paths := append([]string(nil), grubPaths...)
	if efi, err := fs.Glob(fsys, "EFI/*/grub.cfg"); err == nil {
		paths = append(paths, efi...)
	}
	for _, p := range paths {
		data, err := readBounded(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		m, err := parseGrub(fsys, p, data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if len(m.Entries) > 0 {
			return m, problems, nil
		}
		problems = append(problems, p+": no menuentry")
	}
	if m := findBLS(fsys); m != nil {
		return m, problems, nil
	}
	if m := findExtlinux(fsys); m != nil {
		return m, problems, nil
	}
	m, err := fallback(fsys, opt.FallbackCmdline)
	if err != nil {
		if len(problems) > 0 {
			return nil, nil, fmt.Errorf("%w (%s)", err, strings.Join(problems, "; "))
		}
		return nil, nil, err
	}
	return m, problems, nil
}

// Pick makes the entry named by a title, an id or a 1-based index the
// default.
func (m *Menu) Pick(spec string) error {
	for i, e := range m.Entries {
		if e.Title == spec || (e.ID != "" && e.ID == spec) {
			m.Default = i
			return nil
		}
	}
	if n, err := strconv.Atoi(spec); err == nil && n >= 1 && n <= len(m.Entries) {
		m.Default = n - 1
		return nil
	}
	return fmt.Errorf("romboot.entry=%q: no entry has that title, id or number (1-%d)", spec, len(m.Entries))
}

func readBounded(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if st.Size() > maxConfigSize {
		return nil, fmt.Errorf("%d bytes is larger than the %d-byte limit", st.Size(), maxConfigSize)
	}
	return fs.ReadFile(fsys, name)
}

// Resolve maps a boot loader path to a path inside the /boot filesystem:
// it drops a GRUB device prefix such as (hd0,gpt2) and, when the file is not
// at the path given, a leading /boot (a config written for /boot inside /).
func Resolve(fsys fs.FS, p string) string {
	if strings.HasPrefix(p, "(") {
		if i := strings.IndexByte(p, ')'); i >= 0 {
			p = p[i+1:]
		}
	}
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if _, err := fs.Stat(fsys, clean); err != nil {
		if rest, ok := strings.CutPrefix(clean, "boot/"); ok {
			if _, err := fs.Stat(fsys, rest); err == nil {
				clean = rest
			}
		}
	}
	return "/" + clean
}

// markBroken resolves each entry's files and says why an entry cannot boot.
func markBroken(fsys fs.FS, m *Menu) {
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Broken != "" {
			continue
		}
		if e.Kernel == "" {
			e.Broken = "no linux line"
			continue
		}
		e.Kernel = Resolve(fsys, e.Kernel)
		if !isFile(fsys, e.Kernel) {
			e.Broken = "kernel " + e.Kernel + " not found"
			continue
		}
		for j, in := range e.Initrds {
			e.Initrds[j] = Resolve(fsys, in)
			if !isFile(fsys, e.Initrds[j]) {
				e.Broken = "initrd " + e.Initrds[j] + " not found"
				break
			}
		}
	}
}

func isFile(fsys fs.FS, p string) bool {
	st, err := fs.Stat(fsys, strings.TrimPrefix(p, "/"))
	return err == nil && st.Mode().IsRegular()
}

// DefaultEntry returns the entry to boot without asking: the default if it
// can boot, else the first entry that can.
func (m *Menu) DefaultEntry() (Entry, error) {
	if m.Default >= 0 && m.Default < len(m.Entries) && m.Entries[m.Default].Broken == "" {
		return m.Entries[m.Default], nil
	}
	for _, e := range m.Entries {
		if e.Broken == "" {
			return e, nil
		}
	}
	var why []string
	for _, e := range m.Entries {
		why = append(why, fmt.Sprintf("%q: %s", e.Title, e.Broken))
	}
	return Entry{}, fmt.Errorf("no entry can boot: %s", strings.Join(why, "; "))
}
