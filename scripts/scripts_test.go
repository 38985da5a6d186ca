// Tests of the shell scripts users run on their own machines: mkrom (adds
// the payload to a coreboot image) and flash-x220 (flashrom wrapper), on
// images made here: a CBFS image of the X220's BIOS-region size, and an
// emulated 8 MiB chip with an Intel flash descriptor (flashrom's dummy
// programmer).
package scripts

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/testutil"
)

func payloadDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("ROMBOOT_BUILD")
	if d == "" {
		if os.Getenv("ROMBOOT_E2E") == "1" {
			t.Fatal("ROMBOOT_BUILD not set")
		}
		t.Skip("needs a built payload: run `make test`")
	}
	return d
}

func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func sum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// cbfsImage makes a legacy CBFS image of size bytes with a fake coreboot
// stage taking stage bytes, as a user's coreboot.rom would have.
func cbfsImage(t *testing.T, size string, stage int) string {
	cbfstool := testutil.NeedTool(t, "cbfstool")
	dir := t.TempDir()
	rom := filepath.Join(dir, "coreboot.rom")
	testutil.Run(t, nil, cbfstool, rom, "create", "-m", "x86", "-s", size)
	os.WriteFile(filepath.Join(dir, "stage"), bytes.Repeat([]byte{0xa5}, stage), 0o644)
	testutil.Run(t, nil, cbfstool, rom, "add", "-f", filepath.Join(dir, "stage"), "-n", "fallback/ramstage", "-t", "raw")
	return rom
}

func cbfsNames(t *testing.T, rom string) []string {
	out := testutil.Run(t, nil, "cbfstool", rom, "print")
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(f[0], "/") {
			names = append(names, f[0])
		}
	}
	return names
}

func TestMkrom(t *testing.T) {
	pd := payloadDir(t)
	// The qemu payload (with diagnostics) needs a shrunk-ME-sized region.
	rom := cbfsImage(t, "0x760000", 400<<10)
	before := sum(t, rom)
	out := filepath.Join(t.TempDir(), "out.rom")
	msg, err := run(t, nil, "./mkrom", "--rom", rom, "--board", "qemu", "--payload-dir", pd, "--cmdline", "console=ttyS0 romboot.test=1", "-o", out)
	if err != nil {
		t.Fatalf("mkrom: %v\n%s", err, msg)
	}
	if sum(t, rom) != before {
		t.Fatal("mkrom modified its input")
	}
	if !strings.Contains(msg, "bytes of CBFS space left") {
		t.Fatalf("no free space report: %s", msg)
	}
	if n := strings.Count(strings.Join(cbfsNames(t, out), " "), "fallback/payload"); n != 1 {
		t.Fatalf("%d fallback/payload entries", n)
	}
	// Again on its own output: the payload is replaced, not added twice.
	out2 := filepath.Join(t.TempDir(), "out2.rom")
	if msg, err := run(t, nil, "./mkrom", "--rom", out, "--board", "qemu", "--payload-dir", pd, "-o", out2); err != nil || !strings.Contains(msg, "replacing the existing fallback/payload") {
		t.Fatalf("replace: %v\n%s", err, msg)
	}
	if n := strings.Count(strings.Join(cbfsNames(t, out2), " "), "fallback/payload"); n != 1 {
		t.Fatalf("after replace: %d fallback/payload entries", n)
	}
}

// TestMkromReproducible: the same coreboot image and payload give the same
// ROM, whoever runs mkrom, wherever, whenever (users compare its sha256 with
// a published one before flashing).
func TestMkromReproducible(t *testing.T) {
	pd := payloadDir(t)
	rom := cbfsImage(t, "0x760000", 400<<10)
	var sums [2][32]byte
	for i, env := range [][]string{
		{"TZ=UTC", "LC_ALL=C", "USER=alice"},
		{"TZ=Pacific/Kiritimati", "LC_ALL=C.UTF-8", "USER=bob", "SOURCE_DATE_EPOCH=1234567890"},
	} {
		out := filepath.Join(t.TempDir(), "sub", "out.rom")
		os.MkdirAll(filepath.Dir(out), 0o755)
		msg, err := run(t, env, "./mkrom", "--rom", rom, "--board", "qemu", "--payload-dir", pd, "--cmdline", "console=ttyS0", "-o", out)
		if err != nil {
			t.Fatalf("mkrom: %v\n%s", err, msg)
		}
		sums[i] = sum(t, out)
		if want := fmt.Sprintf("sha256 %x", sums[i]); !strings.Contains(msg, want) {
			t.Errorf("mkrom does not print the image's %s:\n%s", want, msg)
		}
		if i == 0 {
			time.Sleep(1100 * time.Millisecond) // a different second
		}
	}
	if sums[0] != sums[1] {
		t.Fatalf("two mkrom runs on the same inputs differ: %x vs %x", sums[0], sums[1])
	}
}

