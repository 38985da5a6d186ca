package qemu_test

// The X220-shaped end-to-end tests: the x220 payload (ROMBOOT_X220_BUILD,
// `make payload BOARD=x220`) in a q35 machine booted by qemu/x220-run, which
// hands over the way coreboot does on the laptop (see its comment). The
// payload has no serial console: the tests type on the emulated PS/2
// keyboard (monitor `sendkey`) and read the screen (monitor `screendump`,
// OCR with tesseract). The serial port carries only the kexec'd target's
// console, whose marker proves the boot.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/romboot/romboot/internal/testutil"
)

func needX220(t *testing.T) string {
	t.Helper()
	if os.Getenv("ROMBOOT_E2E") != "1" {
		t.Skip("end-to-end test: run with `make e2e-x220` (ROMBOOT_E2E=1)")
	}
	b := os.Getenv("ROMBOOT_X220_BUILD")
	if b == "" {
		if os.Getenv("ROMBOOT_REQUIRE_TOOLS") == "1" && os.Getenv("ROMBOOT_REQUIRE_X220") == "1" {
			t.Fatal("ROMBOOT_X220_BUILD not set")
		}
		t.Skip("needs the x220 payload: `make e2e-x220` sets ROMBOOT_X220_BUILD")
	}
	for _, f := range []string{"bzImage", "initramfs.cpio.xz"} {
		if _, err := os.Stat(filepath.Join(b, f)); err != nil {
			t.Fatalf("ROMBOOT_X220_BUILD=%q lacks %s: run `make payload BOARD=x220`", b, f)
		}
	}
	for _, tool := range []string{"qemu-system-x86_64", "gcc", "ld", "iasl", "cbfstool", "tesseract"} {
		testutil.NeedTool(t, tool)
	}
	return b
}

// x220 is a running X220-shaped guest.
type x220 struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	mon     net.Conn
	monr    *bufio.Reader
	serial  string
	dbg     string
	start   time.Time
	done    chan struct{} // closed when QEMU has exited
	screens []string      // every OCR'd screen, for the secrets check
	last    [32]byte      // the sha256 of the last OCR'd screen's pixels
	lastTxt string
}

// exited reports whether QEMU has exited.
func (v *x220) exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

