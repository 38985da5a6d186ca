// Package diag gathers what romboot sees (kernel, command line, boot state
// and timeline, disks and LUKS headers, mounts, memory, CPUs, PCI devices,
// network, kernel log) and serves it over HTTP as a page readable in curl
// and w3m (no JavaScript), as JSON, and as plain text. It never shows a
// secret: values that look like keys are redacted wherever a command line
// can appear (the command line itself, the kernel log's "Kernel command
// line:", the boot log's edited command line) and LUKS headers are
// summarised without key material.
package diag

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/luks"
)

// State is the boot's state as the page shows it, safe for concurrent use.
type State struct {
	mu  sync.Mutex
	now string
}

// Set records the state ("waiting for passphrase", "unlocking", …).
func (s *State) Set(v string) {
	s.mu.Lock()
	s.now = v
	s.mu.Unlock()
}

// Get returns the state.
func (s *State) Get() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Sources are where the facts come from.
type Sources struct {
	Version string
	Log     *bootlog.Log // nil on a host
	State   *State       // nil on a host
	Root    string       // "/" normally; tests point it at a fixture tree
}

func (s Sources) path(p string) string { return filepath.Join(s.Root, p) }

// Facts is everything the page shows; the JSON field names are stable.
type Facts struct {
	Version     string      `json:"version"`
	Kernel      string      `json:"kernel"`
	Cmdline     string      `json:"cmdline"`
	UptimeSec   float64     `json:"uptime_seconds"`
	State       string      `json:"state,omitempty"`
	Timeline    []Stage     `json:"timeline"`
	Block       []Block     `json:"block_devices"`
	Mounts      []Mount     `json:"mounts"`
	Memory      Memory      `json:"memory"`
	CPUs        CPUs        `json:"cpus"`
	PCI         []PCIDevice `json:"pci_devices"`
	Net         []NetIf     `json:"network"`
	KernelLog   []string    `json:"kernel_log"`
	CollectedAt string      `json:"collected_at"`
}

// Stage is one step of the boot timeline.
type Stage struct {
	Name       string  `json:"name"`
	StartMS    float64 `json:"start_ms"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}

// Block is a disk or partition, with its LUKS summary if it has one.
type Block struct {
	Name      string       `json:"name"`
	Size      int64        `json:"size"`
	Disk      string       `json:"disk,omitempty"`
	Type      string       `json:"type,omitempty"`
	Label     string       `json:"label,omitempty"`
	UUID      string       `json:"uuid,omitempty"`
	PartUUID  string       `json:"partuuid,omitempty"`
	PartLabel string       `json:"partlabel,omitempty"`
	LUKS      *LUKSSummary `json:"luks,omitempty"`
}

// LUKSSummary describes a header; it holds no key material.
type LUKSSummary struct {
	Version  int      `json:"version"`
	Cipher   string   `json:"cipher"`
	Keyslots []string `json:"keyslots"`
	Error    string   `json:"error,omitempty"`
}

// Mount is a line of /proc/mounts.
type Mount struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	FSType  string `json:"fstype"`
	Options string `json:"options"`
}

// Memory is from /proc/meminfo, in bytes.
type Memory struct {
	Total     int64 `json:"total"`
	Available int64 `json:"available"`
	Free      int64 `json:"free"`
}

// CPUs is from /proc/cpuinfo.
type CPUs struct {
	Count int    `json:"count"`
	Model string `json:"model"`
}

// PCIDevice is from /sys/bus/pci/devices.
type PCIDevice struct {
	Slot   string `json:"slot"`
	Vendor string `json:"vendor"`
	Device string `json:"device"`
	Class  string `json:"class"`
}

// NetIf is a network interface with its addresses.
type NetIf struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac,omitempty"`
	State string   `json:"state,omitempty"`
	Addrs []string `json:"addresses"`
}

// Collect gathers the facts now. Each part that fails is left empty.
func Collect(src Sources) Facts {
	f := Facts{Version: src.Version, State: Redact(src.State.Get()), CollectedAt: time.Now().UTC().Format(time.RFC3339)}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile(src.path("proc/cmdline")); err == nil {
		f.Cmdline = Redact(cmdline.Parse(string(b)).Redacted())
	}
	if b, err := os.ReadFile(src.path("proc/uptime")); err == nil {
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			f.UptimeSec, _ = strconv.ParseFloat(fs[0], 64)
		}
	}
	f.Timeline = []Stage{}
	if src.Log != nil {
		for _, s := range src.Log.Stages() {
			f.Timeline = append(f.Timeline, Stage{s.Name, ms(s.Start), ms(s.Duration), s.Err})
		}
	}
	f.Block = blockDevices(src)
	f.Mounts = mounts(src)
	f.Memory = memory(src)
	f.CPUs = cpus(src)
	f.PCI = pciDevices(src)
	f.Net = Network(src)
	f.KernelLog = KernelLog(200)
	return f
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func blockDevices(src Sources) []Block {
	out := []Block{}
	devs, err := blockdev.List(src.path("sys"), src.path("dev"))
	if err != nil {
		return out
	}
	for _, d := range devs {
		b := Block{Name: d.Name, Size: d.Size, Disk: d.Disk, PartUUID: d.PartUUID, PartLabel: d.PartLabel}
		if f, err := os.Open(d.Path); err == nil {
			var magic [6]byte
			if _, err := f.ReadAt(magic[:], 0); err == nil && luks.IsLUKS(magic[:]) {
				b.Type = "crypto_LUKS"
				h, err := luks.Open(f, d.Size)
				b.LUKS = summarize(h, err)
				if err == nil {
					b.UUID, b.Label = h.UUID, h.Label
				}
			}
			f.Close()
		}
		out = append(out, b)
	}
	return out
}

