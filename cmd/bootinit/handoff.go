//go:build !nohandoff

package main

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/handoff"
	"github.com/romboot/romboot/internal/initrd"
	"github.com/romboot/romboot/internal/kexec"
	"github.com/romboot/romboot/internal/luks"
)

// The passphrase handoff (romboot.handoff=auto|off, default auto): the
// installed system's initramfs gets the /boot passphrase as a key file for
// each of its LUKS volumes the passphrase opens, in one archive appended to
// its initrd in memory, so the user types the passphrase once. The check
// runs while the boot menu counts down, one KDF per volume.

// maxInitrdBytes bounds what is read of an entry's initrds to look inside.
const maxInitrdBytes = 512 << 20

// handoffState lives from the unlocking of /boot to the kexec (or the end
// of the attempt): the passphrase copy, the check running in the
// background, the verdict per volume.
type handoffState struct {
	pass    []byte
	bootDev string           // the /boot volume's device: already known to open
	checked map[string]error // LUKS device path → nil when the passphrase opens it
	prep    *handoffPrep     // made for the default entry while the menu counts down
}

// handoffPrep is what was learned for one entry.
type handoffPrep struct {
	key   string // the entry it was made for
	plan  *handoff.Plan
	open  []handoff.Volume
	notes []string // said once the menu is gone
	done  chan struct{}
}

// keepPassphrase keeps a copy of the passphrase that opened /boot on dev,
// for the handoff; nothing when the handoff is off or unlocking failed.
func (b *booter) keepPassphrase(pass []byte, dev string, unlockErr error) {
	b.dropHandoff()
	if unlockErr != nil || b.opts.handoff == "off" {
		return
	}
	b.ho = &handoffState{pass: append([]byte(nil), pass...), bootDev: dev, checked: map[string]error{}}
}

// prepareHandoff starts finding and checking the volumes of the menu's
// default entry, in the background, silently (the menu owns the console).
func (b *booter) prepareHandoff(m *bootentry.Menu) {
	if b.ho == nil || m == nil || m.Default < 0 || m.Default >= len(m.Entries) {
		return
	}
	e := m.Entries[m.Default]
	p := &handoffPrep{key: entryKey(e), done: make(chan struct{})}
	b.ho.prep = p
	ho := b.ho
	go func() {
		defer close(p.done)
		defer func() {
			if r := recover(); r != nil {
				p.plan, p.open = nil, nil
				p.notes = append(p.notes, fmt.Sprintf("internal error (please report): %v", r))
			}
		}()
		ho.prepare(e, p)
	}()
}

func entryKey(e bootentry.Entry) string {
	return e.Kernel + "\x00" + strings.Join(e.Initrds, "\x00") + "\x00" + e.Cmdline
}

// prepare finds the volumes e's initrd will ask for and checks the
// passphrase on each.
func (ho *handoffState) prepare(e bootentry.Entry, p *handoffPrep) {
	data, err := readInitrds(e.Initrds)
	if err != nil {
		p.notes = append(p.notes, err.Error())
		return
	}
	plan, err := handoff.Find(data, e.Cmdline, initrd.Limits{})
	if err != nil {
		p.notes = append(p.notes, err.Error())
		return
	}
	p.plan = plan
	p.notes = append(p.notes, plan.Notes...)
	for _, v := range plan.Volumes {
		if err := ho.check(v); err != nil {
			p.notes = append(p.notes, fmt.Sprintf("volume %s (%s): %v; its initramfs will ask for it", v.Name, v.Source, err))
			continue
		}
		p.open = append(p.open, v)
	}
}

func readInitrds(paths []string) ([]byte, error) {
	var data []byte
	root, err := openInRoot(bootMount)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, p := range paths {
		f, err := root.open(strings.TrimPrefix(p, "/"))
		if err != nil {
			return nil, fmt.Errorf("reading the initrd: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxInitrdBytes+1-int64(len(data))))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the initrd %s: %w", p, err)
		}
		data = append(data, b...)
		if len(data) > maxInitrdBytes {
			return nil, fmt.Errorf("initrds larger than %d MiB: not looked into", maxInitrdBytes>>20)
		}
	}
	return data, nil
}

// errNotHere: no LUKS device matches the volume's source.
var errNotHere = errors.New("no LUKS device matches it")

// check opens the volume's LUKS header and runs one KDF: the first keyslot
// in priority order. The verdict is kept per device, so a volume is
// checked once however many entries name it.
func (ho *handoffState) check(v handoff.Volume) error {
	dev, err := findVolume(v.Source)
	if err != nil {
		return err
	}
	if res, ok := ho.checked[dev.Path]; ok {
		return res
	}
	res := ho.unlock(dev)
	ho.checked[dev.Path] = res
	return res
}