func bootX220(t *testing.T, payload, disk, handover, appendArgs string, extra ...string) *x220 {
	t.Helper()
	dir := t.TempDir()
	v := &x220{t: t, dir: dir, serial: filepath.Join(dir, "serial.log"), dbg: filepath.Join(dir, "debugcon.log"), done: make(chan struct{})}
	sock := filepath.Join(dir, "monitor.sock")
	v.cmd = exec.Command("./x220-run", "--payload", payload, "--disk", disk, "--handover", handover,
		"--append", appendArgs, "--monitor", sock, "--serial", v.serial, "--debugcon", v.dbg,
		"--work", filepath.Join(dir, "work"), "--headless")
	v.cmd.Args = append(v.cmd.Args, extra...)
	var out bytes.Buffer
	v.cmd.Stdout, v.cmd.Stderr = &out, &out
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = v.cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		_ = v.cmd.Process.Kill()
		<-v.done
		if t.Failed() {
			ser, _ := os.ReadFile(v.serial)
			dbg, _ := os.ReadFile(v.dbg)
			last := ""
			if n := len(v.screens); n > 0 {
				last = v.screens[n-1]
			}
			t.Logf("x220-run output:\n%s\nstage (debugcon):\n%s\nserial:\n%s\nlast screen (OCR):\n%s", out.String(), dbg, ser, last)
		}
	})
	deadline := time.Now().Add(2 * time.Minute) // the stage is compiled first
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			v.mon, v.monr = c, bufio.NewReader(c)
			break
		}
		if time.Now().After(deadline) || v.exited() {
			t.Fatalf("no QEMU monitor at %s: %v\n%s", sock, err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	v.readPrompt()
	return v
}

func (v *x220) readPrompt() string {
	v.t.Helper()
	var b strings.Builder
	_ = v.mon.SetReadDeadline(time.Now().Add(60 * time.Second))
	for !strings.HasSuffix(b.String(), "(qemu) ") {
		c, err := v.monr.ReadByte()
		if err != nil {
			v.t.Fatalf("QEMU monitor: %v (read %q)", err, b.String())
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hmp runs a human-monitor command and returns its output.
func (v *x220) hmp(cmd string) string {
	v.t.Helper()
	if v.exited() {
		v.t.Fatalf("QEMU has exited (monitor command %q)", cmd)
	}
	if _, err := fmt.Fprintf(v.mon, "%s\n", cmd); err != nil {
		v.t.Fatalf("QEMU monitor: %v", err)
	}
	return v.readPrompt()
}

// keyNames maps characters to QEMU key names (qcodes).
func keyName(r rune) (string, bool) {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return string(r), true
	case r >= 'A' && r <= 'Z':
		return "shift-" + string(unicode.ToLower(r)), true
	case r == '-':
		return "minus", true
	case r == '\n':
		return "ret", true
	case r == ' ':
		return "spc", true
	}
	return "", false
}

// typeKeys types s on the emulated keyboard, one key at a time.
func (v *x220) typeKeys(s string) {
	v.t.Helper()
	for _, r := range s {
		k, ok := keyName(r)
		if !ok {
			v.t.Fatalf("no key for %q", r)
		}
		if out := v.hmp("sendkey " + k); strings.Contains(out, "rror") {
			v.t.Fatalf("sendkey %s: %s", k, out)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// screen dumps the display and returns its pixels.
func (v *x220) screen() image.Image {
	v.t.Helper()
	p := filepath.Join(v.dir, "screen.ppm")
	_ = os.Remove(p)
	v.hmp("screendump " + p)
	b, err := os.ReadFile(p)
	if err != nil {
		v.t.Fatalf("screendump: %v", err)
	}
	img, err := decodePPM(b)
	if err != nil {
		v.t.Fatalf("screendump: %v", err)
	}
	return img
}

// decodePPM reads a binary (P6) PPM, as QEMU's screendump writes.
func decodePPM(b []byte) (image.Image, error) {
	var w, h, max int
	fields := 0
	i := 2
	if !bytes.HasPrefix(b, []byte("P6")) {
		return nil, fmt.Errorf("not a P6 PPM")
	}
	vals := []*int{&w, &h, &max}
	for fields < 3 {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(b[i:j]))
		if err != nil {
			return nil, fmt.Errorf("PPM header: %v", err)
		}
		*vals[fields] = n
		fields++
		i = j
	}
	i++ // the single whitespace after maxval
	if max != 255 || len(b) < i+3*w*h {
		return nil, fmt.Errorf("PPM %dx%d max %d: %d bytes", w, h, max, len(b))
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < w*h; p++ {
		img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = b[i+3*p], b[i+3*p+1], b[i+3*p+2], 255
	}
	return img, nil
}

// litPixels counts the pixels that are not black.
func litPixels(img image.Image) int {
	n := 0
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr+cg+cb > 3*0x2000 {
				n++
			}
		}
	}
	return n
}

// litBounds is the rectangle around the screen's lit pixels, with a margin.
func litBounds(img image.Image) image.Rectangle {
	b := img.Bounds()
	r := image.Rectangle{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr+cg+cb > 3*0x2000 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	if r.Empty() {
		return r
	}
	return r.Inset(-8).Intersect(b)
}

// ocr reads the text on the screen: console text is light on black, so
// it is inverted and scaled up 2x for tesseract.
func (v *x220) ocr(img image.Image) string {
	v.t.Helper()
	r := litBounds(img)
	if r.Empty() {
		return ""
	}
	out := image.NewGray(image.Rect(0, 0, 2*r.Dx(), 2*r.Dy()))
	for y := 0; y < 2*r.Dy(); y++ {
		for x := 0; x < 2*r.Dx(); x++ {
			cr, cg, cb, _ := img.At(r.Min.X+x/2, r.Min.Y+y/2).RGBA()
			l := (cr + cg + cb) / 3 >> 8
			out.SetGray(x, y, color.Gray{Y: uint8(255 - l)})
		}
	}
	p := filepath.Join(v.dir, "screen.png")
	f, err := os.Create(p)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := png.Encode(f, out); err != nil {
		v.t.Fatal(err)
	}
	f.Close()
	// One thread: the machine is shared, and tesseract's threads only
	// fight QEMU's for the CPU.
	cmd := exec.Command("tesseract", p, "stdout", "--psm", "6")
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	txt, err := cmd.Output()
	if err != nil {
		v.t.Fatalf("tesseract: %v", err)
	}
	return string(txt)
}

// squash keeps letters and digits, lower case, and folds the characters
// tesseract confuses in the console's 8x16 font into one of each group
// (it reads "sda1" as "sdal", "0" as "O"): OCR gets the letters right, not
// always the spacing, the punctuation or these look-alikes. Strings that
// differ only inside a group match each other (the tests' negative controls
// differ elsewhere: a digit from another group, a different word).
func squash(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case '1', 'i', 'l', '|', '!', 'j':
			r = 'l'
		case '0', 'o':
			r = 'o'
		case '5', 's':
			r = 's'
		case '2', 'z':
			r = 'z'
		case '8', 'b':
			r = 'b'
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shows reports whether the OCR'd text contains want.
func shows(txt, want string) bool { return strings.Contains(squash(txt), squash(want)) }

// read returns the screen's text: it dumps the screen every half second
// until it has changed since the last reading (the OCR is the slow part),
// or the deadline.
func (v *x220) read(deadline time.Time) string {
	v.t.Helper()
	for {
		if v.exited() {
			return v.lastTxt
		}
		img := v.screen()
		sum := sha256.Sum256(img.(*image.RGBA).Pix)
		if sum != v.last {
			v.last = sum
			v.lastTxt = v.ocr(img)
			v.screens = append(v.screens, v.lastTxt)
			return v.lastTxt
		}
		if v.exited() || time.Now().After(deadline) {
			return v.lastTxt
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitScreen waits until the screen shows want and returns its text.
func (v *x220) waitScreen(want string, timeout time.Duration) string {
	v.t.Helper()
	return v.waitScreenN(want, 1, timeout)
}

// waitScreenN waits until the screen shows want n times.
func (v *x220) waitScreenN(want string, n int, timeout time.Duration) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		txt := v.read(deadline)
		if strings.Count(squash(txt), squash(want)) >= n {
			return txt
		}
		if v.exited() {
			v.t.Fatalf("QEMU exited before the screen showed %q", want)
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("the screen did not show %q within %v", want, timeout)
		}
	}
}

// notShown fails the test when the OCR'd text matches a string that is not
// on the screen: the negative control of each reading.
func (v *x220) notShown(txt, near string) {
	v.t.Helper()
	if shows(txt, near) {
		v.t.Fatalf("the screen reading matches %q, which is not on the screen: the OCR check cannot tell:\n%s", near, txt)
	}
}

// waitSerial waits for s on the serial port (the target's console).
func (v *x220) waitSerial(s string, timeout time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(v.serial)
		if bytes.Contains(b, []byte(s)) {
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("%q did not appear on the serial port within %v", s, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (v *x220) serialText() string {
	b, _ := os.ReadFile(v.serial)
	return string(b)
}

// countdown finds the seconds left in the menu's "Booting … in N s" line.
var countdown = regexp.MustCompile(`in\s+(\d+)\s*s\s*\(press`)

// x220Unlock drives one boot to the target: the prompt, a wrong
// passphrase, the right one, the boot menu, Enter.
func x220Unlock(t *testing.T, handover string) {
	payload := needX220(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	img := copyDisk(t, d)
	before := fileSHA256(t, img)
	v := bootX220(t, payload, img, handover, "romboot.timeout=30")
	const x220Prompt = "Enter passphrase for /dev/sda1:"
	txt := v.waitScreen(x220Prompt, 4*promptTimeout)
	// The reading can fail: the same screen does not show a near miss.
	v.notShown(txt, "Enter passphrase for /dev/sdb1:")
	t.Logf("%s: passphrase prompt on the screen %.1fs after QEMU started (no RDRAND, no virtio-rng)", handover, time.Since(v.start).Seconds())
	if s := v.serialText(); s != "" {
		t.Errorf("the payload wrote to the serial port (it must have no serial console):\n%s", s)
	}
	if handover == "coreboot" {
		dbg, _ := os.ReadFile(v.dbg)
		if !bytes.Contains(dbg, []byte("stage: framebuffer")) || !bytes.Contains(dbg, []byte("jumping to the payload")) {
			t.Fatalf("the emulated coreboot hand-over did not run:\n%s", dbg)
		}
	}
	v.typeKeys(wrongPass + "\n")
	txt = v.waitScreen("Wrong passphrase. 2 of 3 tries left.", 2*bootTimeout)
	v.notShown(txt, "Wrong passphrase. 1 of 3 tries left.")
	v.notShown(txt, "romboot boot menu")
	v.typeKeys(passphrase + "\n")
	// The menu's title (OCR reads "romboot" as "ronboot" at times), then
	// 1: it stops the countdown and draws the menu again, entry 1 chosen;
	// Enter boots it.
	txt = v.waitScreen("boot menu:", 2*bootTimeout)
	v.notShown(txt, "rescue menu:")
	if m := countdown.FindStringSubmatch(txt); m != nil {
		t.Logf("%s: the menu seen with %s s of its countdown left", handover, m[1])
	}
	v.typeKeys("1")
	v.waitScreenN("boot menu:", 2, bootTimeout)
	v.typeKeys("\n")
	v.waitSerial("ROMBOOT-TARGET-OK", 2*bootTimeout)
	v.waitSerial("ROMBOOT-TARGET-CMDLINE: "+d.cmdline, 30*time.Second)
	t.Logf("%s: target booted %.1fs after QEMU started", handover, time.Since(v.start).Seconds())
	for _, txt := range v.screens {
		for _, secret := range []string{passphrase, wrongPass} {
			if strings.Contains(squash(txt), squash(secret)) {
				t.Errorf("the screen showed the passphrase %q:\n%s", secret, txt)
			}
		}
	}
	if after := fileSHA256(t, img); after != before {
		t.Errorf("the disk changed during the boot: sha256 %s -> %s", before, after)
	}
}

// TestX220CorebootHandover: the laptop's real path. The payload is entered
// through the Linux trampoline of Debian's cbfstool (the ROM's bytes, `add-
// payload` as scripts/mkrom runs it), which gives the kernel no screen_info:
// the framebuffer exists only in the coreboot table (found through the
// SSDT's BOOT0000 device), so text on the screen proves
// GOOGLE_FRAMEBUFFER_COREBOOT found it.
func TestX220CorebootHandover(t *testing.T) { x220Unlock(t, "coreboot") }

// TestX220KernelVGA: QEMU's -kernel loader with vga=: screen_info and
// SYSFB_SIMPLEFB, the path of a coreboot whose loader fills screen_info.
func TestX220KernelVGA(t *testing.T) { x220Unlock(t, "vga") }

// TestX220NoCorebootTableNoScreen is the control: the same hand-over
// without the SSDT's pointer to the table leaves the screen black (the
// kernel has no other way to the framebuffer) while the payload runs: it
// waits at its prompt, and the passphrase typed blind boots the target.
func TestX220NoCorebootTableNoScreen(t *testing.T) {
	payload := needX220(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	v := bootX220(t, payload, copyDisk(t, d), "coreboot", "romboot.timeout=1", "--no-ssdt")
	time.Sleep(90 * time.Second) // the prompt is up well before, with the table
	dbg, _ := os.ReadFile(v.dbg)
	if !bytes.Contains(dbg, []byte("jumping to the payload")) {
		t.Fatalf("the emulated hand-over did not reach the payload:\n%s", dbg)
	}
	if n := litPixels(v.screen()); n != 0 {
		t.Fatalf("%d lit pixels without the coreboot table: the framebuffer came another way", n)
	}
	// The payload's kernel is running (in its own address space), not
	// stuck in the stage.
	regs := v.hmp("info registers")
	if !strings.Contains(regs, "RIP=ffffffff") {
		t.Fatalf("the CPU is not in the payload kernel:\n%s", regs)
	}
	// And the payload was at its prompt behind the black screen: typed
	// blind, the passphrase boots the target.
	v.typeKeys(passphrase + "\n")
	v.waitSerial("ROMBOOT-TARGET-CMDLINE: "+d.cmdline, 3*bootTimeout)
}

// TestNoHardwareRNGDoesNotStall: the X220 has no RDRAND and the payload no
// hardware RNG driver for it, so the kernel's entropy pool fills slowly.
// Nothing on the boot path may wait for it (getrandom blocking, a Go
// runtime or crypto/rand read): the payload (qemu board, serial console)
// boots to the prompt on a Sandy Bridge CPU without virtio-rng about as fast
// as with both sources of entropy, measured in the same run, and then boots
// the target. The kernel is the witness: without a hardware source its
// CRNG is not ready for minutes (interrupts credit about a bit a second),
// and a blocking getrandom makes it generate entropy from CPU jitter at
// once and print "random: crng init done". The payload never makes it
// print that before it kexecs the target.
func TestNoHardwareRNGDoesNotStall(t *testing.T) {
	needE2E(t)
	t.Parallel()
	build := os.Getenv("ROMBOOT_BUILD")
	d := testDisk(t, "luks2")
	start := func(rng bool) (*vm, time.Duration) {
		args := []string{"-accel", "tcg", "-smp", "2", "-m", "1536", "-machine", "pc", "-nographic", "-no-reboot",
			"-kernel", filepath.Join(build, "bzImage"), "-initrd", filepath.Join(build, "initramfs.cpio.xz"),
			"-append", "console=ttyS0 loglevel=7 panic=-1",
			"-drive", "file=" + copyDisk(t, d) + ",format=raw,if=virtio", "-nic", "none"}
		if rng {
			args = append(args, "-cpu", "max", "-device", "virtio-rng-pci")
		} else {
			args = append(args, "-cpu", "SandyBridge")
		}
		t0 := time.Now()
		v := bootCmd(t, "qemu-system-x86_64", args...)
		v.Expect(prompt, 2*promptTimeout)
		return v, time.Since(t0)
	}
	withRNG, tRNG := start(true)
	// The control: with virtio-rng the kernel says when its CRNG is ready
	// (the message the no-RNG boot must not show).
	for deadline := time.Now().Add(bootTimeout); !strings.Contains(withRNG.Transcript(), "random: crng init done"); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("with virtio-rng the kernel did not say \"random: crng init done\" within %v:\n%s", bootTimeout, withRNG.Transcript())
		}
	}
	_ = withRNG.cmd.Process.Kill()
	v, tNone := start(false)
	t.Logf("prompt after %.1fs with RDRAND and virtio-rng, %.1fs with neither", tRNG.Seconds(), tNone.Seconds())
	if tr := v.Transcript(); strings.Contains(tr, "virtio_rng") || strings.Contains(tr, "rdrand") {
		t.Errorf("the no-RNG guest has an RNG:\n%s", tr)
	}
	if strings.Contains(v.Transcript(), "crng init done") {
		t.Errorf("the CRNG was made ready before the passphrase prompt: something waited for entropy:\n%s", v.Transcript())
	}
	if tNone > 2*tRNG+15*time.Second {
		t.Errorf("without a hardware RNG the prompt came after %.1fs, against %.1fs with one: something waits for entropy", tNone.Seconds(), tRNG.Seconds())
	}
	v.Type(passphrase)
	t1 := time.Now()
	expectTarget(v)
	t.Logf("target booted %.1fs after the passphrase, without a hardware RNG", time.Since(t1).Seconds())
	tr := v.Transcript()
	payload, _, ok := strings.Cut(tr, "romboot: jumping to")
	if !ok {
		t.Fatalf("no kexec in the transcript:\n%s", tr)
	}
	if strings.Contains(payload, "crng init done") {
		t.Errorf("the CRNG was made ready before the kexec: something in the payload waited for entropy:\n%s", payload)
	}
	assertNoSecrets(t, v.Transcript())
}

// ocrSample is what tesseract read from the x220 payload's screen in a run
// of TestX220CorebootHandover (its errors kept: "sdal", "ronboot", "C" for
// "[", "argonzid").
const ocrSample = `[ 9.076357] romboot: boot is /dev-¢sdal: LUKS2Z aes-xts—plain64, UUID 5e1f0000—0000—-4000—-8000-0000000010c5
Enter passphrase for /dev/sdal:
[ 17.153132] romboot: unlocking...
Unlocking (argonzid, 32 MiB, 4 passes)...
C ?9.440790] romboot: unlocking failed after 62.266s: wrong passphrase
Wrong passphrase. 2 of 3 tries left.
Enter passphrase for /dev/sdal:
ronboot boot menu:
> * 1) Debian GNU/Linux
Up/Down or a number to choose, e to edit the command line, Enter to boot, Esc for the recovery menu.
`

// TestScreenMatcher: the screen check reads through tesseract's usual
// errors and still tells the text on the screen from near misses.
func TestScreenMatcher(t *testing.T) {
	for _, want := range []string{"Enter passphrase for /dev/sda1:", "Wrong passphrase. 2 of 3 tries left.", "boot menu:", "Argon2id, 32 MiB"} {
		if !shows(ocrSample, want) {
			t.Errorf("%q not found in the OCR'd screen", want)
		}
	}
	for _, near := range []string{"Enter passphrase for /dev/sdb1:", "Wrong passphrase. 1 of 3 tries left.", "Wrong passphrase. 0 of 3 tries left.", "rescue menu:", "Argon2id, 64 MiB", passphrase, wrongPass} {
		if shows(ocrSample, near) {
			t.Errorf("%q matches the OCR'd screen, which does not show it", near)
		}
	}
}
