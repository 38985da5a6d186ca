package bootentry

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDebian12(t *testing.T) {
	m, err := Find(os.DirFS("testdata/debian12"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Title: "Debian GNU/Linux", ID: "gnulinux-simple-5c3e1d2a-0000-4000-8000-000000000003", Kernel: "/vmlinuz-6.1.0-18-amd64", Initrds: []string{"/initrd.img-6.1.0-18-amd64"}, Cmdline: "root=UUID=5c3e1d2a-0000-4000-8000-000000000003 ro quiet"},
		{Title: "Advanced options for Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-18-amd64", ID: "gnulinux-6.1.0-18-amd64-advanced-5c3e1d2a-0000-4000-8000-000000000003", Kernel: "/vmlinuz-6.1.0-18-amd64", Initrds: []string{"/initrd.img-6.1.0-18-amd64"}, Cmdline: "root=UUID=5c3e1d2a-0000-4000-8000-000000000003 ro quiet"},
		{Title: "Advanced options for Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)", ID: "gnulinux-6.1.0-18-amd64-recovery-5c3e1d2a-0000-4000-8000-000000000003", Kernel: "/vmlinuz-6.1.0-18-amd64", Initrds: []string{"/initrd.img-6.1.0-18-amd64"}, Cmdline: "root=UUID=5c3e1d2a-0000-4000-8000-000000000003 ro single"},
		{Title: "Advanced options for Debian GNU/Linux > Debian GNU/Linux, with Linux 6.1.0-17-amd64", ID: "gnulinux-6.1.0-17-amd64-advanced-5c3e1d2a-0000-4000-8000-000000000003", Kernel: "/vmlinuz-6.1.0-17-amd64", Initrds: []string{"/initrd.img-6.1.0-17-amd64"}, Cmdline: "root=UUID=5c3e1d2a-0000-4000-8000-000000000003 ro quiet"},
	}
	if len(m.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(m.Entries), len(want), m.Entries)
	}
	for i, w := range want {
		g := m.Entries[i]
		if g.Title != w.Title || g.ID != w.ID || g.Kernel != w.Kernel || !reflect.DeepEqual(g.Initrds, w.Initrds) || g.Cmdline != w.Cmdline || g.Broken != "" {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if m.Default != 0 || m.Timeout != 5 {
		t.Errorf("default %d timeout %d, want 0 and 5", m.Default, m.Timeout)
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

func FuzzGrub(f *testing.F) {
	data, _ := os.ReadFile("testdata/debian12/grub/grub.cfg")
	f.Add(data)
	f.Add([]byte("menuentry a { linux /k }"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseGrub(fstest.MapFS{}, "grub/grub.cfg", b)
	})
}
