package main

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/bootmenu"
	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/console"
	"github.com/romboot/romboot/internal/dm"
	"github.com/romboot/romboot/internal/kexec"
	"github.com/romboot/romboot/internal/luks"
)

const (
	mapName   = "romboot-boot"
	bootMount = "/boot"
)

// bootState is where the boot says what it is doing (the diagnostics page
// shows it).
type bootState interface{ Set(string) }

// booter holds one boot attempt's state, so cleanup can undo it.
type booter struct {
	log     *bootlog.Log
	con     *console.Console
	state   bootState
	diagSrv any // the diagnostics server, when running (an httpd.Engine)
	mounted bool
	mapped  bool
	snap    bool // the dirty-journal snapshot is mapped
	ctl     *dm.Control

	ho        *handoffState // the passphrase handoff (handoff.go)
	opts      options       // the romboot.* options in force for the next boot
	optLine   string        // their words, as the recovery menu's editor shows them
	optSecret string        // secret-looking romboot.* words, kept but never shown
	fix       fixes         // what the recovery menu changed for this boot
	lastMenu  *bootentry.Menu
}

// fixes are the recovery menu's changes for this boot only; nothing is
// written anywhere.
type fixes struct {
	device   string // a /dev path chosen from the list
	entry    int    // 1-based entry chosen from the list, 0 for none
	pickMenu bool   // show the boot menu whatever the timeout
	kcmdline string // the kernel command line typed, "" for the entry's
}

// warn says on the console and in the log that something was not as
// configured and what the boot does instead.
func (b *booter) warn(format string, args ...any) {
	b.log.Printf("warning: %s", fmt.Sprintf(format, args...)) // the log writes to the console
}

// stage runs fn as a named, timed stage; the diagnostics page shows it as
// the boot's state meanwhile.
func (b *booter) stage(name string, fn func() error) error {
	b.state.Set(name)
	end := b.log.Stage(name)
	err := fn()
	end(err)
	return err
}

// boot runs the whole path; it returns only on failure.
func (b *booter) boot() error {
	o := b.opts
	var dev blockdev.Device
	var hdr *luks.Header
	if err := b.stage("finding the LUKS /boot partition", func() error {
		var err error
		dev, hdr, err = b.findDevice(o)
		return err
	}); err != nil {
		return err
	}
	b.log.Printf("/boot is %s: LUKS%d %s, UUID %s", dev.Path, hdr.Version, hdr.Cipher, hdr.UUID)
	for _, w := range hdr.Warnings {
		b.log.Printf("warning: %s", w)
	}
	if o.keyslot >= 0 && !hasKeyslot(hdr, o.keyslot) {
		b.warn("romboot.keyslot=%d: %s has no usable keyslot %d; trying all keyslots", o.keyslot, dev.Path, o.keyslot)
		o.keyslot = -1
	}
	var mapped string
	if err := b.unlockAndMap(o, dev, &mapped); err != nil {
		return err
	}
	if err := b.stage("mounting /boot read-only", func() error { return b.mountBoot(mapped) }); err != nil {
		return err
	}
	var menu *bootentry.Menu
	if err := b.stage("reading the boot entries", func() error {
		var err error
		menu, err = b.readEntries(o)
		return err
	}); err != nil {
		return err
	}
	b.prepareHandoff(menu)
	entry, err := b.choose(o, menu)
	if err != nil {
		return err
	}
	if entry.Edited {
		b.log.Printf("command line edited at the menu")
	}
	b.log.Printf("booting %q: %s initrd %v cmdline %q", entry.Title, entry.Kernel, entry.Initrds, cmdline.Parse(entry.Cmdline).Redacted())
	b.state.Set("booting " + entry.Title)
	if err := b.stage("loading the kernel (kexec_file_load)", func() error {
		return b.loadKernel(entry)
	}); err != nil {
		return err
	}
	// The diagnostics server is stopped (bounded) while /boot is still
	// mounted, so nothing it serves can hold /boot open.
	b.stopDiag()
	if err := b.stage("closing /boot", b.closeBoot); err != nil {
		return err
	}
	fmt.Fprint(b.con.Out, b.log.Timeline())
	b.log.Printf("jumping to %s", entry.Kernel)
	return kexec.Exec()
}

// hasKeyslot says whether the header has a usable keyslot n.
func hasKeyslot(h *luks.Header, n int) bool {
	for _, ks := range h.Keyslots {
		if ks.Index == n && ks.Bound && ks.Problem == "" {
			return true
		}
	}
	return false
}

// readEntries reads the menu of the mounted /boot and applies romboot.entry=
// and the recovery menu's choice; a name that matches nothing keeps the
// config's own default, with a warning.
func (b *booter) readEntries(o options) (*bootentry.Menu, error) {
	// Every file is read inside /boot: a symlink on it cannot point out.
	root, err := openInRoot(bootMount)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	menu, err := bootentry.Find(root, bootentry.Options{FallbackCmdline: o.cmdline, CmdlineAppend: o.append})
	if err != nil {
		return nil, err
	}
	b.applyEntry(menu, o)
	return menu, nil
}

