package main

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/console"
	"github.com/romboot/romboot/internal/earlyinit"
)

// setOptions parses the romboot.* words of raw for the next boot, warning
// once about each word it cannot use. Secret-looking words are kept but
// never shown in the editor.
func (b *booter) setOptions(raw string) {
	o, warns := parseOptions(raw)
	for _, w := range warns {
		b.warn("%s", w)
	}
	b.opts = o
	b.optLine, b.optSecret = "", ""
	for _, w := range cmdline.Parse(raw).Words("romboot.") {
		if cmdline.IsSecret(w.Key) {
			b.optSecret += " " + w.String()
		} else {
			b.optLine = strings.TrimSpace(b.optLine + " " + w.String())
		}
	}
}

// quiet runs fn with kernel messages kept off the console, for prompts and
// menus.
func (b *booter) quiet(fn func() error) error {
	restore := earlyinit.QuietKernel()
	defer restore()
	return fn()
}

// recovery shows the recovery menu until the person retries the boot. Every
// change it makes holds for this boot only: nothing is written anywhere.
func recovery(b *booter) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Printf("recovery menu recovered from panic: %v", r)
			time.Sleep(time.Second)
		}
	}()
	restore := earlyinit.QuietKernel()
	defer restore()
	for {
		fmt.Fprintf(b.con.Out, "\nThis boot: %s\n", b.fixSummary())
		k, err := b.con.Menu("romboot recovery menu:", []console.MenuItem{
			{Key: 'r', Label: "retry the boot"},
			{Key: 'l', Label: "choose the LUKS device"},
			{Key: 'e', Label: "choose the boot entry"},
			{Key: 'k', Label: "edit the kernel command line"},
			{Key: 'o', Label: "edit the romboot.* options"},
			{Key: 'i', Label: "boot ignoring all romboot.* options"},
			{Key: 'd', Label: diagLabel()},
			{Key: 'b', Label: "reboot"},
			{Key: 'p', Label: "power off"},
		})
		if err != nil {
			// No console input (EOF): wait instead of spinning, then offer again.
			b.log.Printf("console: %v", err)
			time.Sleep(5 * time.Second)
			continue
		}
		switch k {
		case 'r':
			return
		case 'l':
			b.chooseDevice()
		case 'e':
			b.chooseEntry()
		case 'k':
			b.editKernelCmdline()
		case 'o':
			b.editOptions()
		case 'i':
			b.setOptions("")
			b.log.Printf("recovery: booting with every romboot.* option ignored")
			return
		case 'd':
			showDiagnostics(b)
		case 'b':
			b.log.Printf("rebooting")
			if err := earlyinit.Restart(); err != nil {
				b.log.Printf("reboot: %v", err)
			}
		case 'p':
			b.log.Printf("powering off")
			if err := earlyinit.PowerOff(); err != nil {
				b.log.Printf("power off: %v", err)
			}
		}
	}
}

// fixSummary says what the next boot will use.
func (b *booter) fixSummary() string {
	var parts []string
	if b.fix.device != "" {
		parts = append(parts, "device "+b.fix.device)
	}
	if b.fix.entry > 0 && b.lastMenu != nil && b.fix.entry <= len(b.lastMenu.Entries) {
		parts = append(parts, fmt.Sprintf("entry %q", b.lastMenu.Entries[b.fix.entry-1].Title))
	}
	if b.fix.pickMenu {
		parts = append(parts, "boot menu after unlocking")
	}
	if b.fix.kcmdline != "" {
		parts = append(parts, fmt.Sprintf("kernel command line %q", b.fix.kcmdline))
	}
	opts := b.optLine
	if opts == "" {
		opts = "none"
	}
	parts = append(parts, "romboot options: "+opts)
	return strings.Join(parts, "; ")
}

// chooseDevice lists the LUKS partitions present and picks one for this
// boot.
func (b *booter) chooseDevice() {
	devs, err := bootDevices()
	if err != nil {
		fmt.Fprintf(b.con.Out, "%v\n", err)
	}
	var found []blockdev.Device
	var items []string
	for _, d := range devs {
		_, isLUKS, err := probe(&d)
		if !isLUKS {
			continue
		}
		desc := fmt.Sprintf("%s  %d MiB  UUID=%s %s %s", d.Path, d.Size>>20, d.UUID, d.Label, d.PartLabel)
		if err != nil {
			desc += "  (" + err.Error() + ")"
		}
		found = append(found, d)
		items = append(items, desc)
	}
	if len(found) == 0 {
		fmt.Fprintln(b.con.Out, "No LUKS partition is present right now (diagnostics lists every block device).")
		return
	}
	n, err := b.con.Choose("LUKS partitions:", items)
	if err != nil {
		return
	}
	b.fix.device = found[n].Path
	b.log.Printf("recovery: device %s chosen", b.fix.device)
}

