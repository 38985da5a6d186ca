// Package handoff lets the installed system's initramfs open its encrypted
// volumes with the passphrase romboot was given, so the user types it once.
//
// Find reads the entry's initrd and command line for the LUKS volumes that
// initrd will ask for: Debian and Ubuntu's initramfs-tools keep them in
// cryptroot/crypttab; dracut and other systemd initrds in etc/crypttab and
// rd.luks.* (luks.*) on the command line. Archive builds one uncompressed
// newc cpio, appended to the initrd in memory, that hands each volume the
// passphrase as a key file: initramfs-tools gets cryptroot/keyfiles/<name>.key
// and a crypttab naming it, systemd gets etc/cryptsetup-keys.d/<name>.key,
// which systemd-cryptsetup looks for when a volume names no key.
//
// initramfs-tools tries a key file once and never falls back to asking, so
// a caller hands over only volumes it has checked the passphrase opens.
// The package makes no syscalls: bytes in, bytes out.
package handoff

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/initrd"
)

// Flavor is the kind of initramfs, as far as unlocking goes.
type Flavor string

const (
	InitramfsTools Flavor = "initramfs-tools"
	Systemd        Flavor = "systemd"
)

// Where each flavor keeps its volumes and key files, inside the initrd.
const (
	cryptrootTab   = "cryptroot/crypttab"
	cryptrootKeys  = "cryptroot/keyfiles"
	etcCrypttab    = "etc/crypttab"
	systemdKeysDir = "etc/cryptsetup-keys.d"
)

// Markers of each flavor's unlocking code in the initrd.
var (
	cryptrootScript = "scripts/local-top/cryptroot"
	systemdBinaries = []string{"usr/lib/systemd/systemd-cryptsetup", "lib/systemd/systemd-cryptsetup"}
)

// Volume is one LUKS volume the initrd will ask a passphrase for.
type Volume struct {
	Name    string // the mapping name the initrd gives it (root_crypt, luks-<uuid>)
	Source  string // how it names the device: UUID=…, PARTUUID=…, LABEL=…, /dev/…
	KeyFile string // where the key goes in the initrd (no leading "/")
	line    int    // initramfs-tools: the line of cryptroot/crypttab
}

// Plan is what Find learned from one entry's initrd and command line.
type Plan struct {
	Flavor  Flavor
	Volumes []Volume
	Notes   []string // why volumes were left alone, for the log
	tab     []string // initramfs-tools: cryptroot/crypttab, line by line
}

// ErrUnsupported is returned for an initrd whose unlocking Find does not
// know (no initramfs-tools cryptroot, no systemd-cryptsetup).
var ErrUnsupported = errors.New("the initrd unlocks no volume in a way romboot can hand a key to")

// Find reads the initrd (its bytes) and the entry's command line. lim bounds
// the reading of the initrd.
func Find(data []byte, cmd string, lim initrd.Limits) (*Plan, error) {
	seen := map[string]bool{}
	rd, err := initrd.Read(data, func(e initrd.Entry) bool {
		seen[e.Name] = true
		return e.Name == cryptrootTab || e.Name == etcCrypttab
	}, lim)
	if err != nil {
		return nil, fmt.Errorf("reading the initrd: %w", err)
	}
	params := cmdline.Parse(cmd)
	switch {
	case seen[cryptrootScript]:
		return findInitramfsTools(rd.Files[cryptrootTab], params)
	case seen[systemdBinaries[0]] || seen[systemdBinaries[1]]:
		return findSystemd(rd.Files[etcCrypttab], params)
	}
	return nil, ErrUnsupported
}

// crypttabLine is one entry of a crypttab(5): target, source, key, options.
type crypttabLine struct {
	fields []string
	n      int // line number, from 0
}

func (l crypttabLine) key() string {
	if len(l.fields) < 3 {
		return ""
	}
	return l.fields[2]
}

func (l crypttabLine) options() []string {
	if len(l.fields) < 4 {
		return nil
	}
	return strings.Split(l.fields[3], ",")
}

func (l crypttabLine) hasOption(name string) bool {
	for _, o := range l.options() {
		if o == name || strings.HasPrefix(o, name+"=") {
			return true
		}
	}
	return false
}

// parseCrypttab splits a crypttab into entries, skipping comments and blank
// lines. Fields keep their escapes (\040), as written.
func parseCrypttab(b []byte) (lines []string, entries []crypttabLine) {
	lines = strings.Split(string(b), "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		entries = append(entries, crypttabLine{fields: f, n: i})
	}
	return lines, entries
}

// noKey reports whether a crypttab key field means "ask for a passphrase".
func noKey(k string) bool { return k == "" || k == "none" || k == "-" }

// unescape decodes crypttab's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return s[0] <= '3'
}

// validName: a mapping name usable in a file name of the archive.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= 127 && !strings.ContainsAny(n, "/\x00")
}