func TestMkromRefusesWhatDoesNotFit(t *testing.T) {
	pd := payloadDir(t)
	// The stock X220 BIOS region (3 MiB) minus coreboot's ~450 KiB cannot
	// take the 3.4 MB qemu payload.
	rom := cbfsImage(t, "0x300000", 450<<10)
	out := filepath.Join(t.TempDir(), "out.rom")
	msg, err := run(t, nil, "./mkrom", "--rom", rom, "--board", "qemu", "--payload-dir", pd, "-o", out)
	if err == nil || !strings.Contains(msg, "the payload does not fit") || !strings.Contains(msg, "short") {
		t.Fatalf("want a clear refusal, got %v\n%s", err, msg)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("mkrom wrote an output although the payload did not fit")
	}
}

// x220Chip returns an 8 MiB chip image with an Intel flash descriptor
// (descriptor 4K, GbE 8K, ME to 5 MiB, BIOS the last 3 MiB) whose regions
// are filled with distinct patterns.
func x220Chip(t *testing.T) []byte {
	img := make([]byte, 8<<20)
	le := binary.LittleEndian
	for i := range img {
		img[i] = 0xff
	}
	le.PutUint32(img[0x10:], 0x0ff0a55a) // FLVALSIG
	le.PutUint32(img[0x14:], 0x04040003) // FLMAP0: FCBA 0x30, FRBA 0x40, NR
	le.PutUint32(img[0x18:], 0x12100206) // FLMAP1: FMBA 0x60, NM, FPSBA, ISL
	le.PutUint32(img[0x1c:], 0x00000120) // FLMAP2: FMSBA, MSL
	le.PutUint32(img[0x30:], 0x00000005) // FLCOMP: one 8 MiB chip, 20 MHz
	le.PutUint32(img[0x40:], 0x00000000) // FLREG0 descriptor 0x0-0xfff
	le.PutUint32(img[0x44:], 0x07ff0500) // FLREG1 BIOS 0x500000-0x7fffff
	le.PutUint32(img[0x48:], 0x04ff0003) // FLREG2 ME 0x3000-0x4fffff
	le.PutUint32(img[0x4c:], 0x00020001) // FLREG3 GbE 0x1000-0x2fff
	le.PutUint32(img[0x50:], 0x00001fff) // FLREG4 unused
	for _, m := range []int{0x60, 0x64, 0x68} {
		le.PutUint32(img[m:], 0xffff0000)
	}
	fill := func(from, to int, b byte) {
		for i := from; i < to; i++ {
			img[i] = b ^ byte(i>>12)
		}
	}
	fill(0x1000, 0x3000, 0x6b)     // GbE
	fill(0x3000, 0x500000, 0x3e)   // ME
	fill(0x500000, 0x800000, 0x0b) // old BIOS
	return img
}

type flashSetup struct {
	dir, chip, backups string
	prog, name         string
	before             []byte
}

// chipName picks one of the definitions flashrom finds for the emulated
// chips (several match, as on a real X220).
func chipName(emulate string) string {
	if emulate == "W25Q128FV" {
		return "W25Q128.V"
	}
	return "MX25L6436E/MX25L6445E/MX25L6465E/MX25L6473E/MX25L6473F"
}

func newFlash(t *testing.T, emulate string) flashSetup {
	testutil.NeedTool(t, "flashrom")
	testutil.NeedTool(t, "ifdtool")
	dir := t.TempDir()
	s := flashSetup{dir: dir, chip: filepath.Join(dir, "chip.bin"), backups: filepath.Join(dir, "backups")}
	s.before = x220Chip(t)
	os.WriteFile(s.chip, s.before, 0o644)
	s.prog = "dummy:emulate=" + emulate + ",image=" + s.chip
	s.name = chipName(emulate)
	return s
}