// applyEntry sets the menu's default from romboot.entry= and the recovery
// menu's choice, and warns about grub-reboot's next_entry.
func (b *booter) applyEntry(menu *bootentry.Menu, o options) {
	b.lastMenu = menu
	if menu.NextEntry != "" {
		b.warn("grubenv sets next_entry=%q (grub-reboot): ignored, since a read-only /boot cannot clear it", menu.NextEntry)
	}
	if o.entry != "" {
		if err := menu.Pick(o.entry); err != nil {
			b.warn("%v; using the config's default %q", err, menu.Entries[menu.Default].Title)
		}
	}
	if n := b.fix.entry; n >= 1 && n <= len(menu.Entries) {
		menu.Default = n - 1
	}
	b.log.Printf("%d entries from %s, default %q", len(menu.Entries), menu.Entries[0].Source, menu.Entries[menu.Default].Title)
}

// choose returns the entry to boot: the menu with its countdown, or the
// default; a broken default falls back to the first bootable entry with a
// warning. The recovery menu's command line replaces the entry's.
func (b *booter) choose(o options, menu *bootentry.Menu) (bootentry.Entry, error) {
	timeout := o.timeout
	if timeout < 0 && menu.Timeout >= 0 {
		timeout = time.Duration(menu.Timeout) * time.Second
	}
	if b.fix.pickMenu {
		timeout = bootmenu.NoCountdown
	}
	b.state.Set("boot menu")
	var entry bootentry.Entry
	err := b.quiet(func() error {
		var err error
		entry, err = bootmenu.Choose(b.con, menu, timeout, b.warn)
		return err
	})
	if err != nil {
		return entry, err
	}
	if b.fix.kcmdline != "" {
		entry.Cmdline, entry.Edited = b.fix.kcmdline, true
	}
	return entry, nil
}

// loadKernel loads the entry's kernel and initrds, each opened inside
// /boot: no symlink or ".." can lead outside it.
func (b *booter) loadKernel(e bootentry.Entry) error {
	root, err := openInRoot(bootMount)
	if err != nil {
		return err
	}
	defer root.Close()
	open := func(p string) (*os.File, error) {
		f, err := root.open(strings.TrimPrefix(p, "/"))
		if err != nil {
			return nil, fmt.Errorf("%s on /boot: %w", p, err)
		}
		return f, nil
	}
	kf, err := open(e.Kernel)
	if err != nil {
		return err
	}
	defer kf.Close()
	var initrds []*os.File
	defer func() {
		for _, f := range initrds {
			f.Close()
		}
	}()
	for _, in := range e.Initrds {
		f, err := open(in)
		if err != nil {
			return err
		}
		initrds = append(initrds, f)
	}
	return b.load(kf, initrds, e)
}

// probe reads a device's LUKS header, filling in its content identity. It
// reports a device with a LUKS magic whose header is refused as LUKS with
// the error, so the user learns why it cannot be opened.
func probe(d *blockdev.Device) (*luks.Header, bool, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		// No node yet, no medium, still being set up: not an answer.
		return nil, false, fmt.Errorf("%w: %v", errNotReady, err)
	}
	defer f.Close()
	h, err := luks.Open(f, d.Size)
	if errors.Is(err, luks.ErrNotLUKS) {
		return nil, false, nil
	}
	if err != nil {
		// A primary wiped over a damaged secondary is LUKS too: the
		// user is told the header is refused, not that there is no LUKS.
		if !luks.HasSignature(f) {
			return nil, false, nil
		}
		d.Type = "crypto_LUKS"
		return nil, true, err
	}
	d.Type, d.UUID, d.Label = "crypto_LUKS", h.UUID, h.Label
	return h, true, nil
}

