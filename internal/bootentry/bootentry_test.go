package bootentry

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

type want struct {
	title, id, kernel string
	initrds           []string
	cmdline           string
}

func checkMenu(t *testing.T, m *Menu, entries []want, def, timeout int) {
	t.Helper()
	if len(m.Entries) != len(entries) {
		for _, e := range m.Entries {
			t.Logf("got %+v", e)
		}
		t.Fatalf("%d entries, want %d", len(m.Entries), len(entries))
	}
	for i, w := range entries {
		g := m.Entries[i]
		if g.Title != w.title || g.ID != w.id || g.Kernel != w.kernel || !reflect.DeepEqual(g.Initrds, w.initrds) || g.Cmdline != w.cmdline || g.Broken != "" {
			t.Errorf("entry %d:\n got %q %q %q %q %q broken=%q\nwant %q %q %q %q %q", i, g.Title, g.ID, g.Kernel, g.Initrds, g.Cmdline, g.Broken, w.title, w.id, w.kernel, w.initrds, w.cmdline)
		}
	}
	if m.Default != def || m.Timeout != timeout {
		t.Errorf("default %d timeout %d, want %d and %d", m.Default, m.Timeout, def, timeout)
	}
}

const (
	debRoot  = "root=UUID=5c3e1d2a-0000-4000-8000-000000000003 ro"
	debID    = "5c3e1d2a-0000-4000-8000-000000000003"
	ubuID    = "3f9e2b7a-1c4d-4e8f-a0b1-c2d3e4f5a6b7"
	ubuRoot  = "root=/dev/mapper/ubuntu--vg-ubuntu--lv ro"
	fedMID   = "6a1f0c5e2b3d4c7a8e9f0a1b2c3d4e5f"
	fedOpts  = "root=UUID=b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e ro rootflags=subvol=root rhgb quiet"
	archID   = "99887766-5544-4332-8110-ffeeddccbbaa"
	archRoot = "root=/dev/mapper/cryptroot rw"
)

