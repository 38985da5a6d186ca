package qemu_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every stale option at once, as a user's payload command line collects
// them over the years: an entry apt removed, a timeout out of range, a
// volume since re-created, a keyslot since killed, and grub-reboot's
// next_entry left in grubenv. The boot reaches the target's default entry,
// with one warning for each.
func TestStaleOptionsDegrade(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "next-entry", "--grubenv", "next_entry=1>1")
	img := copyDisk(t, d)
	v := boot(t, "--disk", img, "--append",
		"romboot.entry=vmlinuz-6.1.0-17-amd64 romboot.timeout=45 romboot.boot=UUID=00000000-dead-beef-0000-000000000000 romboot.keyslot=7 romboot.wait=2 romboot.bogus")
	v.Expect("romboot: warning: romboot.timeout=45: want a whole number from 0 to 30; ignored, using the default", promptTimeout)
	v.Expect("romboot: warning: romboot.bogus: unknown option, ignored", 10*time.Second)
	v.Expect("romboot: warning: romboot.boot=UUID=00000000-dead-beef-0000-000000000000: no such device appeared; looking for any LUKS partition", 30*time.Second)
	v.Expect("romboot: warning: romboot.keyslot=7: /dev/vda1 has no usable keyslot 7; trying all keyslots", 10*time.Second)
	v.Expect(prompt, 10*time.Second)
	v.Type(passphrase)
	v.Expect(`romboot: warning: grubenv sets next_entry="1>1" (grub-reboot): ignored`, kdfTimeout)
	v.Expect(`romboot: warning: romboot.entry="vmlinuz-6.1.0-17-amd64": no entry has that title, id or number (1-3); using the config's default "Debian GNU/Linux"`, 10*time.Second)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want the default entry's %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
	assertNoSecrets(t, v.Transcript())
	if strings.Contains(v.Transcript(), "romboot recovery menu:") {
		t.Error("stale options sent the boot to the recovery menu")
	}
}

// Each stale option alone, one boot each: the boot reaches the target's
// default entry with that option's one warning and never the recovery menu.
func TestEachStaleOptionDegrades(t *testing.T) {
	needE2E(t)
	luks2 := testDisk(t, "luks2")
	next := testDisk(t, "next-entry", "--grubenv", "next_entry=1>1")
	for _, c := range []struct {
		name, append string
		d            disk
		warns        []string
	}{
		{"entry-removed", "romboot.entry=vmlinuz-6.1.0-17-amd64", luks2, []string{
			`romboot: warning: romboot.entry="vmlinuz-6.1.0-17-amd64": no entry has that title, id or number (1-3); using the config's default "Debian GNU/Linux"`}},
		{"timeout-out-of-range", "romboot.timeout=45", luks2, []string{
			"romboot: warning: romboot.timeout=45: want a whole number from 0 to 30; ignored, using the default"}},
		{"volume-recreated", "romboot.boot=UUID=00000000-dead-beef-0000-000000000000 romboot.wait=2", luks2, []string{
			"romboot: warning: romboot.boot=UUID=00000000-dead-beef-0000-000000000000: no such device appeared; looking for any LUKS partition"}},
		{"device-unparsable", "romboot.boot=SERIAL=1234", luks2, []string{
			"romboot: warning: romboot.boot=SERIAL=1234: "}},
		{"keyslot-killed", "romboot.keyslot=7", luks2, []string{
			"romboot: warning: romboot.keyslot=7: /dev/vda1 has no usable keyslot 7; trying all keyslots"}},
		{"numbers-unparsable", "romboot.wait=soon romboot.tries=0 romboot.settle=-1", luks2, []string{
			"romboot: warning: romboot.wait=soon: want seconds from 0 to 600; ignored, using the default",
			"romboot: warning: romboot.tries=0: want a whole number from 1 to 100; ignored, using the default",
			"romboot: warning: romboot.settle=-1: want seconds from 0 to 30; ignored, using the default"}},
		{"next-entry-left-by-grub-reboot", "", next, []string{
			`romboot: warning: grubenv sets next_entry="1>1" (grub-reboot): ignored`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--disk", copyDisk(t, c.d)}
			if c.append != "" {
				args = append(args, "--append", c.append)
			}
			v := boot(t, args...)
			v.Expect(prompt, promptTimeout)
			v.Type(passphrase)
			v.Expect("keyslot 0 opened", kdfTimeout)
			if got := expectTarget(v); got != c.d.cmdline {
				t.Errorf("target cmdline %q, want the default entry's %q", got, c.d.cmdline)
			}
			v.WaitExit(30 * time.Second)
			out := v.Transcript()
			for _, w := range c.warns {
				if strings.Count(out, w) != 1 {
					t.Errorf("want the warning %q once on the console, found it %d times", w, strings.Count(out, w))
				}
			}
			if n := strings.Count(out, "romboot: warning: "); n != len(c.warns) {
				t.Errorf("%d warnings on the console, want %d", n, len(c.warns))
			}
			if strings.Contains(out, "romboot recovery menu:") {
				t.Error("a stale option sent the boot to the recovery menu")
			}
			assertNoSecrets(t, out)
		})
	}
}