// unlockAndMap asks for the passphrase (up to o.tries times), recovers the
// volume key and maps the volume read-only. The key is wiped on every path.
func (b *booter) unlockAndMap(cfg options, dev blockdev.Device, mapped *string) error {
	f, err := os.Open(dev.Path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dev.Path, err)
	}
	defer f.Close()
	hdr, err := luks.Open(f, dev.Size)
	if err != nil {
		return fmt.Errorf("%s: %w", dev.Path, err)
	}
	var vol *luks.Volume
	defer func() { vol.Wipe() }()
	for try := 1; ; try++ {
		b.state.Set("waiting for passphrase for " + dev.Path)
		var pass []byte
		err := b.quiet(func() error {
			var err error
			pass, err = b.con.ReadPassphrase(fmt.Sprintf("Enter passphrase for %s: ", dev.Path))
			return err
		})
		if err != nil {
			return fmt.Errorf("reading the passphrase: %w", err)
		}
		b.state.Set("unlocking")
		end := b.log.Stage("unlocking")
		vol, err = hdr.Unlock(pass, luks.UnlockOptions{
			Keyslot: cfg.keyslot,
			BeforeKDF: func(ks luks.Keyslot) {
				fmt.Fprintf(b.con.Out, "Unlocking (%s)...\n", ks.KDF)
			},
			// Each Argon2 run's memory goes back to the kernel before the
			// next keyslot is weighed against what is free.
			MemAvailable: func() (uint64, error) {
				debug.FreeOSMemory()
				return luks.MemAvailable()
			},
		})
		b.keepPassphrase(pass, dev.Path, err)
		luks.Wipe(pass)
		debug.FreeOSMemory()
		end(err)
		if err == nil {
			b.log.Printf("keyslot %d opened", vol.Keyslot)
			break
		}
		if !errors.Is(err, luks.ErrWrongPassphrase) {
			return err
		}
		if try >= cfg.tries {
			return fmt.Errorf("%v, %d tries used: nothing was booted", err, cfg.tries)
		}
		if err != luks.ErrWrongPassphrase {
			// Some keyslots were not tried (too little memory): say so.
			fmt.Fprintf(b.con.Out, "Not accepted: %v.\n", err)
		}
		fmt.Fprintf(b.con.Out, "Wrong passphrase. %d of %d tries left.\n", cfg.tries-try, cfg.tries)
	}
	return b.stage("mapping the volume read-only (dm-crypt)", func() error {
		length, params, err := vol.DMTable(dev.Major, dev.Minor, dev.Size)
		vol.Wipe()
		if err != nil {
			return err
		}
		defer luks.Wipe(params)
		ctl, err := dm.Open()
		if err != nil {
			return err
		}
		b.ctl = ctl
		uuid := fmt.Sprintf("CRYPT-LUKS%d-%s-%s", hdr.Version, strings.ReplaceAll(hdr.UUID, "-", ""), mapName)
		d, err := ctl.Create(mapName, uuid, true, dm.Target{Start: 0, Length: length, Type: "crypt", Params: params})
		if err != nil {
			return err
		}
		b.mapped = true
		*mapped, err = dm.WaitNode(d, 5*time.Second)
		return err
	})
}

// mountBoot mounts the mapped volume read-only: ext4, else vfat. A clean
// ext4 is mounted without touching its journal (noload); one whose journal
// needs replaying (a crash right after a kernel update) is replayed into RAM
// through a snapshot, never read from stale metadata, never written.
func (b *booter) mountBoot(dev string) error {
	if err := os.MkdirAll(bootMount, 0o755); err != nil {
		return err
	}
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	isExt, dirty := ext4NeedsRecovery(f)
	f.Close()
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if isExt && dirty {
		fmt.Fprintln(b.con.Out, "romboot: /boot was not closed cleanly (its journal holds recent changes): replaying the journal in RAM; the disk is not written.")
		b.log.Printf("ext4 journal needs recovery: replaying into a RAM snapshot")
		snap, err := b.replayInRAM(dev)
		if err != nil {
			return fmt.Errorf("/boot's journal needs replaying and that failed: %w; refusing to boot from stale metadata", err)
		}
		if err := unix.Mount(snap, bootMount, "ext4", flags, ""); err != nil {
			return fmt.Errorf("/boot's journal needs replaying: mounting the RAM snapshot %s: %w; refusing to boot from stale metadata", snap, err)
		}
		b.mounted = true
		b.log.Printf("mounted %s on %s (ext4, journal replayed in RAM, read-only)", snap, bootMount)
		return nil
	}
	var errs []error
	for _, t := range []struct{ fstype, data string }{{"ext4", "noload"}, {"vfat", "utf8"}} {
		err := unix.Mount(dev, bootMount, t.fstype, flags, t.data)
		if err == nil {
			b.mounted = true
			b.log.Printf("mounted %s on %s (%s, read-only)", dev, bootMount, t.fstype)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t.fstype, err))
	}
	return fmt.Errorf("mounting %s: no ext4 or vfat filesystem (%v)", dev, errors.Join(errs...))
}

// closeBoot unmounts /boot and removes the mappings (snapshot first).
func (b *booter) closeBoot() error {
	var errs []error
	if b.mounted {
		if err := unix.Unmount(bootMount, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", bootMount, err))
		} else {
			b.mounted = false
		}
	}
	if b.snap && b.ctl != nil && !b.mounted {
		if err := b.ctl.Remove(replayName); err != nil {
			errs = append(errs, err)
		} else {
			b.snap = false
			freeRAMDisk()
		}
	}
	if b.mapped && b.ctl != nil && !b.snap && !b.mounted {
		if err := b.ctl.Remove(mapName); err != nil {
			errs = append(errs, err)
		} else {
			b.mapped = false
		}
	}
	if b.ctl != nil && !b.mapped {
		b.ctl.Close()
		b.ctl = nil
	}
	return errors.Join(errs...)
}

// cleanup undoes a failed attempt, so a retry starts clean.
func (b *booter) cleanup() {
	b.dropHandoff()
	if err := b.closeBoot(); err != nil {
		b.log.Printf("cleanup: %v", err)
	}
}
