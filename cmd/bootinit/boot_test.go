package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/console"
	"github.com/romboot/romboot/internal/earlyinit"
	"github.com/romboot/romboot/internal/luks"
)

func TestParseOptions(t *testing.T) {
	o, warns := parseOptions("console=ttyS0 quiet")
	if len(warns) != 0 || o != defaultOptions() || o.tries != 3 || o.wait != 10*time.Second || o.keyslot != -1 || o.timeout != -1 || o.boot != nil {
		t.Fatalf("defaults: %+v %q", o, warns)
	}
	o, warns = parseOptions(`romboot.boot=PARTUUID=abc romboot.tries=5 romboot.wait=2.5 romboot.settle=1 romboot.keyslot=1 romboot.timeout=0 romboot.entry=2 romboot.cmdline_append=single romboot.cmdline="root=/dev/sda2 ro" romboot.thp=never romboot.diag=0.0.0.0:80 romboot.diag_engine=uring`)
	if len(warns) != 0 {
		t.Fatal(warns)
	}
	if o.boot.String() != "PARTUUID=abc" || o.tries != 5 || o.wait != 2500*time.Millisecond || o.settle != time.Second || o.keyslot != 1 || o.timeout != 0 ||
		o.entry != "2" || o.append != "single" || o.cmdline != "root=/dev/sda2 ro" || o.thp != "never" || o.diag != "0.0.0.0:80" || o.diagEngine != "uring" {
		t.Fatalf("%+v", o)
	}
}

// Every unusable option is one warning and the default; the boot goes on.
func TestOptionsDegrade(t *testing.T) {
	def := defaultOptions()
	for _, tc := range []struct {
		word, warn string
		same       func(o options) bool
	}{
		{"romboot.boot=sda1", "romboot.boot=sda1: device spec", func(o options) bool { return o.boot == nil }},
		{"romboot.tries=0", "want a whole number from 1 to 100", func(o options) bool { return o.tries == def.tries }},
		{"romboot.tries=x", "romboot.tries=x", func(o options) bool { return o.tries == def.tries }},
		{"romboot.wait=-1", "want seconds from 0 to 600", func(o options) bool { return o.wait == def.wait }},
		{"romboot.wait=NaN", "want seconds", func(o options) bool { return o.wait == def.wait }},
		{"romboot.settle=99", "want seconds from 0 to 30", func(o options) bool { return o.settle == def.settle }},
		{"romboot.keyslot=32", "want a whole number from 0 to 31", func(o options) bool { return o.keyslot == -1 }},
		{"romboot.timeout=45", "romboot.timeout=45: want a whole number from 0 to 30; ignored, using the default", func(o options) bool { return o.timeout == -1 }},
		{"romboot.thp=sometimes", "want always, madvise or never", func(o options) bool { return o.thp == "always" }},
		{"romboot.diag_engine=epoll", "want pool or uring", func(o options) bool { return o.diagEngine == "" }},
		{"romboot.handoff=maybe", "want auto or off", func(o options) bool { return o.handoff == "" }},
		{"romboot.bogus=1", "romboot.bogus=1: unknown option, ignored", func(o options) bool { return o == def }},
	} {
		o, warns := parseOptions("console=ttyS0 " + tc.word + " quiet")
		if len(warns) != 1 || !strings.Contains(warns[0], tc.warn) {
			t.Errorf("%s: warnings %q, want one with %q", tc.word, warns, tc.warn)
		}
		if !tc.same(o) {
			t.Errorf("%s: %+v, want the default kept", tc.word, o)
		}
	}
	// All together: one warning each, the good ones still apply.
	o, warns := parseOptions("romboot.timeout=45 romboot.tries=2 romboot.keyslot=99 romboot.wait=x romboot.entry=gone")
	if len(warns) != 3 || o.tries != 2 || o.entry != "gone" {
		t.Errorf("%+v %q", o, warns)
	}
	// A bad later word does not undo a good earlier one; a good later one wins.
	if o, _ := parseOptions("romboot.tries=5 romboot.tries=x"); o.tries != 5 {
		t.Errorf("tries %d, want 5", o.tries)
	}
	// A secret is never echoed in a warning.
	if _, warns := parseOptions("romboot.passkey=hunter2"); len(warns) != 1 || strings.Contains(warns[0], "hunter2") {
		t.Errorf("secret in warning: %q", warns)
	}
}

// testBooter is a booter whose console is a pipe the test types into.
func testBooter(t *testing.T) (*booter, *os.File, *bytes.Buffer) {
	t.Helper()
	old := earlyinit.ConsoleLevel
	earlyinit.ConsoleLevel = func(int) error { return nil }
	t.Cleanup(func() { earlyinit.ConsoleLevel = old })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	var out bytes.Buffer
	b := &booter{log: bootlog.New(&out), con: &console.Console{In: r, Out: &out}, state: newState()}
	return b, w, &out
}

