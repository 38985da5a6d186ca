package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
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

// config is what the kernel command line says.
type config struct {
	spec    *blockdev.Spec
	tries   int
	wait    time.Duration
	cmdline string // fallback command line for vmlinuz-* entries
	keyslot int
	entry   string        // romboot.entry=
	append  string        // romboot.cmdline_append=
	timeout time.Duration // romboot.timeout=, -1 when not given
}

func readConfig() (config, error) {
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return config{}, fmt.Errorf("reading /proc/cmdline: %w", err)
	}
	return parseConfig(string(raw))
}

// parseConfig reads the romboot.* parameters of a kernel command line.
func parseConfig(raw string) (config, error) {
	p := cmdline.Parse(raw)
	c := config{tries: 3, wait: 10 * time.Second, keyslot: -1, timeout: -1}
	if v, ok := p.Get("romboot.boot"); ok {
		s, err := blockdev.ParseSpec(v)
		if err != nil {
			return c, fmt.Errorf("romboot.boot: %w", err)
		}
		c.spec = &s
	}
	if v, ok := p.Get("romboot.tries"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, fmt.Errorf("romboot.tries=%q: want a number from 1 to 100", v)
		}
		c.tries = n
	}
	if v, ok := p.Get("romboot.wait"); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 || n > 600 {
			return c, fmt.Errorf("romboot.wait=%q: want seconds from 0 to 600", v)
		}
		c.wait = time.Duration(n * float64(time.Second))
	}
	if v, ok := p.Get("romboot.keyslot"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 31 {
			return c, fmt.Errorf("romboot.keyslot=%q: want 0 to 31", v)
		}
		c.keyslot = n
	}
	if v, ok := p.Get("romboot.timeout"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 30 {
			return c, fmt.Errorf("romboot.timeout=%q: want seconds from 0 to 30", v)
		}
		c.timeout = time.Duration(n) * time.Second
	}
	c.cmdline, _ = p.Get("romboot.cmdline")
	c.entry, _ = p.Get("romboot.entry")
	c.append, _ = p.Get("romboot.cmdline_append")
	return c, nil
}

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
	ctl     *dm.Control
	ho      *handoffState // the passphrase handoff (handoff.go)
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
	cfg, err := readConfig()
	if err != nil {
		return err
	}
	var dev blockdev.Device
	var hdr *luks.Header
	if err := b.stage("finding the LUKS /boot partition", func() error {
		dev, hdr, err = b.findDevice(cfg)
		return err
	}); err != nil {
		return err
	}
	b.log.Printf("/boot is %s: LUKS%d %s, UUID %s", dev.Path, hdr.Version, hdr.Cipher, hdr.UUID)
	for _, w := range hdr.Warnings {
		b.log.Printf("warning: %s", w)
	}
	var mapped string
	if err := b.unlockAndMap(cfg, dev, &mapped); err != nil {
		return err
	}
	if err := b.stage("mounting /boot read-only", func() error { return b.mountBoot(mapped) }); err != nil {
		return err
	}
	var menu *bootentry.Menu
	if err := b.stage("reading the boot entries", func() error {
		var err error
		menu, err = bootentry.Find(os.DirFS(bootMount), bootentry.Options{FallbackCmdline: cfg.cmdline, CmdlineAppend: cfg.append, Entry: cfg.entry})
		if err == nil {
			b.log.Printf("%d entries from %s, default %q", len(menu.Entries), menu.Entries[0].Source, menu.Entries[menu.Default].Title)
		}
		return err
	}); err != nil {
		return err
	}
	timeout := cfg.timeout
	if timeout < 0 && menu.Timeout >= 0 {
		timeout = time.Duration(menu.Timeout) * time.Second
	}
	b.prepareHandoff(menu)
	b.state.Set("boot menu")
	entry, err := bootmenu.Choose(b.con, menu, timeout)
	if err != nil {
		return err
	}
	if entry.Edited {
		b.log.Printf("command line edited at the menu")
	}
	b.log.Printf("booting %q: %s initrd %v cmdline %q", entry.Title, entry.Kernel, entry.Initrds, entry.Cmdline)
	b.state.Set("booting " + entry.Title)
	if err := b.stage("loading the kernel (kexec_file_load)", func() error {
		var initrds []string
		for _, in := range entry.Initrds {
			initrds = append(initrds, bootMount+in)
		}
		return b.loadKernel(entry, initrds)
	}); err != nil {
		return err
	}
	if err := b.stage("closing /boot", b.closeBoot); err != nil {
		return err
	}
	fmt.Fprint(b.con.Out, b.log.Timeline())
	b.stopDiag()
	b.log.Printf("jumping to %s", entry.Kernel)
	return kexec.Exec()
}

// candidate is a LUKS device found while scanning, with its header or the
// reason the header is refused.
type candidate struct {
	dev blockdev.Device
	hdr *luks.Header
	err error
}