func (ho *handoffState) unlock(dev blockdev.Device) error {
	if dev.Path == ho.bootDev {
		return nil // /boot itself: this passphrase opened it
	}
	f, err := os.Open(dev.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := luks.Open(f, dev.Size)
	if err != nil {
		return err
	}
	slot := firstKeyslot(h)
	if slot < 0 {
		return luks.ErrNoKeyslot
	}
	vol, err := h.Unlock(ho.pass, luks.UnlockOptions{Keyslot: slot})
	vol.Wipe()
	if errors.Is(err, luks.ErrWrongPassphrase) {
		return fmt.Errorf("the passphrase does not open keyslot %d", slot)
	}
	return err
}

// firstKeyslot is the keyslot Unlock would try first: highest priority,
// then lowest index; -1 when none may be tried.
func firstKeyslot(h *luks.Header) int {
	ks := append([]luks.Keyslot(nil), h.Keyslots...)
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].Priority > ks[j].Priority })
	for _, k := range ks {
		if k.Priority > 0 && k.Bound && k.Problem == "" {
			return k.Index
		}
	}
	return -1
}

// findVolume finds the LUKS device a crypttab source names.
func findVolume(src string) (blockdev.Device, error) {
	for pre, key := range map[string]string{"/dev/disk/by-uuid/": "UUID=", "/dev/disk/by-partuuid/": "PARTUUID=", "/dev/disk/by-label/": "LABEL=", "/dev/disk/by-partlabel/": "PARTLABEL="} {
		if v, ok := strings.CutPrefix(src, pre); ok {
			src = key + v
		}
	}
	spec, err := blockdev.ParseSpec(src)
	if err != nil {
		return blockdev.Device{}, err
	}
	devs, err := blockdev.List("/sys", "/dev")
	if err != nil {
		return blockdev.Device{}, err
	}
	for _, d := range devs {
		if strings.HasPrefix(d.Name, "dm-") || strings.HasPrefix(d.Name, "ram") {
			continue
		}
		if _, isLUKS, _ := probe(&d); isLUKS && spec.Matches(d) {
			return d, nil
		}
	}
	return blockdev.Device{}, errNotHere
}

// load loads the opened kernel and initrds for the kexec, with the handoff
// archive appended to its initrds when there is one to hand over. The
// archive and the passphrase are wiped once the kernel has copied them.
func (b *booter) load(kernel *os.File, initrds []*os.File, e bootentry.Entry) error {
	arc, vols := b.handoffArchive(e)
	defer b.dropHandoff()
	if arc == nil {
		return kexec.LoadFiles(kernel, initrds, e.Cmdline)
	}
	defer handoff.Wipe(arc)
	f, err := kexec.ConcatFiles(initrds)
	if err != nil {
		return err
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	pad := int64(handoff.Padding(end))
	// Two writes: the archive is never copied into another buffer.
	if _, err := f.WriteAt(make([]byte, pad), end); err != nil {
		return fmt.Errorf("appending the handoff archive: %w", err)
	}
	if _, err := f.WriteAt(arc, end+pad); err != nil {
		return fmt.Errorf("appending the handoff archive: %w", err)
	}
	// Wipe the memfd's copy whatever happens (the kernel has its own).
	defer func() {
		f.WriteAt(make([]byte, int64(len(arc))+pad), end)
		unix.Ftruncate(int(f.Fd()), 0)
	}()
	if err := kexec.LoadFiles(kernel, []*os.File{f}, e.Cmdline); err != nil {
		return err
	}
	for _, v := range vols {
		b.log.Printf("handoff: volume %s will open with the same passphrase (%s)", v.Name, v.Source)
	}
	return nil
}

// handoffArchive waits for (or makes) the check for entry e, says what was
// found, and builds the archive; nil when there is nothing to hand over.
func (b *booter) handoffArchive(e bootentry.Entry) ([]byte, []handoff.Volume) {
	ho := b.ho
	if ho == nil {
		return nil, nil
	}
	p := ho.prep
	if p != nil {
		<-p.done
	}
	if p == nil || p.key != entryKey(e) {
		end := b.log.Stage("checking the passphrase on the entry's volumes")
		p = &handoffPrep{key: entryKey(e)}
		ho.prepare(e, p)
		end(nil)
	}
	for _, n := range p.notes {
		b.log.Printf("handoff: %s", n)
	}
	if p.plan == nil || len(p.open) == 0 {
		return nil, nil
	}
	arc, err := p.plan.Archive(p.open, ho.pass)
	if err != nil {
		b.log.Printf("handoff: %v", err)
		return nil, nil
	}
	return arc, p.open
}

// dropHandoff waits for a running check and wipes the passphrase copy.
func (b *booter) dropHandoff() {
	if b.ho == nil {
		return
	}
	if p := b.ho.prep; p != nil && p.done != nil {
		<-p.done
	}
	luks.Wipe(b.ho.pass)
	b.ho = nil
}
