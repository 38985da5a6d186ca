package qemu_test

import (
	"strings"
	"testing"
	"time"
)

// TestBootRHEL8BLS boots a /boot shaped as RHEL 8 writes it: grub.cfg runs
// blscfg, the command line lives in grubenv's kernelopts, tuned adds
// $tuned_params and a second initrd through $tuned_initrd, and saved_entry
// names the second BLS entry. The target must get exactly kernelopts plus
// tuned_params, and the tuned initrd (an uncompressed cpio following a
// gzip'ed initramfs whose length is not a multiple of 4) must unpack.
func TestBootRHEL8BLS(t *testing.T) {
	needE2E(t)
	t.Parallel()
	d := testDisk(t, "rhel8", "--layout", "rhel8")
	env, err := readEnv(d.path + ".env")
	if err != nil {
		t.Fatal(err)
	}
	v := unlocked(t, d)
	v.Expect("romboot boot menu:", bootTimeout)
	v.Expect(`Booting "Red Hat Enterprise Linux (`+env["ROMBOOT_DISK_KERNEL_VERSION"]+`) 8.9 (Ootpa)"`, 30*time.Second)
	got := expectTarget(v)
	if got != d.cmdline {
		t.Errorf("target cmdline %q, want kernelopts + tuned_params %q", got, d.cmdline)
	}
	if !strings.Contains(d.cmdline, "romboot.e2e=rhel8-tuned") || strings.Contains(got, "$") {
		t.Errorf("disk cmdline %q / target %q: variables not expanded", d.cmdline, got)
	}
	v.Expect("ROMBOOT-TARGET-EXTRA: tuned-initrd", 10*time.Second)
	v.WaitExit(30 * time.Second)
	assertNoSecrets(t, v.Transcript())
}
