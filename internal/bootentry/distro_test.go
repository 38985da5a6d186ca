package bootentry

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// ent is one expected entry, broken ones included.
type ent struct {
	title, id, kernel string
	initrds           []string
	cmdline           string
	broken            string // a substring of the reason; "" when it boots
}

func checkEntries(t *testing.T, m *Menu, entries []ent, def, timeout int) {
	t.Helper()
	if len(m.Entries) != len(entries) {
		for _, e := range m.Entries {
			t.Logf("got %q %q %q %q %q broken=%q", e.Title, e.ID, e.Kernel, e.Initrds, e.Cmdline, e.Broken)
		}
		t.Fatalf("%d entries, want %d", len(m.Entries), len(entries))
	}
	for i, w := range entries {
		g := m.Entries[i]
		okBroken := g.Broken == "" && w.broken == "" || w.broken != "" && strings.Contains(g.Broken, w.broken)
		if g.Title != w.title || g.ID != w.id || !okBroken ||
			w.broken == "" && (g.Kernel != w.kernel || !reflect.DeepEqual(g.Initrds, w.initrds) || g.Cmdline != w.cmdline) {
			t.Errorf("entry %d:\n got %q %q %q %q %q broken=%q\nwant %q %q %q %q %q broken~%q", i, g.Title, g.ID, g.Kernel, g.Initrds, g.Cmdline, g.Broken, w.title, w.id, w.kernel, w.initrds, w.cmdline, w.broken)
		}
	}
	if m.Default != def || m.Timeout != timeout {
		t.Errorf("default %d timeout %d, want %d and %d", m.Default, m.Timeout, def, timeout)
	}
}

const (
	rhelMID  = "8c3f2e1a9b7d4c6e8f0a1b2c3d4e5f60"
	rhelOpts = "root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet"
	ubu22    = "root=UUID=1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5 ro"
)