func TestFlashX220WritesOnlyBIOS(t *testing.T) {
	s := newFlash(t, "MX25L6436")
	newImg := append([]byte(nil), s.before...)
	for i := 0x3000; i < 0x500000; i += 4096 {
		newImg[i] ^= 0x55 // a different ME in the file must not reach the chip
	}
	for i := 0x500000; i < 0x800000; i++ {
		newImg[i] = byte(i*7) ^ 0x5a // the new coreboot+romboot
	}
	rom := filepath.Join(s.dir, "coreboot.romboot.rom")
	os.WriteFile(rom, newImg, 0o644)

	msg, err := run(t, nil, "./flash-x220", "--rom", rom, "-p", s.prog, "--chip", s.name, "--backup-dir", s.backups)
	if err != nil || !strings.Contains(msg, "dry run") {
		t.Fatalf("dry run: %v\n%s", err, msg)
	}
	if got, _ := os.ReadFile(s.chip); !bytes.Equal(got, s.before) {
		t.Fatal("the dry run wrote to the chip")
	}
	msg, err = run(t, nil, "./flash-x220", "--rom", rom, "-p", s.prog, "--chip", s.name, "--backup-dir", s.backups, "--yes")
	if err != nil || !strings.Contains(msg, "done and verified") {
		t.Fatalf("flash: %v\n%s", err, msg)
	}
	got, _ := os.ReadFile(s.chip)
	if !bytes.Equal(got[0x500000:], newImg[0x500000:]) {
		t.Fatal("the BIOS region does not hold the new image")
	}
	if !bytes.Equal(got[:0x500000], s.before[:0x500000]) {
		t.Fatal("descriptor, GbE or ME changed")
	}
	backups, _ := filepath.Glob(filepath.Join(s.backups, "x220-*.bin"))
	if len(backups) != 2 {
		t.Fatalf("want a dated backup per run, found %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); !bytes.Equal(b, s.before) {
		t.Fatal("the backup is not what the chip held")
	}
}

func TestFlashX220BIOSRegionImage(t *testing.T) {
	s := newFlash(t, "MX25L6436")
	bios := bytes.Repeat([]byte("romboot!"), 3<<20/8)
	rom := filepath.Join(s.dir, "bios.rom")
	os.WriteFile(rom, bios, 0o644)
	if msg, err := run(t, nil, "./flash-x220", "--rom", rom, "-p", s.prog, "--chip", s.name, "--backup-dir", s.backups, "--yes"); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	got, _ := os.ReadFile(s.chip)
	if !bytes.Equal(got[0x500000:], bios) || !bytes.Equal(got[:0x500000], s.before[:0x500000]) {
		t.Fatal("BIOS-region image not placed at the BIOS region alone")
	}
}

func TestFlashX220Refuses(t *testing.T) {
	t.Run("ambiguous-chip", func(t *testing.T) {
		s := newFlash(t, "MX25L6436")
		rom := filepath.Join(s.dir, "new.rom")
		os.WriteFile(rom, x220Chip(t), 0o644)
		msg, err := run(t, nil, "./flash-x220", "--rom", rom, "-p", s.prog, "--backup-dir", s.backups, "--yes")
		if err == nil || !strings.Contains(msg, "Pass one with --chip") {
			t.Fatalf("want advice to pass --chip, got %v\n%s", err, msg)
		}
	})
	t.Run("wrong-chip-size", func(t *testing.T) {
		s := newFlash(t, "W25Q128FV") // a 16 MiB chip
		big := append(x220Chip(t), make([]byte, 8<<20)...)
		os.WriteFile(s.chip, big, 0o644)
		rom := filepath.Join(s.dir, "new.rom")
		os.WriteFile(rom, x220Chip(t), 0o644)
		msg, err := run(t, nil, "./flash-x220", "--rom", rom, "-p", s.prog, "--chip", s.name, "--backup-dir", s.backups, "--yes")
		if err == nil || !strings.Contains(msg, "an X220 has") {
			t.Fatalf("want a refusal, got %v\n%s", err, msg)
		}
		if got, _ := os.ReadFile(s.chip); !bytes.Equal(got, big) {
			t.Fatal("wrote to the wrong chip")
		}
	})
	t.Run("reads-differ", func(t *testing.T) {
		s := newFlash(t, "MX25L6436")
		// A flashrom whose second read returns one flipped byte, as an
		// unreliable clip would.
		fake := filepath.Join(s.dir, "flashrom")
		os.WriteFile(fake, []byte(`#!/bin/sh
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n+1)) > "$0.count"
for a in "$@"; do case $prev in -r) out=$a ;; esac; prev=$a; done
case " $* " in *" -w "*) echo "unexpected write" >&2; exit 3 ;; esac
flashrom "$@" || exit $?
if [ "$n" = 1 ] && [ -n "$out" ]; then printf '\001' | dd of="$out" bs=1 seek=4096 conv=notrunc status=none; fi
`), 0o755)
		rom := filepath.Join(s.dir, "new.rom")
		os.WriteFile(rom, x220Chip(t), 0o644)
		msg, err := run(t, []string{"FLASHROM=" + fake}, "./flash-x220", "--rom", rom, "-p", s.prog, "--chip", s.name, "--backup-dir", s.backups, "--yes")
		if err == nil || !strings.Contains(msg, "the two reads differ") {
			t.Fatalf("want a refusal, got %v\n%s", err, msg)
		}
		if got, _ := os.ReadFile(s.chip); !bytes.Equal(got, s.before) {
			t.Fatal("wrote after differing reads")
		}
	})
}