// The recovery menu fixes this boot: choose the device, edit the romboot.*
// options, ask for the entry list, then boot the entry chosen; or edit the
// kernel command line and boot ignoring every romboot.* option.
func TestRecoveryMenuFixesBoot(t *testing.T) {
	needE2E(t)
	d := testDisk(t, "luks2")
	menu := func(v *vm) {
		v.t.Helper()
		v.Expect("romboot recovery menu:", kdfTimeout)
		v.Expect("> ", 10*time.Second)
	}
	t.Run("device-options-entry", func(t *testing.T) {
		t.Parallel()
		v := boot(t, "--disk", copyDisk(t, d), "--append", "romboot.tries=1 romboot.cmdline_append=romboot.e2e=from-payload")
		v.Expect(prompt, promptTimeout)
		v.Type(wrongPass)
		v.Expect("wrong passphrase, 1 tries used: nothing was booted", kdfTimeout)
		menu(v)
		v.Type("l")
		v.Expect("LUKS partitions:", 10*time.Second)
		v.Expect("1) /dev/vda1", 10*time.Second)
		v.Expect("Choose 1-1: ", 10*time.Second)
		v.Type("1")
		menu(v)
		v.Type("o")
		v.Expect("> romboot.tries=1 romboot.cmdline_append=romboot.e2e=from-payload", 10*time.Second)
		v.Send("\x15romboot.tries=2 romboot.cmdline_append=romboot.e2e=edited\r")
		v.Expect("This boot: device /dev/vda1; romboot options: romboot.tries=2 romboot.cmdline_append=romboot.e2e=edited", 10*time.Second)
		menu(v)
		v.Type("e")
		v.Expect("the boot menu will be shown then, without a countdown", 10*time.Second)
		menu(v)
		v.Type("r")
		v.Expect(prompt, 30*time.Second)
		v.Type(passphrase)
		v.Expect("romboot boot menu:", kdfTimeout)
		v.Expect("Esc for the recovery menu.", 10*time.Second)
		time.Sleep(2 * time.Second) // no countdown: nothing boots by itself
		if strings.Contains(v.Transcript(), "press any key to stop") {
			t.Error("a countdown ran although the entry was to be chosen")
		}
		v.Send("3")
		v.Expect("> ", 10*time.Second)
		v.Send("\r")
		if got, want := expectTarget(v), "root=UUID=5e1f0000-0000-4000-8000-00000000f0f5 ro single console=ttyS0 romboot.e2e=edited"; got != want {
			t.Errorf("target cmdline %q, want the recovery-mode entry's with the edited append %q", got, want)
		}
		v.WaitExit(30 * time.Second)
		assertNoSecrets(t, v.Transcript())
	})
	t.Run("cmdline-ignore-options", func(t *testing.T) {
		t.Parallel()
		v := boot(t, "--disk", copyDisk(t, d), "--append", "romboot.tries=1 romboot.cmdline_append=romboot.e2e=from-payload")
		v.Expect(prompt, promptTimeout)
		v.Type(wrongPass)
		menu(v)
		v.Type("k")
		v.Expect("Kernel command line for this boot", 10*time.Second)
		v.Send("root=/dev/vda2 console=ttyS0 romboot.e2e=typed\r")
		menu(v)
		v.Type("i")
		v.Expect(prompt, 30*time.Second)
		v.Type(wrongPass) // romboot.tries=1 is ignored now: three tries
		v.Expect("Wrong passphrase. 2 of 3 tries left.", kdfTimeout)
		v.Type(passphrase)
		v.Expect("keyslot 0 opened", kdfTimeout)
		if got, want := expectTarget(v), "root=/dev/vda2 console=ttyS0 romboot.e2e=typed"; got != want {
			t.Errorf("target cmdline %q, want the typed %q", got, want)
		}
		v.WaitExit(30 * time.Second)
		assertNoSecrets(t, v.Transcript())
	})
}

