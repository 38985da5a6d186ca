package main

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"os"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/luks"
)

// errNotReady marks a device that could not be opened yet: it may still be
// coming up, so it is asked again, never taken for "not LUKS".
var errNotReady = errors.New("not ready")

// candidate is a LUKS device found while scanning, with its header or the
// reason the header is refused.
type candidate struct {
	dev blockdev.Device
	hdr *luks.Header
	err error
}

// finder looks for the LUKS /boot partition; its world is injected so the
// rules can be tested without disks or clocks.
type finder struct {
	list   func() ([]blockdev.Device, error)
	names  func() string // a cheap identity of the devices present, to poll while settling
	probe  func(*blockdev.Device) (*luks.Header, bool, error)
	now    func() time.Time
	sleep  func(time.Duration)
	warn   func(string, ...any)
	choose func(title string, items []string) (int, error)

	seen map[string]candidate // probe results by name and size, not-ready ones excluded
	isLK map[string]bool
}

const pollInterval = 50 * time.Millisecond

// find returns the partition romboot.boot names (or the recovery menu's
// pick), waiting up to wait for it; a name that matches nothing usable
// degrades, with a warning, to what auto-detection finds. Auto-detection
// waits for the block devices to settle (no change for settle) before it
// chooses, and asks when several LUKS partitions are present.
func (f *finder) find(spec *blockdev.Spec, wait, settle time.Duration) (candidate, error) {
	f.seen, f.isLK = map[string]candidate{}, map[string]bool{}
	deadline := f.now().Add(wait)
	if spec != nil {
		c, ok, err := f.named(*spec, deadline)
		if ok || err != nil {
			return c, err
		}
		// The disks had their time: settle briefly and take what is there.
		deadline = f.now().Add(settle)
	}
	return f.auto(deadline, settle, wait)
}

// named waits for the device spec names. ok is false when it should
// degrade to auto-detection (after a warning).
func (f *finder) named(spec blockdev.Spec, deadline time.Time) (candidate, bool, error) {
	for {
		devs, _ := f.list()
		for _, d := range devs {
			if !spec.Matches(d) && !(spec.Key != "PATH" && f.matchesProbed(spec, d)) {
				continue
			}
			c, isLUKS, ready := f.probed(d)
			if !ready {
				continue
			}
			if !isLUKS {
				f.warn("romboot.boot=%s: %s is not a LUKS volume; looking for one", spec, d.Path)
				return candidate{}, false, nil
			}
			if c.err != nil {
				return c, false, fmt.Errorf("%s: %w", c.dev.Path, c.err)
			}
			return c, true, nil
		}
		if f.now().After(deadline) {
			f.warn("romboot.boot=%s: no such device appeared; looking for any LUKS partition", spec)
			return candidate{}, false, nil
		}
		f.sleep(pollInterval)
	}
}

// matchesProbed matches UUID= and LABEL=, which only a probe fills in.
func (f *finder) matchesProbed(spec blockdev.Spec, d blockdev.Device) bool {
	if spec.Key != "UUID" && spec.Key != "LABEL" {
		return false
	}
	c, _, ready := f.probed(d)
	return ready && spec.Matches(c.dev)
}

// probed probes d once (again while it is not ready).
func (f *finder) probed(d blockdev.Device) (candidate, bool, bool) {
	key := fmt.Sprintf("%s/%d", d.Name, d.Size)
	if c, ok := f.seen[key]; ok {
		return c, f.isLK[key], true
	}
	h, isLUKS, err := f.probe(&d)
	if errors.Is(err, errNotReady) {
		return candidate{}, false, false
	}
	c := candidate{d, h, err}
	f.seen[key], f.isLK[key] = c, isLUKS
	return c, isLUKS, true
}

func (f *finder) auto(deadline time.Time, settle, wait time.Duration) (candidate, error) {
	var last string
	var changed time.Time
	var listErr error
	var found []candidate
	pending := true // a device was not ready: list again
	for {
		key := f.names()
		if key != last || pending {
			devs, err := f.list()
			if err != nil {
				listErr = err
			}
			found, pending = found[:0], false
			for _, d := range devs {
				c, isLUKS, ready := f.probed(d)
				if ready && isLUKS {
					found = append(found, c)
				}
				pending = pending || !ready
			}
		}
		now := f.now()
		if key != last || changed.IsZero() {
			last, changed = key, now
		}
		settled := now.Sub(changed) >= settle
		if len(found) > 0 && (settled || now.After(deadline)) {
			return f.pick(found)
		}
		if now.After(deadline) && settled {
			if listErr != nil {
				return candidate{}, fmt.Errorf("no LUKS partition found after %v: %w", wait, listErr)
			}
			return candidate{}, fmt.Errorf("no LUKS partition found after waiting %v for disks", wait)
		}
		f.sleep(pollInterval)
	}
}

// pick returns the only candidate, or asks.
func (f *finder) pick(found []candidate) (candidate, error) {
	c := found[0]
	if len(found) > 1 {
		var items []string
		for _, c := range found {
			desc := fmt.Sprintf("%s  UUID=%s %s", c.dev.Path, c.dev.UUID, c.dev.Label)
			if c.err != nil {
				desc += "  (" + c.err.Error() + ")"
			}
			items = append(items, desc)
		}
		n, err := f.choose("Several LUKS partitions found. Which one holds /boot?", items)
		if err != nil {
			return candidate{}, err
		}
		c = found[n]
	}
	if c.err != nil {
		return c, fmt.Errorf("%s: %w", c.dev.Path, c.err)
	}
	return c, nil
}

// bootDevices lists the block devices that can hold /boot (not our own
// mappings or the RAM disk).
func bootDevices() ([]blockdev.Device, error) {
	devs, err := blockdev.List("/sys", "/dev")
	out := devs[:0]
	for _, d := range devs {
		if !strings.HasPrefix(d.Name, "dm-") && !strings.HasPrefix(d.Name, "ram") {
			out = append(out, d)
		}
	}
	return out, err
}

// blockNames lists /sys/class/block: polling it is cheap, unlike a full
// List that reads partition tables.
func blockNames() string {
	ents, _ := os.ReadDir("/sys/class/block")
	var b strings.Builder
	for _, e := range ents {
		b.WriteString(e.Name())
		b.WriteByte(' ')
	}
	return b.String()
}

// findDevice finds the LUKS /boot partition for this boot.
func (b *booter) findDevice(o options) (blockdev.Device, *luks.Header, error) {
	spec := o.boot
	if b.fix.device != "" {
		spec = &blockdev.Spec{Key: "PATH", Value: b.fix.device}
	}
	f := &finder{
		list: bootDevices, names: blockNames, probe: probe, now: time.Now, sleep: time.Sleep, warn: b.warn,
		choose: func(title string, items []string) (n int, err error) {
			err = b.quiet(func() error { n, err = b.con.Choose(title, items); return err })
			return n, err
		},
	}
	c, err := f.find(spec, o.wait, o.settle)
	return c.dev, c.hdr, err
}
