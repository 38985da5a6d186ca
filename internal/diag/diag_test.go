package diag

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/httpd"
)

// fixtureRoot builds a small /proc and /sys tree.
func fixtureRoot(t *testing.T) string {
	root := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(s), 0o644)
	}
	write("proc/cmdline", "console=ttyS0 romboot.diag=0.0.0.0:80 romboot.keyfile=/k romboot.passphrase=hunter2\n")
	write("proc/uptime", "12.34 20.00\n")
	write("proc/mounts", "proc /proc proc rw 0 0\n/dev/dm-0 /boot ext4 ro,noload 0 0\n")
	write("proc/meminfo", "MemTotal:        1000 kB\nMemFree:          500 kB\nMemAvailable:     700 kB\n")
	write("proc/cpuinfo", "processor\t: 0\nmodel name\t: Test CPU <b>\n\nprocessor\t: 1\nmodel name\t: Test CPU <b>\n")
	write("sys/bus/pci/devices/0000:00:02.0/vendor", "0x8086\n")
	write("sys/bus/pci/devices/0000:00:02.0/device", "0x0126\n")
	write("sys/bus/pci/devices/0000:00:02.0/class", "0x030000\n")
	write("proc/net/if_inet6", "fe800000000000000000000000000001 02 40 20 80     eth0\n")
	os.MkdirAll(filepath.Join(root, "sys/class/net/eth0"), 0o755)
	write("sys/class/net/eth0/address", "52:54:00:12:34:56\n")
	write("sys/class/net/eth0/operstate", "up\n")
	os.MkdirAll(filepath.Join(root, "sys/class/block"), 0o755)
	return root
}

func TestFactsAndPages(t *testing.T) {
	log := bootlog.New(nil)
	end := log.Stage("unlocking")
	time.Sleep(2 * time.Millisecond)
	end(errors.New("wrong passphrase"))
	st := &State{}
	st.Set("waiting for passphrase")
	src := Sources{Version: "v-test", Log: log, State: st, Root: fixtureRoot(t)}
	f := Collect(src)
	if f.State != "waiting for passphrase" || f.UptimeSec != 12.34 || f.CPUs.Count != 2 || f.Memory.Available != 700*1024 ||
		len(f.PCI) != 1 || f.PCI[0].Vendor != "8086" || len(f.Mounts) != 2 || len(f.Timeline) != 1 || f.Timeline[0].Error == "" {
		t.Fatalf("facts %+v", f)
	}
	if strings.Contains(f.Cmdline, "hunter2") || strings.Contains(f.Cmdline, "/k") || !strings.Contains(f.Cmdline, "romboot.passphrase=<redacted>") {
		t.Fatalf("cmdline not redacted: %q", f.Cmdline)
	}
	if len(f.Net) != 1 || f.Net[0].MAC != "52:54:00:12:34:56" || len(f.Net[0].Addrs) == 0 || f.Net[0].Addrs[len(f.Net[0].Addrs)-1] != "fe80::1/64" {
		t.Fatalf("net %+v", f.Net)
	}
	page := string(AppendHTML(nil, f))
	for _, want := range []string{"waiting for passphrase", "v-test", "<svg", "unlocking", "FAILED: wrong passphrase", "Test CPU &lt;b&gt;", "8086:0126"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "Test CPU <b>") {
		t.Error("page has script or unescaped text")
	}
	h := Handler(src)
	for path, ctype := range map[string]string{"/": "text/html", "/diag.json": "application/json", "/log": "text/plain", "/healthz": "text/plain", "/dmesg": "text/plain"} {
		var resp httpd.Response
		resp.Reset()
		h.ServeHTTP(&httpd.Request{Path: []byte(path)}, &resp)
		if resp.Status != 200 || !strings.HasPrefix(resp.ContentType, ctype) {
			t.Errorf("%s: %d %s", path, resp.Status, resp.ContentType)
		}
		if path == "/diag.json" {
			var back Facts
			if err := json.Unmarshal(resp.Body, &back); err != nil || back.Version != "v-test" {
				t.Errorf("diag.json: %v", err)
			}
		}
	}
}