func summarize(h *luks.Header, err error) *LUKSSummary {
	if err != nil {
		return &LUKSSummary{Error: err.Error()}
	}
	s := &LUKSSummary{Version: h.Version, Cipher: h.Cipher, Keyslots: []string{}}
	for _, k := range h.Keyslots {
		s.Keyslots = append(s.Keyslots, strconv.Itoa(k.Index)+": "+k.KDF.String())
	}
	return s
}

func mounts(src Sources) []Mount {
	out := []Mount{}
	b, err := os.ReadFile(src.path("proc/mounts"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			out = append(out, Mount{f[0], f[1], f[2], f[3]})
		}
	}
	return out
}

func memory(src Sources) Memory {
	var m Memory
	b, err := os.ReadFile(src.path("proc/meminfo"))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			m.Total = n * 1024
		case "MemAvailable:":
			m.Available = n * 1024
		case "MemFree:":
			m.Free = n * 1024
		}
	}
	return m
}

func cpus(src Sources) CPUs {
	var c CPUs
	f, err := os.Open(src.path("proc/cpuinfo"))
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k = strings.TrimSpace(k)
		if !ok {
			continue
		}
		switch k {
		case "processor":
			c.Count++
		case "model name":
			c.Model = strings.TrimSpace(v)
		}
	}
	return c
}

func pciDevices(src Sources) []PCIDevice {
	out := []PCIDevice{}
	dir := src.path("sys/bus/pci/devices")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	attr := func(slot, name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, slot, name))
		return strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
	}
	for _, e := range ents {
		out = append(out, PCIDevice{Slot: e.Name(), Vendor: attr(e.Name(), "vendor"), Device: attr(e.Name(), "device"), Class: attr(e.Name(), "class")})
	}
	return out
}

// Network lists the network interfaces with their addresses.
func Network(src Sources) []NetIf {
	out := []NetIf{}
	dir := src.path("sys/class/net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	v4 := ipv4Addrs()
	v6 := ipv6Addrs(src)
	for _, e := range ents {
		read := func(n string) string {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name(), n))
			return strings.TrimSpace(string(b))
		}
		n := NetIf{Name: e.Name(), MAC: read("address"), State: read("operstate"), Addrs: []string{}}
		n.Addrs = append(n.Addrs, v4[e.Name()]...)
		n.Addrs = append(n.Addrs, v6[e.Name()]...)
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ipv4Addrs asks the kernel for each interface's IPv4 address (SIOCGIFADDR)
// through a datagram socket: called only while serving diagnostics.
func ipv4Addrs() map[string][]string {
	out := map[string][]string{}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return out
	}
	defer unix.Close(fd)
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		ifr, err := unix.NewIfreq(e.Name())
		if err != nil {
			continue
		}
		if unix.IoctlIfreq(fd, unix.SIOCGIFADDR, ifr) != nil {
			continue
		}
		ip, err := ifr.Inet4Addr()
		if err != nil {
			continue
		}
		mask := ""
		if m, err := unix.NewIfreq(e.Name()); err == nil && unix.IoctlIfreq(fd, unix.SIOCGIFNETMASK, m) == nil {
			if mb, err := m.Inet4Addr(); err == nil {
				ones := 0
				for _, b := range mb {
					for ; b != 0; b <<= 1 {
						ones++
					}
				}
				mask = "/" + strconv.Itoa(ones)
			}
		}
		out[e.Name()] = append(out[e.Name()], strconv.Itoa(int(ip[0]))+"."+strconv.Itoa(int(ip[1]))+"."+strconv.Itoa(int(ip[2]))+"."+strconv.Itoa(int(ip[3]))+mask)
	}
	return out
}

func ipv6Addrs(src Sources) map[string][]string {
	out := map[string][]string{}
	b, err := os.ReadFile(src.path("proc/net/if_inet6"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || len(f[0]) != 32 {
			continue
		}
		var a [16]byte
		if _, err := hex.Decode(a[:], []byte(f[0])); err != nil {
			continue
		}
		addr := netip.AddrFrom16(a).String()
		plen, _ := strconv.ParseInt(f[2], 16, 32)
		out[f[5]] = append(out[f[5]], addr+"/"+strconv.Itoa(int(plen)))
	}
	return out
}

// KernelLog returns the last n lines of the kernel's log buffer, redacted.
func KernelLog(n int) []string {
	size, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || size <= 0 || size > 16<<20 {
		size = 512 << 10
	}
	buf := make([]byte, size)
	k, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil || k <= 0 {
		return []string{}
	}
	lines := strings.Split(strings.TrimRight(string(buf[:k]), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		// Drop the "<6>" priority prefix syslog(2) keeps.
		if len(l) > 3 && l[0] == '<' {
			if j := strings.IndexByte(l, '>'); j > 0 && j < 5 {
				l = l[j+1:]
			}
		}
		lines[i] = Redact(l)
	}
	return lines
}

// bytesHuman formats a size for people.
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	var b bytes.Buffer
	b.WriteString(strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64))
	b.WriteString(" " + string("KMGTPE"[exp]) + "iB")
	return b.String()
}
