// Package qemu_test boots romboot's payload in QEMU (TCG) against encrypted
// disks made by scripts/mkdisk and checks what a user would see.
//
// The tests run when ROMBOOT_E2E=1 and ROMBOOT_BUILD names a directory with
// bzImage and initramfs.cpio.xz (`make test` sets both); otherwise they skip.
package qemu_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/luks/lukstest"
	"github.com/romboot/romboot/internal/testutil"
)

// A passphrase that appears nowhere else, so a leak cannot hide.
const (
	passphrase = "Tr0ub4dor-e2e-7431"
	wrongPass  = "wrong-Passphrase-5562"
)

const (
	promptTimeout = 60 * time.Second  // QEMU start + kernel + init, under TCG
	bootTimeout   = 120 * time.Second // KDF + kexec of a 8 MB kernel + target init
)

func needE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("ROMBOOT_E2E") != "1" {
		t.Skip("end-to-end test: run with `make test` (ROMBOOT_E2E=1)")
	}
	b := os.Getenv("ROMBOOT_BUILD")
	for _, f := range []string{"bzImage", "initramfs.cpio.xz"} {
		if _, err := os.Stat(filepath.Join(b, f)); err != nil {
			t.Fatalf("ROMBOOT_BUILD=%q lacks %s: run `make payload`", b, f)
		}
	}
}

// disk is a test disk made once per flavour and shared by the tests.
type disk struct {
	path     string
	cmdline  string // the default entry's
	cmdline2 string // the second entry's (bls and extlinux layouts)
}

var (
	disksMu sync.Mutex
	disks   = map[string]*disk{}
)

// testDisk returns a disk made by scripts/mkdisk with the test passphrase
// and the given extra options, made on first use.
func testDisk(t testing.TB, flavour string, args ...string) disk {
	t.Helper()
	disksMu.Lock()
	defer disksMu.Unlock()
	if d, ok := disks[flavour]; ok {
		return *d
	}
	dir, err := os.MkdirTemp("", "romboot-e2e-disk-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, flavour+".img")
	cmd := exec.Command("../scripts/mkdisk", append([]string{"-o", path}, args...)...)
	cmd.Env = append(os.Environ(), "ROMBOOT_PASSPHRASE="+passphrase)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkdisk %v: %v\n%s", args, err, out)
	}
	env, err := readEnv(path + ".env")
	if err != nil {
		t.Fatal(err)
	}
	d := &disk{path: path, cmdline: env["ROMBOOT_DISK_CMDLINE"], cmdline2: env["ROMBOOT_DISK_CMDLINE2"]}
	if d.cmdline == "" {
		t.Fatalf("%s.env has no ROMBOOT_DISK_CMDLINE", path)
	}
	disks[flavour] = d
	return *d
}

func readEnv(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m, sc.Err()
}

// copyDisk gives a test its own copy, so tests can run in parallel.
func copyDisk(t testing.TB, d disk) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "disk.img")
	in, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

const prompt = "Enter passphrase for /dev/vda1: "

// unlocked boots a copy of d with args and types the passphrase at the
// prompt.
func unlocked(t *testing.T, d disk, args ...string) *vm {
	t.Helper()
	v := boot(t, append([]string{"--disk", copyDisk(t, d)}, args...)...)
	v.Expect(prompt, promptTimeout)
	v.Type(passphrase)
	return v
}

// expectTarget waits for the target kernel's marker and returns the command
// line it reports.
func expectTarget(v *vm) string {
	v.t.Helper()
	v.Expect("ROMBOOT-TARGET-OK", bootTimeout)
	v.Expect("ROMBOOT-TARGET-CMDLINE: ", 10*time.Second)
	return v.Line(10 * time.Second)
}

func assertNoSecrets(t *testing.T, transcript string) {
	t.Helper()
	for _, s := range []string{passphrase, wrongPass} {
		if strings.Contains(transcript, s) {
			t.Errorf("the console transcript contains the passphrase %q", s)
		}
	}
	if strings.Contains(transcript, "Kernel panic") {
		t.Errorf("kernel panic on the console")
	}
}

func TestBootLUKS2GrubDefault(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	img := copyDisk(t, d)
	before := fileSHA256(t, img)
	v := boot(t, "--disk", img)
	v.Expect(prompt, promptTimeout)
	v.Type(passphrase)
	v.Expect("Unlocking (argon2id, 32 MiB, 4 passes)", 30*time.Second)
	v.Expect("boot timeline (since kernel start):", bootTimeout)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want grub.cfg's %q", got, d.cmdline)
	}
	// The whole timeline was printed before the jump: check it now.
	for _, stage := range []string{"finding the LUKS /boot partition", "unlocking", "mapping the volume read-only (dm-crypt)", "mounting /boot read-only", "reading the boot entries", "loading the kernel (kexec_file_load)", "closing /boot"} {
		if !regexp.MustCompile(`\+[0-9.]+s +` + regexp.QuoteMeta(stage) + `\r?\n`).MatchString(v.Transcript()) {
			t.Errorf("timeline lacks stage %q", stage)
		}
	}
	v.WaitExit(30 * time.Second)
	assertNoSecrets(t, v.Transcript())
	if after := fileSHA256(t, img); after != before {
		t.Errorf("the disk changed during the boot: sha256 %s -> %s", before, after)
	}
}