// TestDistroFixtures: /boot trees in the shape each distro's tools write
// them, with every entry, the default and the timeout asserted.
func TestDistroFixtures(t *testing.T) {
	adv := "Advanced options for "
	cases := []struct {
		dir          string
		entries      []want
		def, timeout int
	}{
		// Debian 12, update-grub: a simple entry, then the Advanced options
		// submenu with a recovery entry and an older kernel.
		{"debian12", []want{
			{"Debian GNU/Linux", "gnulinux-simple-" + debID, "/vmlinuz-6.1.0-18-amd64", []string{"/initrd.img-6.1.0-18-amd64"}, debRoot + " quiet"},
			{adv + "Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-18-amd64", "gnulinux-6.1.0-18-amd64-advanced-" + debID, "/vmlinuz-6.1.0-18-amd64", []string{"/initrd.img-6.1.0-18-amd64"}, debRoot + " quiet"},
			{adv + "Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)", "gnulinux-6.1.0-18-amd64-recovery-" + debID, "/vmlinuz-6.1.0-18-amd64", []string{"/initrd.img-6.1.0-18-amd64"}, debRoot + " single"},
			{adv + "Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-17-amd64", "gnulinux-6.1.0-17-amd64-advanced-" + debID, "/vmlinuz-6.1.0-17-amd64", []string{"/initrd.img-6.1.0-17-amd64"}, debRoot + " quiet"},
		}, 0, 5},
		// Ubuntu 24.04: hidden menu with timeout 0; $vt_handoff comes from
		// the gfxmode function called inside the entry with an exported
		// variable; the recovery entry does not call it.
		{"ubuntu2404", []want{
			{"Ubuntu", "gnulinux-simple-" + ubuID, "/vmlinuz-6.8.0-31-generic", []string{"/initrd.img-6.8.0-31-generic"}, ubuRoot + " quiet splash vt.handoff=7"},
			{adv + "Ubuntu > Ubuntu, with Linux 6.8.0-31-generic", "gnulinux-6.8.0-31-generic-advanced-" + ubuID, "/vmlinuz-6.8.0-31-generic", []string{"/initrd.img-6.8.0-31-generic"}, ubuRoot + " quiet splash vt.handoff=7"},
			{adv + "Ubuntu > Ubuntu, with Linux 6.8.0-31-generic (recovery mode)", "gnulinux-6.8.0-31-generic-recovery-" + ubuID, "/vmlinuz-6.8.0-31-generic", []string{"/initrd.img-6.8.0-31-generic"}, ubuRoot + " recovery nomodeset dis_ucode_ldr"},
		}, 0, 0},
		// Fedora 40: grub.cfg with blscfg; entries from loader/entries,
		// newest first, rescue last; default from grubenv's saved_entry
		// (the older kernel, as after `grubby --set-default`).
		{"fedora40", []want{
			{"Fedora Linux (6.9.7-200.fc40.x86_64) 40 (Workstation Edition)", fedMID + "-6.9.7-200.fc40.x86_64", "/vmlinuz-6.9.7-200.fc40.x86_64", []string{"/initramfs-6.9.7-200.fc40.x86_64.img"}, fedOpts},
			{"Fedora Linux (6.8.5-301.fc40.x86_64) 40 (Workstation Edition)", fedMID + "-6.8.5-301.fc40.x86_64", "/vmlinuz-6.8.5-301.fc40.x86_64", []string{"/initramfs-6.8.5-301.fc40.x86_64.img"}, fedOpts},
			{"Fedora Linux (0-rescue-" + fedMID + ") 40 (Workstation Edition)", fedMID + "-0-rescue", "/vmlinuz-0-rescue-" + fedMID, []string{"/initramfs-0-rescue-" + fedMID + ".img"}, fedOpts},
		}, 1, 5},
		// Arch, grub-mkconfig: microcode first, then the initramfs.
		{"arch", []want{
			{"Arch Linux", "gnulinux-simple-" + archID, "/vmlinuz-linux", []string{"/intel-ucode.img", "/initramfs-linux.img"}, archRoot + " loglevel=3 quiet"},
			{adv + "Arch Linux > Arch Linux, with Linux linux", "gnulinux-linux-advanced-" + archID, "/vmlinuz-linux", []string{"/intel-ucode.img", "/initramfs-linux.img"}, archRoot + " loglevel=3 quiet"},
			{adv + "Arch Linux > Arch Linux, with Linux linux (fallback initramfs)", "gnulinux-linux-fallback-" + archID, "/vmlinuz-linux", []string{"/intel-ucode.img", "/initramfs-linux-fallback.img"}, archRoot + " loglevel=3 quiet"},
		}, 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := Find(os.DirFS("testdata/"+tc.dir), Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkMenu(t, m, tc.entries, tc.def, tc.timeout)
		})
	}
}

func TestOverrides(t *testing.T) {
	fsys := os.DirFS("testdata/debian12")
	for spec, want := range map[string]int{"3": 2, "gnulinux-6.1.0-17-amd64-advanced-" + debID: 3, "Debian GNU/Linux": 0} {
		m, err := Find(fsys, Options{Entry: spec, CmdlineAppend: "console=ttyS0"})
		if err != nil || m.Default != want {
			t.Fatalf("entry %q: default %v (%v), want %d", spec, m, err, want)
		}
		if !strings.HasSuffix(m.Entries[want].Cmdline, " console=ttyS0") {
			t.Fatalf("append not applied: %q", m.Entries[want].Cmdline)
		}
	}
	if _, err := Find(fsys, Options{Entry: "Windows"}); err == nil {
		t.Fatal("unknown romboot.entry accepted")
	}
}

