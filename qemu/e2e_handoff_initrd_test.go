package qemu_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/handoff"
	"github.com/romboot/romboot/internal/initrd"
	"github.com/romboot/romboot/internal/luks"
	"github.com/romboot/romboot/internal/testutil"
)

// The handoff archive on its own, without romboot's kernel: the installed
// system's kernel booted by QEMU directly (-kernel/-initrd), with the
// initrd exactly as romboot hands it over (the distribution's initrd,
// padding, the archive handoff builds for the volumes romboot's LUKS code
// checked). The distribution's initramfs must open root without asking.
// Against it, the same initrd without the archive, where it asks.
func TestDebianInitrdTakesHandoffArchive(t *testing.T) {
	if os.Getenv("ROMBOOT_E2E") != "1" {
		t.Skip("end-to-end test: run with ROMBOOT_E2E=1 (needs no romboot payload)")
	}
	needInstallE2E(t)
	for _, flavor := range []string{"initramfs-tools", "dracut"} {
		t.Run(flavor, func(t *testing.T) {
			img := installImage(t, flavor, passphrase)
			boot := extractBoot(t, flavor)
			menu, err := bootentry.Find(os.DirFS(boot), bootentry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := menu.Entries[menu.Default]
			rd, err := os.ReadFile(filepath.Join(boot, e.Initrds[0]))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := handoff.Find(rd, e.Cmdline, initrd.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Volumes) != 1 {
				t.Fatalf("volumes %+v (notes %q), want root", plan.Volumes, plan.Notes)
			}
			checkRootPassphrase(t, img)
			arc, err := plan.Archive(plan.Volumes, []byte(passphrase))
			if err != nil {
				t.Fatal(err)
			}
			withArc := filepath.Join(t.TempDir(), "initrd-handoff")
			all := append(append(append([]byte(nil), rd...), make([]byte, handoff.Padding(int64(len(rd))))...), arc...)
			if err := os.WriteFile(withArc, all, 0o600); err != nil {
				t.Fatal(err)
			}
			kernel := filepath.Join(boot, e.Kernel)
			asked := bootDirect(t, flavor, img, kernel, filepath.Join(boot, e.Initrds[0]), e.Cmdline, true)
			handed := bootDirect(t, flavor, img, kernel, withArc, e.Cmdline, false)
			t.Logf("%s (%s): QEMU start to the marker: asked %v, handed over %v", flavor, plan.Volumes[0].Name, asked.Round(time.Second), handed.Round(time.Second))
		})
	}
}

// checkRootPassphrase runs romboot's check (one KDF) on the image's root
// volume, read from partition 2 of the image file.
func checkRootPassphrase(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, "sgdisk"), "-i", "2", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	first := regexp.MustCompile(`First sector: (\d+)`).FindSubmatch(out)
	last := regexp.MustCompile(`Last sector: (\d+)`).FindSubmatch(out)
	if first == nil || last == nil {
		t.Fatalf("sgdisk: %s", out)
	}
	a, _ := strconv.ParseInt(string(first[1]), 10, 64)
	b, _ := strconv.ParseInt(string(last[1]), 10, 64)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := (b - a + 1) * 512
	h, err := luks.Open(io.NewSectionReader(f, a*512, size), size)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := h.Unlock([]byte(passphrase), luks.UnlockOptions{Keyslot: 0})
	if err != nil {
		t.Fatalf("romboot's LUKS code does not open root with the passphrase: %v", err)
	}
	vol.Wipe()
	if _, err := h.Unlock([]byte(wrongPass), luks.UnlockOptions{Keyslot: 0}); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("a wrong passphrase: %v", err)
	}
}

// extractBoot unpacks /boot of the cached installed tree.
func extractBoot(t *testing.T, flavor string) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	tars, _ := filepath.Glob(filepath.Join(cache, "romboot/install/debian12-"+flavor+"-*.tar"))
	if len(tars) == 0 {
		t.Fatalf("no cached tree for %s", flavor)
	}
	var newest string
	var when time.Time
	for _, p := range tars {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(when) {
			newest, when = p, st.ModTime()
		}
	}
	f, err := os.Open(newest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(strings.TrimPrefix(h.Name, "./"), "boot/")
		if !ok || name == "" || strings.Contains(name, "..") {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// bootDirect boots the installed kernel and initrd on a copy of img, types
// the passphrase when the initramfs asks (ask), and returns the time from
// QEMU's start to the marker.
func bootDirect(t *testing.T, flavor, img, kernel, rd, cmdline string, ask bool) time.Duration {
	t.Helper()
	disk := copySparse(t, img)
	before := stableRegion(t, disk)
	start := time.Now()
	v := boot(t, "--kernel", kernel, "--initrd", rd, "--disk", disk, "--mem", "2048", "--append", cmdline)
	if ask {
		answerInitramfs(v, flavor, passphrase)
	}
	took, _ := installedUp(t, v, flavor, disk, before, start, ask)
	return took
}