// TestRealWorldShapes: /boot trees as RHEL 8, Ubuntu 22.04, Yocto, the
// Debian installer and Arch write them, every entry asserted.
func TestRealWorldShapes(t *testing.T) {
	v89, v88 := "4.18.0-513.24.1.el8_9.x86_64", "4.18.0-477.10.1.el8_8.x86_64"
	tuned := " skew_tick=1 nohz=on"
	adv := "Advanced options for Ubuntu > "
	di := []string{"/install.amd/initrd.gz"}
	gtk := []string{"/install.amd/gtk/initrd.gz"}
	ao := "Advanced options > "
	cases := []struct {
		dir          string
		entries      []ent
		def, timeout int
	}{
		// RHEL 8: blscfg; kernelopts from grubenv (with its trailing
		// blank), tuned_params and tuned_initrd set by 00_tuned; the
		// rescue entry has no $tuned_*; the default is saved_entry (the
		// older kernel); custom.cfg's entry comes through 41_custom's
		// source and sees $kernelopts too. user.cfg is sourced by 01_users.
		{"rhel8", []ent{
			{"Red Hat Enterprise Linux (" + v89 + ") 8.9 (Ootpa)", rhelMID + "-" + v89, "/vmlinuz-" + v89, []string{"/initramfs-" + v89 + ".img", "/tuned-initrd.img"}, rhelOpts + tuned, ""},
			{"Red Hat Enterprise Linux (" + v88 + ") 8.8 (Ootpa)", rhelMID + "-" + v88, "/vmlinuz-" + v88, []string{"/initramfs-" + v88 + ".img", "/tuned-initrd.img"}, rhelOpts + tuned, ""},
			{"Red Hat Enterprise Linux (0-rescue-" + rhelMID + ") 8.9 (Ootpa)", rhelMID + "-0-rescue", "/vmlinuz-0-rescue-" + rhelMID, []string{"/initramfs-0-rescue-" + rhelMID + ".img"}, rhelOpts, ""},
			{"Debug kernel (serial console)", "", "/vmlinuz-custom-debug", []string{"/initramfs-" + v89 + ".img", "/tuned-initrd.img"}, rhelOpts + ` console=ttyS0,115200n8 "acpi_osi=!Windows 2012"`, ""},
		}, 1, 5},
		// Ubuntu 22.04: menu positions count across the if of 20_memtest86+
		// and the function of 40_custom, so default=3 is the LTS entry GRUB
		// shows fourth; the function passes the version as the entry's $2;
		// a chainloader entry is listed, not bootable; custom.cfg sourced.
		{"ubuntu2204", []ent{
			{"Ubuntu", "gnulinux-simple-1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "/vmlinuz-6.5.0-35-generic", []string{"/initrd.img-6.5.0-35-generic"}, ubu22 + " quiet splash vt.handoff=7", ""},
			{adv + "Ubuntu, with Linux 6.5.0-35-generic", "gnulinux-6.5.0-35-generic-advanced-1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "/vmlinuz-6.5.0-35-generic", []string{"/initrd.img-6.5.0-35-generic"}, ubu22 + " quiet splash vt.handoff=7", ""},
			{adv + "Ubuntu, with Linux 6.5.0-35-generic (recovery mode)", "gnulinux-6.5.0-35-generic-recovery-1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "/vmlinuz-6.5.0-35-generic", []string{"/initrd.img-6.5.0-35-generic"}, ubu22 + " recovery nomodeset dis_ucode_ldr", ""},
			{"Memory test (memtest86+.bin)", "", "/memtest86+.bin", nil, "", ""},
			{"Ubuntu, LTS kernel 5.15.0-105-generic", "lts-5.15.0-105-generic", "/vmlinuz-5.15.0-105-generic", []string{"/initrd.img-5.15.0-105-generic"}, ubu22 + " quiet", ""},
			{"Windows Boot Manager (on /dev/nvme0n1p1)", "osprober-efi-0A1B-2C3D", "", nil, "", "chainloader"},
			{"Ubuntu (previous kernel, text console)", "", "/vmlinuz-5.15.0-105-generic", []string{"/initrd.img-5.15.0-105-generic"}, ubu22 + " systemd.unit=multi-user.target", ""},
		}, 4, 10},
		// Yocto's grub-efi: EFI/BOOT/grub.cfg, `menuentry 'x'{` with no
		// blank, a one-line body `{linux …;initrd …;}`, default by title.
		{"yocto", []ent{
			{"boot", "", "/bzImage", nil, "LABEL=boot root=PARTUUID=4a6f0c2e-02 rootwait console=ttyS0,115200 console=tty0", ""},
			{"install", "", "/bzImage", []string{"/initrd"}, "LABEL=install-efi root=/dev/ram0 console=ttyS0,115200", ""},
		}, 0, 10},
		// The Debian installer's isolinux menu: INCLUDEs several deep,
		// DEFAULT vesamenu.c32 (the UI, not a label), MENU DEFAULT of the
		// top menu wins and the one inside "Advanced options" stays there,
		// MENU BEGIN/END nested twice, '^' hotkey marks dropped, TEXT HELP
		// skipped, COM32/CONFIG/boot-sector labels listed as not
		// bootable, TIMEOUT 0 (wait) is romboot's default timeout.
		{"debian-installer", []ent{
			{"Graphical install", "installgui", "/install.amd/vmlinuz", gtk, "vga=788 --- quiet", ""},
			{"Install", "install", "/install.amd/vmlinuz", di, "vga=788 --- quiet", ""},
			{ao + "Graphical expert install", "expertgui", "/install.amd/vmlinuz", gtk, "priority=low vga=788 ---", ""},
			{ao + "Graphical rescue mode", "rescuegui", "/install.amd/vmlinuz", gtk, "vga=788 rescue/enable=true --- quiet", ""},
			{ao + "Expert install", "expert", "/install.amd/vmlinuz", di, "priority=low vga=788 ---", ""},
			{ao + "Rescue mode", "rescue", "/install.amd/vmlinuz", di, "vga=788 rescue/enable=true --- quiet", ""},
			{ao + "Hardware detection tool (HDT)", "hdt", "", nil, "", "COM32 module (hdt.c32)"},
			{ao + "Memory diagnostic tool (memtest86+)", "memtest", "", nil, "", "boot sector image (/live/memtest.bin)"},
			{ao + "Speech-enabled advanced options > Expert install with speech synthesis", "expertspeech", "/install.amd/vmlinuz", gtk, "priority=low vga=788 speakup.synth=soft --- quiet", ""},
			{"Help", "help", "", nil, "", "another syslinux configuration (prompt.cfg)"},
		}, 0, -1},
		// Arch's syslinux.cfg: relative paths, comma initrd lists, INCLUDE,
		// initrd= inside APPEND, COM32 entries listed as not bootable,
		// TIMEOUT in tenths.
		{"extlinux", []ent{
			{"Arch Linux", "arch", "/vmlinuz-linux", []string{"/intel-ucode.img", "/initramfs-linux.img"}, archRoot, ""},
			{"Arch Linux Fallback", "archfallback", "/vmlinuz-linux", []string{"/initramfs-linux-fallback.img"}, archRoot, ""},
			{"Arch Linux LTS (single user)", "lts", "/vmlinuz-linux-lts", []string{"/initramfs-linux-lts.img"}, archRoot + " single", ""},
			{"HDT (Hardware Detection Tool)", "hdt", "", nil, "", "COM32 module (hdt.c32)"},
			{"Reboot", "reboot", "", nil, "", "COM32 module (reboot.c32)"},
		}, 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := Find(os.DirFS("testdata/"+tc.dir), Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, m, tc.entries, tc.def, tc.timeout)
			if e, err := m.DefaultEntry(); err != nil || e.Title != tc.entries[tc.def].title {
				t.Errorf("DefaultEntry %q (%v)", e.Title, err)
			}
		})
	}
}
