package handoff

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/initrd"
)

// The initrds Debian's own tools made (scripts/mkinstall caches the
// installed trees): update-initramfs with cryptsetup-initramfs, and dracut,
// with the command line of the default entry of the grub.cfg grub-mkconfig
// made. The volume found must be the one that command line's root= waits
// for: an initramfs opening it under another name never finds its root,
// handed over or typed (the dracut image once had root=/dev/mapper/root_crypt
// for a volume dracut opens as luks-UUID, and hung after unlocking it).
// Skipped until mkinstall has run on this machine.
func TestRealDebianInitrds(t *testing.T) {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	for _, tc := range []struct {
		flavor string
		want   Flavor
		name   string
	}{
		{"initramfs-tools", InitramfsTools, "root_crypt"},
		{"dracut", Systemd, "luks-5e1f0000-0000-4000-8000-00000000f1c5"},
	} {
		t.Run(tc.flavor, func(t *testing.T) {
			tree := newestTar(filepath.Join(cache, "romboot/install/debian12-"+tc.flavor+"-*.tar"))
			if tree == "" {
				t.Skipf("no installed tree cached: run scripts/mkinstall --initramfs %s", tc.flavor)
			}
			boot := bootFromTar(t, tree)
			menu, err := bootentry.Find(boot, bootentry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := menu.Entries[menu.Default]
			if e.Broken != "" || len(e.Initrds) != 1 {
				t.Fatalf("default entry %q: initrds %q, broken %q", e.Title, e.Initrds, e.Broken)
			}
			data := boot[strings.TrimPrefix(e.Initrds[0], "/")].Data
			plan, err := Find(data, e.Cmdline, initrd.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Flavor != tc.want || len(plan.Volumes) != 1 || plan.Volumes[0].Name != tc.name {
				t.Fatalf("flavor %s volumes %q notes %q, want %s with %s", plan.Flavor, names(plan.Volumes), plan.Notes, tc.want, tc.name)
			}
			root, _ := cmdline.Parse(e.Cmdline).Get("root")
			if dm, ok := strings.CutPrefix(root, "/dev/mapper/"); ok && dm != plan.Volumes[0].Name {
				t.Errorf("the entry's root=%s waits for a mapping the initrd never makes (it opens %s)", root, plan.Volumes[0].Name)
			}
			arc, err := plan.Archive(plan.Volumes, []byte("pass"))
			if err != nil {
				t.Fatal(err)
			}
			all := append(append(data, make([]byte, Padding(int64(len(data))))...), arc...)
			rd, err := initrd.Read(all, func(e initrd.Entry) bool { return strings.HasSuffix(e.Name, ".key") }, initrd.Limits{})
			if err != nil || string(rd.Files[plan.Volumes[0].KeyFile]) != "pass" {
				t.Fatalf("appended to the real initrd: key file %q, err %v", rd.Files[plan.Volumes[0].KeyFile], err)
			}
			t.Logf("%s: %q; %d bytes, members %+v, %d entries", tc.flavor, e.Cmdline, len(data), rd.Members, rd.Entries)
		})
	}
}

// newestTar is the most recently made of the cached trees matching glob
// (mkinstall keys them by its own text: an older one is an older script's).
func newestTar(glob string) string {
	tars, _ := filepath.Glob(glob)
	var newest string
	var when time.Time
	for _, p := range tars {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(when) {
			newest, when = p, st.ModTime()
		}
	}
	return newest
}

// bootFromTar is the installed tree's /boot (regular files), as the /boot
// partition's filesystem shows it.
func bootFromTar(t *testing.T, p string) fstest.MapFS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys := fstest.MapFS{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fsys
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(strings.TrimPrefix(h.Name, "./"), "boot/")
		if !ok || name == "" || h.Typeflag != tar.TypeReg || strings.HasPrefix(name, "System.map") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
}