// A second LUKS disk that appears while romboot waits for the disks to
// settle (hot-plugged through the QEMU monitor, as a slow NVMe or USB disk
// comes up) is offered: the user is asked which one holds /boot.
func TestLateSecondDiskIsOffered(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "luks2")
	late := copyDisk(t, d)
	v := boot(t, "--disk", copyDisk(t, d), "--append", "romboot.settle=8")
	v.Expect("romboot: finding the LUKS /boot partition...", promptTimeout)
	v.Monitor("drive_add 0 if=none,id=late,format=raw,file=" + late)
	v.Monitor("device_add virtio-blk-pci,drive=late,id=latedisk")
	v.Expect("Several LUKS partitions found. Which one holds /boot?", 60*time.Second)
	v.Expect("2) /dev/vdb1", 10*time.Second)
	v.Expect("Choose 1-2: ", 10*time.Second)
	v.Type("2")
	v.Expect("Enter passphrase for /dev/vdb1: ", 30*time.Second)
	v.Type(passphrase)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
}

// A /boot whose ext4 journal needs recovery (a QEMU guest installed a new
// kernel and lost power before the checkpoint) boots the new kernel: the
// journal is replayed into a RAM snapshot, and the disk is not written.
func TestDirtyJournalReplayedInRAM(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "dirty-journal", "--dirty-journal", filepath.Join(os.Getenv("ROMBOOT_BUILD"), "bzImage"))
	img := copyDisk(t, d)
	before := fileSHA256(t, img)
	v := boot(t, "--disk", img)
	v.Expect(prompt, promptTimeout)
	v.Type(passphrase)
	v.Expect("replaying the journal in RAM; the disk is not written.", kdfTimeout)
	v.Expect("journal replayed in RAM, read-only", 30*time.Second)
	v.Expect("-new initrd [/initrd.img-", 30*time.Second)
	if got := expectTarget(v); !strings.HasSuffix(got, "romboot.e2e=journal-replayed") {
		t.Errorf("target cmdline %q: not the new grub.cfg's (stale metadata was read)", got)
	}
	v.WaitExit(30 * time.Second)
	if after := fileSHA256(t, img); after != before {
		t.Errorf("the disk changed during the boot: sha256 %s -> %s", before, after)
	}
}

// kdfTimeout covers an unlock (a KDF run) under TCG on a busy machine.
const kdfTimeout = 4 * time.Minute

var bootIsAt = regexp.MustCompile(`\[ *([0-9]+)\.([0-9]{6})\] romboot: /boot is /dev/vda1`)

// BenchmarkPromptInQEMU times kernel start to the passphrase prompt (the
// log line naming /boot, printed just before the prompt) with one disk,
// deciding on the first scan (romboot.settle=0, the old behaviour) and with
// the default settle time, in the same run.
func BenchmarkPromptInQEMU(b *testing.B) {
	needE2E(b)
	d := testDisk(b, "luks2")
	for _, settle := range []string{"0", "default"} {
		b.Run("settle="+settle, func(b *testing.B) {
			var total float64
			for i := 0; i < b.N; i++ {
				args := []string{"--disk", copyDisk(b, d)}
				if settle != "default" {
					args = append(args, "--append", "romboot.settle="+settle)
				}
				v := boot(b, args...)
				v.Expect(prompt, promptTimeout)
				m := bootIsAt.FindStringSubmatch(v.Transcript())
				if m == nil {
					b.Fatal("no /boot log line")
				}
				s, _ := strconv.ParseFloat(m[1]+"."+m[2], 64)
				total += s
			}
			b.ReportMetric(total/float64(b.N), "prompt-s/op")
		})
	}
}

// A machine with little memory tries both keyslots of a passphrase plus
// recovery-passphrase volume: the first Argon2 run's memory is given back
// before the second keyslot is weighed against what is free.
func TestSecondKeyslotOnSmallMemory(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "two-slots", "--two-slots", "196608")
	v := boot(t, "--disk", copyDisk(t, d), "--mem", "400")
	v.Expect(prompt, promptTimeout)
	v.Type(passphrase + "-recovery")
	v.Expect("Unlocking (argon2id, 192 MiB, 4 passes)", 60*time.Second)
	v.Expect("Unlocking (argon2id, 192 MiB, 4 passes)", 5*time.Minute)
	v.Expect("keyslot 1 opened", 5*time.Minute)
	if got := expectTarget(v); got != d.cmdline {
		t.Errorf("target cmdline %q, want %q", got, d.cmdline)
	}
	v.WaitExit(30 * time.Second)
	if strings.Contains(v.Transcript(), "not tried") {
		t.Error("a keyslot was skipped for memory")
	}
}