func TestWrongThenRightPassphrase(t *testing.T) {
	needE2E(t)
	t.Parallel()
	v := boot(t, "--disk", copyDisk(t, testDisk(t, "luks2")))
	v.Expect(prompt, promptTimeout)
	v.Type(wrongPass)
	v.Expect("Wrong passphrase. 2 of 3 tries left.", 60*time.Second)
	v.Expect(prompt, 10*time.Second)
	v.Type(passphrase)
	expectTarget(v)
	v.WaitExit(30 * time.Second)
	assertNoSecrets(t, v.Transcript())
}

func TestThreeWrongPassphrasesEndInRecovery(t *testing.T) {
	needE2E(t)
	t.Parallel()
	v := boot(t, "--disk", copyDisk(t, testDisk(t, "luks2")))
	for i := 0; i < 3; i++ {
		v.Expect(prompt, promptTimeout)
		v.Type(wrongPass)
	}
	v.Expect("wrong passphrase, 3 tries used: nothing was booted", 60*time.Second)
	v.Expect("romboot recovery menu:", 10*time.Second)
	v.Expect("> ", 10*time.Second)
	v.Type("d")
	v.Expect("== romboot", 10*time.Second)
	v.Expect("vda1", 10*time.Second)
	v.Expect("crypto_LUKS", 10*time.Second)
	v.Expect("> ", 10*time.Second)
	// Retry works, then power off from the menu. The next two tries are
	// typed ahead, while the one before is still being unlocked: they must
	// be taken as tries and never echoed.
	v.Type("r")
	v.Expect(prompt, 30*time.Second)
	v.Type(wrongPass)
	v.Expect("Unlocking (", 30*time.Second)
	v.Type(wrongPass)
	v.Expect("Wrong passphrase. 2 of 3 tries left.", 60*time.Second)
	v.Expect("Unlocking (", 30*time.Second)
	v.Type(wrongPass)
	v.Expect("Wrong passphrase. 1 of 3 tries left.", 60*time.Second)
	v.Expect("romboot recovery menu:", 60*time.Second)
	v.Expect("> ", 10*time.Second)
	v.Type("p")
	v.Expect("reboot: Power down", 30*time.Second)
	v.WaitExit(30 * time.Second)
	tr := v.Transcript()
	if strings.Contains(tr, "ROMBOOT-TARGET-OK") || strings.Contains(tr, "jumping to") {
		t.Error("a kernel was booted after wrong passphrases")
	}
	assertNoSecrets(t, tr)
}

func TestBootLUKS1(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "luks1", "--luks1")
	v := unlocked(t, d, "--append", "romboot.boot=PARTUUID=5e1f0000-0000-4000-8000-000000000b01")
	v.Expect("Unlocking (pbkdf2-sha256, 1000 iterations)", 30*time.Second)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
	assertNoSecrets(t, v.Transcript())
}

// A romboot.boot= that matches nothing degrades to auto-detection (see
// e2e_recovery_test.go); with no LUKS disk at all, the recovery menu.
func TestNoLUKSDeviceEndsInRecovery(t *testing.T) {
	needE2E(t)
	t.Parallel()
	v := boot(t, "--disk", "", "--append", "romboot.boot=UUID=00000000-dead-beef-0000-000000000000 romboot.wait=1")
	v.Expect("romboot.boot=UUID=00000000-dead-beef-0000-000000000000: no such device appeared; looking for any LUKS partition", promptTimeout)
	v.Expect("no LUKS partition found after waiting 1s for disks", 30*time.Second)
	v.Expect("romboot recovery menu:", 10*time.Second)
	v.Expect("> ", 10*time.Second)
	v.Type("p")
	v.WaitExit(30 * time.Second)
}

// partitionStart is where scripts/mkdisk puts the boot partition.
const partitionStart = 2048 * 512

func TestCorruptPrimaryHeaderBootsFromSecondary(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	img := copyDisk(t, d)
	if err := lukstest.Flip(img, partitionStart+4096+64); err != nil {
		t.Fatal(err)
	}
	v := boot(t, "--disk", img)
	v.Expect("primary header unusable (checksum mismatch), using the secondary", promptTimeout)
	v.Expect(prompt, 10*time.Second)
	v.Type(passphrase)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
}