func menu3() *bootentry.Menu {
	return &bootentry.Menu{Default: 0, Timeout: 5, Entries: []bootentry.Entry{
		{Title: "Debian", Kernel: "/vmlinuz-a", Cmdline: "root=/dev/a ro"},
		{Title: "Old", Kernel: "/vmlinuz-old", Broken: "kernel /vmlinuz-old not found"},
		{Title: "Debian (recovery)", Kernel: "/vmlinuz-a", Cmdline: "root=/dev/a ro single"},
	}}
}

func TestEntryDegrades(t *testing.T) {
	b, _, out := testBooter(t)
	m := menu3()
	m.NextEntry = "2"
	b.applyEntry(m, options{entry: "vmlinuz-6.1.0-17 (removed)"})
	if m.Default != 0 {
		t.Errorf("default %d, want the config's 0", m.Default)
	}
	for _, want := range []string{`romboot: warning: romboot.entry="vmlinuz-6.1.0-17 (removed)": no entry has that title`, `using the config's default "Debian"`, `next_entry="2" (grub-reboot): ignored`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	b, _, out = testBooter(t)
	m = menu3()
	b.applyEntry(m, options{entry: "Debian (recovery)"})
	if m.Default != 2 || strings.Contains(out.String(), "warning") {
		t.Errorf("by title: default %d, console %q", m.Default, out)
	}
	b.fix.entry = 1
	b.applyEntry(m, options{entry: "3"})
	if m.Default != 0 {
		t.Errorf("the recovery menu's choice did not win: %d", m.Default)
	}
}

func TestHasKeyslot(t *testing.T) {
	h := &luks.Header{Keyslots: []luks.Keyslot{{Index: 0, Bound: true}, {Index: 2, Bound: true, Problem: "bad area"}}}
	if !hasKeyslot(h, 0) || hasKeyslot(h, 1) || hasKeyslot(h, 2) {
		t.Error("hasKeyslot")
	}
}

// world is a fake machine for the finder: devices appear at given times.
type world struct {
	t      time.Time
	start  time.Time
	devs   []fakeDev
	warns  []string
	asked  []string
	choice int
}

type fakeDev struct {
	at, ready time.Duration // appears at, opens from
	d         blockdev.Device
	luks      bool
}

func (w *world) finder() *finder {
	w.start = time.Unix(1000, 0)
	w.t = w.start
	return &finder{
		list: func() ([]blockdev.Device, error) {
			var out []blockdev.Device
			for _, f := range w.devs {
				if w.t.Sub(w.start) >= f.at {
					out = append(out, f.d)
				}
			}
			return out, nil
		},
		probe: func(d *blockdev.Device) (*luks.Header, bool, error) {
			for _, f := range w.devs {
				if f.d.Name != d.Name {
					continue
				}
				if w.t.Sub(w.start) < f.ready {
					return nil, false, fmt.Errorf("%w: ENXIO", errNotReady)
				}
				if !f.luks {
					return nil, false, nil
				}
				d.UUID = "uuid-" + d.Name
				return &luks.Header{UUID: d.UUID}, true, nil
			}
			return nil, false, errors.New("gone")
		},
		names: func() string {
			var n []string
			for _, f := range w.devs {
				if w.t.Sub(w.start) >= f.at {
					n = append(n, f.d.Name)
				}
			}
			return strings.Join(n, " ")
		},
		now:   func() time.Time { return w.t },
		sleep: func(d time.Duration) { w.t = w.t.Add(d) },
		warn:  func(f string, a ...any) { w.warns = append(w.warns, fmt.Sprintf(f, a...)) },
		choose: func(title string, items []string) (int, error) {
			w.asked = items
			return w.choice, nil
		},
	}
}

func dev(name string) blockdev.Device {
	return blockdev.Device{Name: name, Path: "/dev/" + name, Size: 1 << 30, PartUUID: "pu-" + name}
}

func TestFindDegrades(t *testing.T) {
	const wait, settle = 10 * time.Second, 300 * time.Millisecond
	spec := func(s string) *blockdev.Spec { p, _ := blockdev.ParseSpec(s); return &p }
	for _, tc := range []struct {
		name    string
		spec    *blockdev.Spec
		devs    []fakeDev
		choice  int
		want    string
		warn    string
		asked   int
		minTime time.Duration
		maxTime time.Duration
	}{
		{name: "one disk settles", devs: []fakeDev{{d: dev("vda1"), luks: true}},
			want: "vda1", minTime: settle, maxTime: settle + 100*time.Millisecond},
		{name: "named appears late and opens later still", spec: spec("PARTUUID=pu-vdb1"),
			devs: []fakeDev{{d: dev("vda1"), luks: true}, {at: 2 * time.Second, ready: 3 * time.Second, d: dev("vdb1"), luks: true}},
			want: "vdb1", minTime: 3 * time.Second, maxTime: 3200 * time.Millisecond},
		{name: "named by UUID", spec: spec("UUID=uuid-vdb1"),
			devs: []fakeDev{{d: dev("vda1"), luks: true}, {d: dev("vdb1"), luks: true}}, want: "vdb1", maxTime: time.Millisecond},
		{name: "named never appears", spec: spec("UUID=gone"), devs: []fakeDev{{d: dev("vda1"), luks: true}},
			want: "vda1", warn: "romboot.boot=UUID=gone: no such device appeared; looking for any LUKS partition", minTime: wait},
		{name: "named is not LUKS", spec: spec("/dev/vda2"), devs: []fakeDev{{d: dev("vda1"), luks: true}, {d: dev("vda2")}},
			want: "vda1", warn: "romboot.boot=/dev/vda2: /dev/vda2 is not a LUKS volume; looking for one"},
		{name: "late second disk: asked", devs: []fakeDev{{d: dev("vda1"), luks: true}, {at: 200 * time.Millisecond, d: dev("vdb1"), luks: true}},
			choice: 1, want: "vdb1", asked: 2, minTime: 500 * time.Millisecond},
		{name: "not ready is not 'not LUKS'", devs: []fakeDev{{ready: time.Second, d: dev("vda1"), luks: true}},
			want: "vda1", minTime: time.Second},
		{name: "nothing", devs: []fakeDev{{d: dev("vda2")}}, want: "", minTime: wait},
	} {
		w := &world{devs: tc.devs, choice: tc.choice}
		f := w.finder()
		c, err := f.find(tc.spec, wait, settle)
		took := w.t.Sub(w.start)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no LUKS partition found after waiting 10s") {
				t.Errorf("%s: %v, want no LUKS partition", tc.name, err)
			}
			continue
		}
		if err != nil || c.dev.Name != tc.want {
			t.Errorf("%s: got %q %v, want %s", tc.name, c.dev.Name, err, tc.want)
		}
		if tc.warn != "" && (len(w.warns) != 1 || w.warns[0] != tc.warn) {
			t.Errorf("%s: warnings %q, want %q", tc.name, w.warns, tc.warn)
		}
		if tc.warn == "" && len(w.warns) != 0 {
			t.Errorf("%s: unexpected warnings %q", tc.name, w.warns)
		}
		if len(w.asked) != tc.asked {
			t.Errorf("%s: asked among %q", tc.name, w.asked)
		}
		if took < tc.minTime || (tc.maxTime > 0 && took > tc.maxTime) {
			t.Errorf("%s: took %v, want %v..%v", tc.name, took, tc.minTime, tc.maxTime)
		}
	}
}

