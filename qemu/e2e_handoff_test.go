package qemu_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/testutil"
)

// The passphrase handoff, proven on real Debian 12 installations made by
// scripts/mkinstall from Debian's packages: the installed initramfs
// (initramfs-tools with cryptsetup-initramfs, or dracut with
// systemd-cryptsetup) opens the encrypted root without asking.

const (
	otherRootPass = "Other-root-Pass-9917" // a root volume that does not share the /boot passphrase
	installMarker = "ROMBOOT-INSTALLED-UP root="
	bootLUKSUUID  = "5e1f0000-0000-4000-8000-00000000b1c5" // scripts/mkinstall's /boot
	// A real Debian under TCG: kexec of the distribution kernel, its
	// initramfs, systemd up to multi-user.target, on a loaded machine.
	installedTimeout = 15 * time.Minute
)

// The prompts of the installed systems' initramfs.
var initramfsPrompt = map[string]string{
	"initramfs-tools": "Please unlock disk ",
	"dracut":          "Please enter passphrase for disk ",
}

// answerInitramfs waits for the installed initramfs's prompt and types
// pass, as a person does: only once the prompt is complete and has had a
// moment. systemd's tty agent (dracut) writes "Please enter passphrase for
// disk …:" before it turns the terminal's echo off and " (press TAB for no
// echo)" after; keys that arrive in between are echoed by the terminal in
// clear (seen under TCG: the whole passphrase on the console).
func answerInitramfs(v *vm, flavor, pass string) {
	v.t.Helper()
	v.Expect(initramfsPrompt[flavor], installedTimeout)
	if flavor == "dracut" {
		v.Expect("(press TAB for no echo)", time.Minute)
	}
	time.Sleep(2 * time.Second)
	v.Type(pass)
}

// needInstallE2E gates the boots of real Debian installations: each takes
// minutes under TCG, more than `make test` can spend, so they run with
// `make test-install` (ROMBOOT_E2E_INSTALL=1).
func needInstallE2E(t *testing.T) {
	t.Helper()
	if os.Getenv("ROMBOOT_E2E_INSTALL") != "1" {
		t.Skip("boots real Debian installations: run with `make test-install` (ROMBOOT_E2E_INSTALL=1)")
	}
}

var (
	installMu     sync.Mutex
	installImages = map[string]string{}
)

// installImage returns a real Debian 12 installation image (made once per
// test process; the installed tree is cached by mkinstall itself).
func installImage(t *testing.T, flavor, rootPass string) string {
	t.Helper()
	testutil.NeedTool(t, "mmdebstrap")
	installMu.Lock()
	defer installMu.Unlock()
	key := flavor + "/" + rootPass
	if p, ok := installImages[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "romboot-e2e-install-")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, flavor+".img")
	args := []string{"-o", p, "--initramfs", flavor}
	if rootPass != passphrase {
		args = append(args, "--root-passphrase", rootPass)
	}
	cmd := exec.Command("../scripts/mkinstall", args...)
	cmd.Env = append(os.Environ(), "ROMBOOT_PASSPHRASE="+passphrase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkinstall %v: %v\n%s", args, err, out)
	}
	installImages[key] = p
	return p
}