func TestRequirementsEndInRecovery(t *testing.T) {
	needE2E(t)
	t.Parallel()
	img := copyDisk(t, testDisk(t, "luks2"))
	if err := lukstest.EditJSON(img, partitionStart, func(m map[string]any) {
		// A requirement romboot does not know, as a newer cryptsetup may
		// set (cryptsetup refuses unknown mandatory requirements too). An
		// online-reencrypt-v2 flag alone would be refused as corrupt: it
		// needs its backup segments, as cryptsetup's validation says.
		lukstest.Get(m, "config")["requirements"] = map[string]any{"mandatory": []any{"romboot-e2e-future-v1"}}
	}); err != nil {
		t.Fatal(err)
	}
	v := boot(t, "--disk", img)
	v.Expect(`/dev/vda1: LUKS2 header has mandatory requirements ["romboot-e2e-future-v1"]`, promptTimeout)
	v.Expect("cannot be opened by a boot loader until the operation is finished", 10*time.Second)
	v.Expect("romboot recovery menu:", 10*time.Second)
	v.Expect("> ", 10*time.Second)
	v.Type("p")
	v.WaitExit(30 * time.Second)
	if strings.Contains(v.Transcript(), "Enter passphrase") {
		t.Error("asked for a passphrase for a volume it cannot open")
	}
}

func TestBootBLSDefault(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "bls", "--layout", "bls")
	v := unlocked(t, d)
	v.Expect("romboot boot menu:", bootTimeout)
	v.Expect(`Booting "Debian GNU/Linux (6.1.2)" in  3 s`, 30*time.Second)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want the default BLS entry's %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
}

func TestBootExtlinuxDefault(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "extlinux", "--layout", "extlinux")
	v := unlocked(t, d)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want extlinux.conf's default %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
}

func TestMenuChooseSecondByNumber(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "bls", "--layout", "bls")
	v := unlocked(t, d)
	v.Expect("press any key to stop", bootTimeout)
	v.Send("2")
	v.Expect("> ", 10*time.Second) // redrawn with the second entry selected
	v.Send("\r")
	if got := expectTarget(v); got != d.cmdline2 {
		t.Errorf("target cmdline %q, want the second entry's %q", got, d.cmdline2)
	}
	v.WaitExit(30 * time.Second)
}

func TestMenuEditAppendsWord(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "extlinux", "--layout", "extlinux")
	v := unlocked(t, d)
	v.Expect("press any key to stop", bootTimeout)
	v.Send("e")
	v.Expect("Edit the command line", 10*time.Second)
	v.Send(" romboot.edited=yes\r")
	if got, want := expectTarget(v), d.cmdline+" romboot.edited=yes"; got != want {
		t.Errorf("target cmdline %q, want %q", got, want)
	}
	v.WaitExit(30 * time.Second)
}

// freePort returns a TCP port free on the host's loopback.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// get fetches a URL, retrying while the guest's server comes up.
func get(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestDiagnosticsServerInROM(t *testing.T) {
	for _, engine := range []string{"pool", "uring"} {
		t.Run(engine, func(t *testing.T) { testDiagnostics(t, engine) })
	}
}

func testDiagnostics(t *testing.T, engine string) {
	needE2E(t)
	t.Parallel()
	curl := testutil.NeedTool(t, "curl")
	d := testDisk(t, "luks2")
	port := freePort(t)
	v := boot(t, "--disk", copyDisk(t, d), "--diag-port", fmt.Sprint(port), "--append", "ip=dhcp romboot.diag=0.0.0.0:80 romboot.diag_engine="+engine)
	v.Expect(fmt.Sprintf("diagnostics (%s engine)", engine), promptTimeout)
	v.Expect(prompt, promptTimeout)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get(t, base+"/healthz", 30*time.Second)
	out, err := exec.Command(curl, "-fsS", base+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	page := string(out)
	for _, want := range []string{"romboot diagnostics", "Linux 6.1.", "waiting for passphrase for /dev/vda1", "crypto_LUKS", "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var facts struct {
		Kernel string `json:"kernel"`
		State  string `json:"state"`
		Block  []struct {
			Name string `json:"name"`
			UUID string `json:"uuid"`
			LUKS *struct {
				Version int    `json:"version"`
				Cipher  string `json:"cipher"`
			} `json:"luks"`
		} `json:"block_devices"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/diag.json", 10*time.Second)), &facts); err != nil {
		t.Fatalf("diag.json: %v", err)
	}
	found := false
	for _, b := range facts.Block {
		if b.Name == "vda1" && b.LUKS != nil && b.LUKS.Version == 2 && b.UUID == "5e1f0000-0000-4000-8000-0000000010c5" {
			found = true
		}
	}
	if !found {
		t.Errorf("diag.json does not list the LUKS partition: %+v", facts.Block)
	}
	v.Type(passphrase)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
	if strings.Contains(page, passphrase) {
		t.Error("passphrase on the page")
	}
}
