// Package blockdev lists the block devices the kernel knows (from sysfs) with
// the identities a boot loader matches on: partition UUID and label from the
// GPT or MBR, and the content UUID and label a prober fills in.
package blockdev

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Device is one disk or partition.
type Device struct {
	Name         string // kernel name, e.g. vda1
	Path         string // node, e.g. /dev/vda1
	Major, Minor uint32
	Size         int64  // bytes
	Disk         string // parent disk name for a partition, "" for a disk
	Partition    int    // partition number, 0 for a disk
	PartUUID     string // GPT unique GUID or MBR "<signature>-<nn>"
	PartLabel    string // GPT partition name
	ReadOnly     bool
	// Filled by a content prober (e.g. the LUKS header).
	Type  string // "crypto_LUKS", …
	UUID  string
	Label string
}

// List reads sysRoot/class/block and returns the devices sorted by name.
// Partition identities come from the parent disk's partition table, read
// through devRoot. Loop and ram devices with no size are skipped.
func List(sysRoot, devRoot string) ([]Device, error) {
	dir := filepath.Join(sysRoot, "class", "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	var devs []Device
	tables := map[string]*partTable{}
	for _, e := range ents {
		name := e.Name()
		base := filepath.Join(dir, name)
		d := Device{Name: name, Path: filepath.Join(devRoot, name)}
		majmin := readAttr(base, "dev")
		ma, mi, ok := strings.Cut(majmin, ":")
		if !ok {
			continue
		}
		maj, _ := strconv.ParseUint(ma, 10, 32)
		min, _ := strconv.ParseUint(mi, 10, 32)
		d.Major, d.Minor = uint32(maj), uint32(min)
		sectors, _ := strconv.ParseInt(readAttr(base, "size"), 10, 64)
		if sectors == 0 {
			continue
		}
		d.Size = sectors * 512
		d.ReadOnly = readAttr(base, "ro") == "1"
		if p := readAttr(base, "partition"); p != "" {
			d.Partition, _ = strconv.Atoi(p)
			// The parent of /sys/class/block/vda1 -> ../../devices/.../vda/vda1
			if real, err := filepath.EvalSymlinks(base); err == nil {
				d.Disk = filepath.Base(filepath.Dir(real))
			}
			if d.Disk != "" {
				t, seen := tables[d.Disk]
				if !seen {
					t, _ = readPartTable(filepath.Join(devRoot, d.Disk))
					tables[d.Disk] = t
				}
				if t != nil {
					d.PartUUID, d.PartLabel = t.identity(d.Partition)
				}
			}
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	return devs, nil
}

func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Spec names the device to boot from, as romboot.boot= gives it:
// UUID=…, PARTUUID=…, LABEL=…, PARTLABEL=… or a /dev path.
type Spec struct {
	Key, Value string
}

// ParseSpec parses a device spec.
func ParseSpec(s string) (Spec, error) {
	if strings.HasPrefix(s, "/dev/") {
		return Spec{Key: "PATH", Value: s}, nil
	}
	k, v, ok := strings.Cut(s, "=")
	if ok && v != "" {
		switch strings.ToUpper(k) {
		case "UUID", "PARTUUID", "LABEL", "PARTLABEL":
			return Spec{Key: strings.ToUpper(k), Value: v}, nil
		}
	}
	return Spec{}, fmt.Errorf("device spec %q: want UUID=, PARTUUID=, LABEL=, PARTLABEL= or /dev/...", s)
}

func (s Spec) String() string {
	if s.Key == "PATH" {
		return s.Value
	}
	return s.Key + "=" + s.Value
}

// Matches reports whether d is the device the spec names. UUIDs compare
// without case; labels exactly.
func (s Spec) Matches(d Device) bool {
	switch s.Key {
	case "PATH":
		return d.Path == s.Value || "/dev/"+d.Name == s.Value
	case "UUID":
		return d.UUID != "" && strings.EqualFold(d.UUID, s.Value)
	case "PARTUUID":
		return d.PartUUID != "" && strings.EqualFold(d.PartUUID, s.Value)
	case "LABEL":
		return d.Label != "" && d.Label == s.Value
	case "PARTLABEL":
		return d.PartLabel != "" && d.PartLabel == s.Value
	}
	return false
}