// chooseEntry picks the entry from the list the last boot read; before any
// /boot was read, the boot menu is shown after unlocking instead.
func (b *booter) chooseEntry() {
	if b.lastMenu == nil || len(b.lastMenu.Entries) == 0 {
		fmt.Fprintln(b.con.Out, "The entries are known once /boot is unlocked: the boot menu will be shown then, without a countdown.")
		b.fix.pickMenu = true
		return
	}
	var items []string
	for i, e := range b.lastMenu.Entries {
		it := e.Title
		if i == b.lastMenu.Default {
			it += "  (default)"
		}
		if e.Broken != "" {
			it += "  [cannot boot: " + e.Broken + "]"
		}
		items = append(items, it)
	}
	n, err := b.con.Choose("Boot entries:", items)
	if err != nil {
		return
	}
	if e := b.lastMenu.Entries[n]; e.Broken != "" {
		fmt.Fprintf(b.con.Out, "%q cannot boot: %s\n", e.Title, e.Broken)
		return
	}
	b.fix.entry, b.fix.pickMenu = n+1, false
	b.log.Printf("recovery: entry %d chosen", n+1)
}

// editKernelCmdline edits the command line the chosen entry boots with.
func (b *booter) editKernelCmdline() {
	initial := b.fix.kcmdline
	if initial == "" && b.lastMenu != nil && len(b.lastMenu.Entries) > 0 {
		i := b.lastMenu.Default
		if b.fix.entry > 0 && b.fix.entry <= len(b.lastMenu.Entries) {
			i = b.fix.entry - 1
		}
		initial = b.lastMenu.Entries[i].Cmdline
	}
	fmt.Fprintln(b.con.Out, "Kernel command line for this boot (Enter keeps it, Esc cancels, empty: the entry's own):")
	line, ok := b.editLine(initial)
	if !ok {
		return
	}
	b.fix.kcmdline = strings.TrimSpace(line)
	b.log.Printf("recovery: kernel command line edited")
}

// editOptions edits the payload's own romboot.* options for this boot.
func (b *booter) editOptions() {
	fmt.Fprintln(b.con.Out, "romboot.* options for this boot (Enter applies, Esc cancels):")
	line, ok := b.editLine(b.optLine)
	if !ok {
		return
	}
	var kept []string
	for _, w := range cmdline.Parse(line).Words("") {
		if !strings.HasPrefix(w.Key, "romboot.") {
			b.warn("%s: not a romboot.* option, ignored", w.Key)
			continue
		}
		kept = append(kept, w.String())
	}
	b.setOptions(strings.Join(kept, " ") + b.optSecret)
	b.log.Printf("recovery: options now %q", b.optLine)
}

func (b *booter) editLine(initial string) (string, bool) {
	restore := b.con.Raw()
	defer restore()
	line, ok, err := b.con.EditLine("> ", initial)
	return line, ok && err == nil
}

func showDiagnostics(b *booter) {
	out := b.con.Out
	fmt.Fprintf(out, "\n== romboot %s diagnostics ==\n", version)
	fmt.Fprint(out, b.log.Timeline())
	fmt.Fprintln(out, "block devices:")
	devs, err := blockdev.List("/sys", "/dev")
	if err != nil {
		fmt.Fprintf(out, "  %v\n", err)
	}
	for _, d := range devs {
		if _, _, err := probe(&d); err != nil {
			d.Type += " (" + err.Error() + ")"
		}
		fmt.Fprintf(out, "  %-8s %4d:%-4d %10d MiB  %-12s %s %s\n", d.Name, d.Major, d.Minor, d.Size>>20, d.Type, d.UUID, d.PartLabel)
	}
	fmt.Fprintln(out, "log:")
	for _, l := range b.log.Lines() {
		fmt.Fprintln(out, "  "+l)
	}
	addr := b.opts.diag
	if addr == "" {
		addr = defaultDiagAddr
	}
	if err := b.startDiag(addr); err != nil {
		fmt.Fprintf(out, "%v\n", err)
		return
	}
	fmt.Fprintf(out, "Diagnostics are served at %s: try curl http://<address>/\n", b.diagURL())
}