// findDevice waits for the LUKS partition: the one romboot.boot names, or
// the only one present (several: ask).
func (b *booter) findDevice(cfg config) (blockdev.Device, *luks.Header, error) {
	deadline := time.Now().Add(cfg.wait)
	var found []candidate
	var lastErr error
	for {
		found = found[:0]
		devs, err := blockdev.List("/sys", "/dev")
		if err != nil {
			lastErr = err
		}
		for _, d := range devs {
			if strings.HasPrefix(d.Name, "dm-") || strings.HasPrefix(d.Name, "ram") {
				continue
			}
			h, isLUKS, err := probe(&d)
			if cfg.spec != nil {
				if !cfg.spec.Matches(d) {
					continue
				}
				if !isLUKS {
					return d, nil, fmt.Errorf("%s (%s) is not a LUKS volume", d.Path, cfg.spec)
				}
				if err != nil {
					return d, nil, fmt.Errorf("%s: %w", d.Path, err)
				}
				return d, h, nil
			}
			if isLUKS {
				found = append(found, candidate{d, h, err})
			}
		}
		if len(found) > 0 && cfg.spec == nil {
			break
		}
		if time.Now().After(deadline) {
			if cfg.spec != nil {
				return blockdev.Device{}, nil, fmt.Errorf("no LUKS partition matches romboot.boot=%s after %v", cfg.spec, cfg.wait)
			}
			if lastErr != nil {
				return blockdev.Device{}, nil, fmt.Errorf("no LUKS partition found after %v: %w", cfg.wait, lastErr)
			}
			return blockdev.Device{}, nil, fmt.Errorf("no LUKS partition found after waiting %v for disks", cfg.wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pick := found[0]
	if len(found) > 1 {
		var items []string
		for _, c := range found {
			desc := fmt.Sprintf("%s  UUID=%s %s", c.dev.Path, c.dev.UUID, c.dev.Label)
			if c.err != nil {
				desc += "  (" + c.err.Error() + ")"
			}
			items = append(items, desc)
		}
		n, err := b.con.Choose("Several LUKS partitions found. Which one holds /boot?", items)
		if err != nil {
			return blockdev.Device{}, nil, err
		}
		pick = found[n]
	}
	if pick.err != nil {
		return pick.dev, nil, fmt.Errorf("%s: %w", pick.dev.Path, pick.err)
	}
	return pick.dev, pick.hdr, nil
}

// probe reads a device's LUKS header, filling in its content identity. It
// reports a device with a LUKS magic whose header is refused as LUKS with
// the error, so the user learns why it cannot be opened.
func probe(d *blockdev.Device) (*luks.Header, bool, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		return nil, false, nil
	}
	defer f.Close()
	h, err := luks.Open(f, d.Size)
	if errors.Is(err, luks.ErrNotLUKS) {
		return nil, false, nil
	}
	if err != nil {
		var magic [6]byte
		if _, rerr := f.ReadAt(magic[:], 0); rerr != nil || !luks.IsLUKS(magic[:]) {
			return nil, false, nil
		}
		d.Type = "crypto_LUKS"
		return nil, true, err
	}
	d.Type, d.UUID, d.Label = "crypto_LUKS", h.UUID, h.Label
	return h, true, nil
}

// unlockAndMap asks for the passphrase (up to cfg.tries times), recovers the
// volume key and maps the volume read-only. The key is wiped on every path.
func (b *booter) unlockAndMap(cfg config, dev blockdev.Device, mapped *string) error {
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
		pass, err := b.con.ReadPassphrase(fmt.Sprintf("Enter passphrase for %s: ", dev.Path))
		if err != nil {
			return fmt.Errorf("reading the passphrase: %w", err)
		}
		b.state.Set("unlocking")
		end := b.log.Stage("unlocking")
		vol, err = hdr.Unlock(pass, luks.UnlockOptions{
			Keyslot: cfg.keyslot,
			BeforeKDF: func(ks luks.Keyslot) {
				fmt.Fprintf(b.con.Out, "Unlocking (%s)…\n", ks.KDF)
			},
		})
		b.keepPassphrase(pass, dev.Path, err)
		luks.Wipe(pass)
		end(err)
		if err == nil {
			b.log.Printf("keyslot %d opened", vol.Keyslot)
			break
		}
		if !errors.Is(err, luks.ErrWrongPassphrase) {
			return err
		}
		if try >= cfg.tries {
			return fmt.Errorf("wrong passphrase, %d tries used: nothing was booted", cfg.tries)
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

// mountBoot mounts the mapped volume read-only: ext4 without replaying the
// journal (noload), else vfat.
func (b *booter) mountBoot(dev string) error {
	if err := os.MkdirAll(bootMount, 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
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

// closeBoot unmounts /boot and removes the mapping.
func (b *booter) closeBoot() error {
	var errs []error
	if b.mounted {
		if err := unix.Unmount(bootMount, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", bootMount, err))
		} else {
			b.mounted = false
		}
	}
	if b.mapped && b.ctl != nil {
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