func TestBLSSpec(t *testing.T) {
	conf := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	fsys := fstest.MapFS{
		"loader/entries/a-6.9.conf":  conf("title A\nversion 6.9\nlinux /a-6.9\noptions one\n"),
		"loader/entries/a-6.10.conf": conf("title\tA\nversion\t6.10\nlinux\t/a-6.10\ninitrd /ucode\ninitrd /a-6.10.img\noptions one  two\noptions   three\n"),
		"loader/entries/z.conf":      conf("title Z\nsort-key zzz\nversion 1\nlinux /z\n"),
		"loader/entries/arm.conf":    conf("title ARM\narchitecture aa64\nlinux /arm\n"),
		"loader/entries/vars.conf":   conf("title V\nlinux /v\noptions $kernelopts extra\n"),
		"loader/loader.conf":         conf("timeout 3\ndefault a-6.1*\n"),
		"a-6.9":                      conf("k"), "a-6.10": conf("k"), "z": conf("k"), "v": conf("k"), "ucode": conf("u"), "a-6.10.img": conf("i"),
	}
	m, err := Find(fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range m.Entries {
		ids = append(ids, e.ID)
	}
	// sort-key first; then by file name, newest version first (6.10 after 6.9 in version order).
	if got := strings.Join(ids, " "); got != "z vars a-6.10 a-6.9" {
		t.Fatalf("order %q", got)
	}
	e := m.Entries[2]
	if e.Cmdline != "one two three" || !reflect.DeepEqual(e.Initrds, []string{"/ucode", "/a-6.10.img"}) || e.Title != "A (6.10)" {
		t.Fatalf("entry %+v", e)
	}
	if m.Default != 2 || m.Timeout != 3 {
		t.Fatalf("default %d timeout %d", m.Default, m.Timeout)
	}
	// blscfg expands $kernelopts from grubenv, as Fedora 28-32 wrote it.
	fsys["grub2/grub.cfg"] = conf("load_env\nblscfg\n")
	fsys["grub2/grubenv"] = conf("kernelopts=root=/dev/sda2 ro\n")
	m, _ = Find(fsys, Options{})
	for _, e := range m.Entries {
		if e.ID == "vars" && e.Cmdline != "root=/dev/sda2 ro extra" {
			t.Fatalf("blscfg $kernelopts: %q", e.Cmdline)
		}
	}
}

func TestGrubDefaults(t *testing.T) {
	cfg := func(pre string) fstest.MapFS {
		return fstest.MapFS{
			"grub/grub.cfg": {Data: []byte(pre + `
menuentry 'A' --id a { linux /vmlinuz-a x=a }
submenu 'Sub' {
  menuentry 'B' --id b { linux /vmlinuz-b x=b; initrd /ucode.img /initrd-b }
  menuentry "C \"q\"" { linux /boot/vmlinuz-c x=c }
}
`)},
			"vmlinuz-a": {Data: []byte("k")}, "vmlinuz-b": {Data: []byte("k")}, "vmlinuz-c": {Data: []byte("k")},
			"ucode.img": {Data: []byte("u")}, "initrd-b": {Data: []byte("i")},
			"grub/grubenv": {Data: []byte("# GRUB Environment Block\nsaved_entry=b\n" + strings.Repeat("#", 900))},
		}
	}
	for _, tc := range []struct{ pre, title string }{
		{"", "A"},
		{"set default=\"1>1\"", `Sub > C "q"`},
		{"set default=b", "Sub > B"},
		{"set default='Sub>B'", "Sub > B"},
		{"load_env\nset default=\"${saved_entry}\"", "Sub > B"},
		{"if [ -s $prefix/grubenv ]; then\n load_env\nfi\nif [ \"${saved_entry}\" ] ; then set default=\"${saved_entry}\"; else set default=0; fi", "Sub > B"},
	} {
		m, err := Find(cfg(tc.pre), Options{})
		if err != nil {
			t.Fatalf("%q: %v", tc.pre, err)
		}
		e, err := m.DefaultEntry()
		if err != nil || e.Title != tc.title {
			t.Errorf("%q: default %q (%v), want %q", tc.pre, e.Title, err, tc.title)
		}
	}
	m, _ := Find(cfg(""), Options{})
	if b := m.Entries[1]; !reflect.DeepEqual(b.Initrds, []string{"/ucode.img", "/initrd-b"}) || b.Cmdline != "x=b" {
		t.Errorf("B: %+v", b)
	}
	if c := m.Entries[2]; c.Kernel != "/vmlinuz-c" {
		t.Errorf("C kernel %q, want /boot prefix dropped", c.Kernel)
	}
}

func TestBrokenEntry(t *testing.T) {
	m, err := Find(fstest.MapFS{
		"grub/grub.cfg": {Data: []byte("menuentry 'gone' { linux /vmlinuz-gone }\nmenuentry 'ok' { linux /vmlinuz-ok; initrd /nope }\n")},
		"vmlinuz-ok":    {Data: []byte("k")},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Entries[0].Broken == "" || m.Entries[1].Broken == "" {
		t.Fatalf("missing kernel/initrd not marked broken: %+v", m.Entries)
	}
	if _, err := m.DefaultEntry(); err == nil {
		t.Fatal("DefaultEntry booted a broken entry")
	}
}

func TestFallback(t *testing.T) {
	m, err := Find(os.DirFS("testdata/fallback"), Options{FallbackCmdline: "root=/dev/vda2"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.Entries {
		got = append(got, e.Kernel+"|"+strings.Join(e.Initrds, ","))
	}
	want := []string{"/vmlinuz-6.10.0|/initrd.img-6.10.0", "/vmlinuz-6.9.0|/initramfs-6.9.0.img", "/vmlinuz-6.1.0-10|"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if m.Entries[0].Cmdline != "root=/dev/vda2" {
		t.Fatalf("cmdline %q", m.Entries[0].Cmdline)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"6.10", "6.9", 1}, {"6.1.0-18-amd64", "6.1.0-9-amd64", 1}, {"1.0~rc1", "1.0", -1},
		{"5.4", "5.4", 0}, {"5.4.1", "5.4", 1}, {"010", "9", 1},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestGrubGarbage(t *testing.T) {
	for _, s := range []string{"menuentry 'x' {", "}", "if [ a ]; then", "menuentry \"unterminated", strings.Repeat("{ ", 100)} {
		_, _ = Find(fstest.MapFS{"grub/grub.cfg": {Data: []byte(s)}}, Options{})
	}
}

func FuzzBLS(f *testing.F) {
	f.Add([]byte("title A\nversion 1\nlinux /k\ninitrd /i\noptions a b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseBLSEntry("x", b)
		_ = findBLS(fstest.MapFS{"loader/entries/x.conf": {Data: b}, "loader/loader.conf": {Data: b}})
	})
}

func FuzzExtlinux(f *testing.F) {
	for _, p := range []string{"testdata/extlinux/syslinux/syslinux.cfg", "testdata/debian-installer/isolinux/menu.cfg", "testdata/debian-installer/isolinux/adtxt.cfg"} {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// INCLUDE of itself must terminate.
		m := findExtlinux(fstest.MapFS{"extlinux/extlinux.conf": {Data: append([]byte("INCLUDE extlinux.conf\n"), b...)}})
		if m != nil && (m.Default < 0 || m.Default >= len(m.Entries)) {
			t.Fatalf("default %d of %d entries", m.Default, len(m.Entries))
		}
	})
}

func FuzzGrub(f *testing.F) {
	for _, p := range []string{"testdata/debian12/grub/grub.cfg", "testdata/rhel8/grub2/grub.cfg", "testdata/ubuntu2204/grub/grub.cfg", "testdata/yocto/EFI/BOOT/grub.cfg"} {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Add([]byte("menuentry a { linux /k }"))
	f.Add([]byte("source custom.cfg\nload_env\nblscfg\nfor i in a b; do menuentry \"$i\" $i { linux /k $2 ${10} }; done\nif [ ( a -o ! b ) -a c ]; then set default=1; fi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The same bytes as grub.cfg, a sourced file, grubenv and a BLS
		// entry: source, load_env and blscfg run on hostile input too.
		file := &fstest.MapFile{Data: b}
		fsys := fstest.MapFS{"grub/grub.cfg": file, "grub/custom.cfg": file, "grub/grubenv": file, "loader/entries/a.conf": file, "k": {Data: []byte("k")}}
		m, err := parseGrub(fsys, "grub/grub.cfg", b)
		if err == nil && (m.Default < 0 || m.Default >= max(len(m.Entries), 1)) {
			t.Fatalf("default %d of %d entries", m.Default, len(m.Entries))
		}
	})
}

// grub-reboot's next_entry is reported, not followed: GRUB would clear it
// with save_env, which a read-only /boot cannot do.
func TestGrubNextEntryIgnored(t *testing.T) {
	m, err := Find(fstest.MapFS{
		"grub/grub.cfg": {Data: []byte("load_env\nif [ \"${next_entry}\" ] ; then\n set default=\"${next_entry}\"\n set next_entry=\n save_env next_entry\nelse\n set default=\"0\"\nfi\n" +
			"menuentry 'A' { linux /vmlinuz-a }\nmenuentry 'B' { linux /vmlinuz-a }\n")},
		"grub/grubenv": {Data: []byte("# GRUB Environment Block\nnext_entry=1\n" + strings.Repeat("#", 900))},
		"vmlinuz-a":    {Data: []byte("k")},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.NextEntry != "1" || m.Default != 0 {
		t.Errorf("NextEntry %q default %d, want \"1\" and the config's 0", m.NextEntry, m.Default)
	}
}