func findInitramfsTools(tab []byte, p cmdline.Params) (*Plan, error) {
	plan := &Plan{Flavor: InitramfsTools}
	if _, ok := p.Get("cryptopts"); ok {
		plan.Notes = append(plan.Notes, "cryptopts= on the command line replaces the initrd's crypttab: nothing handed over")
		return plan, nil
	}
	lines, entries := parseCrypttab(tab)
	plan.tab = lines
	for _, e := range entries {
		name := unescape(e.fields[0])
		switch {
		case !noKey(e.key()):
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s has a key file already", name))
			continue
		case e.hasOption("keyscript"):
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s uses a keyscript", name))
			continue
		case !validName(name):
			plan.Notes = append(plan.Notes, fmt.Sprintf("%q: unusable name", name))
			continue
		}
		if len(e.fields) < 3 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s: line too short to name a key file", name))
			continue
		}
		plan.Volumes = append(plan.Volumes, Volume{
			Name:    name,
			Source:  unescape(e.fields[1]),
			KeyFile: cryptrootKeys + "/" + name + ".key",
			line:    e.n,
		})
	}
	return plan, nil
}

// luksParams are systemd-cryptsetup-generator's command-line options that
// matter here (rd.luks.* in the initrd; luks.* too).
type luksParams struct {
	off      bool
	crypttab bool
	uuids    []string          // rd.luks.uuid=
	names    map[string]string // rd.luks.name=UUID=NAME
	keyed    bool              // rd.luks.key= names key files: they win
}

func readLuksParams(p cmdline.Params) luksParams {
	lp := luksParams{crypttab: true, names: map[string]string{}}
	for _, k := range p.Keys() {
		base, ok := strings.CutPrefix(k, "rd.")
		if !ok {
			base = k
		}
		v, _ := p.Get(k)
		switch base {
		case "luks":
			lp.off = isNo(v)
		case "luks.crypttab":
			lp.crypttab = !isNo(v)
		case "luks.uuid":
			lp.uuids = append(lp.uuids, normUUID(v))
		case "luks.name":
			if u, n, ok := strings.Cut(v, "="); ok {
				lp.names[normUUID(u)] = n
			}
		case "luks.key":
			lp.keyed = true
		}
	}
	return lp
}

func isNo(v string) bool {
	switch strings.ToLower(v) {
	case "0", "no", "n", "false", "off":
		return true
	}
	return false
}

// normUUID drops the "luks-" prefix systemd allows and lowercases.
func normUUID(u string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(u, "luks-"), "UUID="))
}

// sourceUUID is the UUID a crypttab source names, "" when it names none.
func sourceUUID(src string) string {
	for _, pre := range []string{"UUID=", "/dev/disk/by-uuid/"} {
		if u, ok := strings.CutPrefix(src, pre); ok {
			return strings.ToLower(u)
		}
	}
	return ""
}

func findSystemd(tab []byte, p cmdline.Params) (*Plan, error) {
	plan := &Plan{Flavor: Systemd}
	lp := readLuksParams(p)
	if lp.off {
		plan.Notes = append(plan.Notes, "rd.luks=0: the initrd unlocks nothing")
		return plan, nil
	}
	if lp.keyed {
		plan.Notes = append(plan.Notes, "rd.luks.key= names the key files: nothing handed over")
		return plan, nil
	}
	// The generator's rules: with rd.luks.uuid/name given, only those
	// volumes, under crypttab's name and options when crypttab has them.
	only := map[string]bool{}
	for _, u := range lp.uuids {
		only[u] = true
	}
	for u := range lp.names {
		only[u] = true
	}
	restrict := len(only) > 0
	done := map[string]bool{}
	add := func(name, src string) {
		if !validName(name) {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%q: unusable name", name))
			return
		}
		if done[name] {
			return
		}
		done[name] = true
		plan.Volumes = append(plan.Volumes, Volume{Name: name, Source: src, KeyFile: systemdKeysDir + "/" + name + ".key"})
	}
	if lp.crypttab {
		_, entries := parseCrypttab(tab)
		for _, e := range entries {
			name, src := unescape(e.fields[0]), unescape(e.fields[1])
			u := sourceUUID(src)
			if restrict && !only[u] {
				continue
			}
			if !noKey(e.key()) {
				plan.Notes = append(plan.Notes, fmt.Sprintf("%s has a key file already", name))
				done[name] = true
				delete(only, u)
				continue
			}
			if e.hasOption("noauto") && !restrict {
				continue
			}
			if u != "" { // crypttab's name wins over rd.luks.name, as in the generator
				delete(only, u)
			}
			add(name, src)
		}
	}
	for _, u := range lp.uuids {
		if !only[u] {
			continue
		}
		name := "luks-" + u
		if n, ok := lp.names[u]; ok {
			name = n
		}
		add(name, "UUID="+u)
		delete(only, u)
	}
	var rest []string
	for u := range lp.names {
		if only[u] {
			rest = append(rest, u)
		}
	}
	sort.Strings(rest)
	for _, u := range rest {
		add(lp.names[u], "UUID="+u)
	}
	return plan, nil
}