func TestExt4NeedsRecovery(t *testing.T) {
	sb := make([]byte, 4096)
	if isExt, _ := ext4NeedsRecovery(bytes.NewReader(sb)); isExt {
		t.Fatal("zeros taken for ext4")
	}
	sb[1024+0x38], sb[1024+0x39] = 0x53, 0xef
	if isExt, dirty := ext4NeedsRecovery(bytes.NewReader(sb)); !isExt || dirty {
		t.Fatal("clean ext4")
	}
	sb[1024+0x60] |= 0x4
	if isExt, dirty := ext4NeedsRecovery(bytes.NewReader(sb)); !isExt || !dirty {
		t.Fatal("dirty ext4")
	}
}

// The recovery menu's items change this boot only and end in a retry.
func TestRecoveryMenu(t *testing.T) {
	b, w, out := testBooter(t)
	b.setOptions("console=ttyS0 romboot.timeout=45 romboot.entry=gone romboot.diag_token=s3cret")
	b.lastMenu = menu3()
	// e: the third entry; k: a new command line; o: options edited; r.
	w.WriteString("e\n3\nk\n\x15root=/dev/b quiet\ro\n\x15romboot.tries=7 romboot.entry=2 console=tty0\rr\n")
	recovery(b)
	if b.fix.entry != 3 || b.fix.kcmdline != "root=/dev/b quiet" || b.opts.tries != 7 || b.opts.entry != "2" || b.opts.timeout != -1 {
		t.Fatalf("fixes %+v options %+v\n%s", b.fix, b.opts, out)
	}
	if !strings.Contains(b.optSecret, "s3cret") || strings.Contains(out.String(), "s3cret") {
		t.Errorf("the secret option was shown or lost: %q\n%s", b.optSecret, out)
	}
	if !strings.Contains(out.String(), "console: not a romboot.* option, ignored") {
		t.Errorf("no warning for a foreign word:\n%s", out)
	}
	// i: every romboot.* option dropped, and the boot is retried at once.
	w.WriteString("i\n")
	recovery(b)
	if b.opts != defaultOptions() || b.optLine != "" {
		t.Fatalf("ignoring options: %+v %q", b.opts, b.optLine)
	}
	// e before any /boot was read: the menu is shown after unlocking.
	b.lastMenu = nil
	w.WriteString("e\nr\n")
	recovery(b)
	if !b.fix.pickMenu {
		t.Error("no boot menu asked for")
	}
}