// copySparse copies an image keeping its holes (the images are mostly
// empty space).
func copySparse(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// stableRegion hashes what nobody may write during a boot: the partition
// table, the whole /boot partition and root's LUKS2 header (the first
// 16 MiB of partition 2). Only root's encrypted data may change: the
// installed system writes its filesystem.
func stableRegion(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, "sgdisk"), "-i", "2", img).Output()
	if err != nil {
		t.Fatalf("sgdisk -i 2: %v", err)
	}
	m := regexp.MustCompile(`First sector: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("sgdisk -i 2: no first sector in %q", out)
	}
	start, _ := strconv.ParseInt(string(m[1]), 10, 64)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, start*512+16<<20)); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if _, err := io.Copy(h, io.NewSectionReader(f, st.Size()-33*512, 33*512)); err != nil { // backup GPT
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// bootInstalled boots a copy of img with romboot, types the passphrase at
// romboot's prompt, and when initramfs asks (askRoot), types rootPass
// there. It returns the time from QEMU's start to the installed system's
// marker and the root device the installed system reports.
// romboot's console must say wantSay after the passphrase ("" for nothing).
// romboot.boot= names /boot, as a user with two LUKS partitions does.
func bootInstalled(t *testing.T, flavor, img, rootPass string, askRoot bool, wantSay, appendExtra string) (time.Duration, string) {
	t.Helper()
	disk := copySparse(t, img)
	before := stableRegion(t, disk)
	start := time.Now()
	v := boot(t, "--disk", disk, "--mem", "2048", "--append", strings.TrimSpace("romboot.boot=UUID="+bootLUKSUUID+" "+appendExtra))
	v.Expect(prompt, 3*promptTimeout)
	v.Type(passphrase)
	if wantSay != "" {
		v.Expect(wantSay, 5*time.Minute)
	}
	if askRoot {
		answerInitramfs(v, flavor, rootPass)
	}
	return installedUp(t, v, flavor, disk, before, start, askRoot)
}

// installedUp waits for the installed system's marker and checks what no
// boot of it may do: show a secret, ask for a passphrase that was handed
// over (asked false), change the partition table, /boot or root's LUKS
// header, or come up without root on an opened LUKS volume. It returns the
// time since start and the root device the system reports.
func installedUp(t *testing.T, v *vm, flavor, disk, before string, start time.Time, asked bool) (time.Duration, string) {
	t.Helper()
	v.Expect(installMarker, installedTimeout)
	took := time.Since(start)
	root := v.Line(10 * time.Second)
	v.WaitExit(5 * time.Minute)
	tr := v.Transcript()
	assertNoSecrets(t, tr)
	if strings.Contains(tr, otherRootPass) {
		t.Errorf("the console transcript contains the root passphrase")
	}
	if !asked && strings.Contains(tr, initramfsPrompt[flavor]) {
		t.Errorf("the installed initramfs asked for a passphrase (%q) although it was handed over", initramfsPrompt[flavor])
	}
	if after := stableRegion(t, disk); after != before {
		t.Errorf("the partition table, /boot or root's LUKS header changed during the boot")
	}
	if !strings.HasPrefix(root, "/dev/mapper/") {
		t.Errorf("the installed system's root is %q, not an opened LUKS volume", root)
	}
	return took, root
}

func TestInstalledDebianHandoff(t *testing.T) {
	needE2E(t)
	needInstallE2E(t)
	for _, flavor := range []string{"initramfs-tools", "dracut"} {
		t.Run(flavor, func(t *testing.T) {
			img := installImage(t, flavor, passphrase)
			// Before: romboot.handoff=off, the initramfs asks as it always did.
			off, _ := bootInstalled(t, flavor, img, passphrase, true, "", "romboot.handoff=off")
			// After: typed once.
			on, root := bootInstalled(t, flavor, img, passphrase, false, "will open with the same passphrase", "")
			t.Logf("%s: QEMU start to the installed system's marker: handoff off %v (passphrase typed twice), on %v (typed once); root %s",
				flavor, off.Round(time.Second), on.Round(time.Second), root)
		})
	}
}

// A root volume with its own passphrase: romboot's check fails, hands
// nothing over, and the installed initramfs asks as before.
func TestInstalledDebianRootOtherPassphrase(t *testing.T) {
	needE2E(t)
	needInstallE2E(t)
	for _, flavor := range []string{"initramfs-tools", "dracut"} {
		t.Run(flavor, func(t *testing.T) {
			img := installImage(t, flavor, otherRootPass)
			bootInstalled(t, flavor, img, otherRootPass, true, "its initramfs will ask for it", "")
		})
	}
}