// Only characters the kernel's built-in console font has: no "…" or
// other non-ASCII text in what the init prints.
func TestConsoleTextIsASCII(t *testing.T) {
	for _, dir := range []string{".", "../../internal/bootmenu", "../../internal/console", "../../internal/bootlog", "../../internal/blockdev", "../../internal/luks", "../../internal/bootentry", "../../internal/dm", "../../internal/kexec", "../../internal/earlyinit"} {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			ast.Inspect(p, func(n ast.Node) bool {
				if l, ok := n.(*ast.BasicLit); ok && (l.Kind == token.STRING || l.Kind == token.CHAR) {
					for _, r := range l.Value {
						if r > 0x7e {
							t.Errorf("%s: non-ASCII %q in %s", fset.Position(l.Pos()), r, l.Value)
							break
						}
					}
				}
				return true
			})
		}
	}
}

func TestHints(t *testing.T) {
	if h := hintFor(errors.New("no LUKS partition found after waiting 10s for disks")); !strings.Contains(h, "romboot.boot=") {
		t.Errorf("no hint for a missing disk: %q", h)
	}
	if h := hintFor(errors.New("keyslot 0: keyslot KDF cost refused: argon2 needs 1 GiB but only 700 MiB of memory is available")); !strings.Contains(h, "another keyslot") {
		t.Errorf("no hint for memory: %q", h)
	}
	if h := hintFor(&luks.RequirementsError{Requirements: []string{"online-reencrypt-v2"}}); h == "" {
		t.Error("no hint for requirements")
	}
}

// Paths on /boot stay inside /boot: a symlink to an absolute path or up
// through ".." resolves inside the root, never to the host's files.
func TestInRoot(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	os.Mkdir(filepath.Join(dir, "grub"), 0o755)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "abs"))
	os.Symlink("../../../../../../.."+outside+"/secret", filepath.Join(dir, "grub", "up"))
	os.Symlink("/vmlinuz", filepath.Join(dir, "grub", "kernel-link"))
	r, err := openInRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, name := range []string{"abs", "grub/up"} {
		if b, err := fs.ReadFile(r, name); err == nil {
			t.Errorf("%s: read %q from outside the root", name, b)
		}
	}
	if b, err := fs.ReadFile(r, "grub/kernel-link"); err != nil || string(b) != "kernel" {
		t.Errorf("absolute symlink inside the root: %q %v", b, err)
	}
	if _, err := r.Open("../x"); err == nil {
		t.Error("../x opened")
	}
	if m, err := fs.Glob(r, "vmlinu*"); err != nil || len(m) != 1 {
		t.Errorf("glob: %v %v", m, err)
	}
}

// probe tells a device without LUKS from one whose LUKS header is refused,
// also when only the secondary LUKS2 header's magic is left.
func TestProbeDamagedHeaders(t *testing.T) {
	orig, err := os.ReadFile("../../internal/luks/testdata/luks2-header.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		edit         func(b []byte)
		luks, header bool
	}{
		{"intact", func([]byte) {}, true, true},
		{"primary wiped: the secondary opens", func(b []byte) { clear(b[:4096]) }, true, true},
		{"primary wiped, secondary damaged", func(b []byte) { clear(b[:4096]); b[16384+4096+10] ^= 0xff }, true, false},
		{"both wiped", func(b []byte) { clear(b[:16384+4096]) }, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			c.edit(b)
			p := filepath.Join(t.TempDir(), "dev")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			d := blockdev.Device{Path: p, Size: int64(len(b))}
			h, isLUKS, err := probe(&d)
			if isLUKS != c.luks || (h != nil) != c.header {
				t.Fatalf("probe: header %v, LUKS %v, err %v; want header %v, LUKS %v", h != nil, isLUKS, err, c.header, c.luks)
			}
			if c.luks && !c.header && err == nil {
				t.Error("a refused header came without its reason")
			}
		})
	}
}
