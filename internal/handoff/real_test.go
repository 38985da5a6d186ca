package handoff

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/initrd"
)

// The initrds Debian's own tools made (scripts/mkinstall caches the
// installed trees): update-initramfs with cryptsetup-initramfs, and dracut.
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
		cmd    string
	}{
		{"initramfs-tools", InitramfsTools, "root_crypt", "root=/dev/mapper/root_crypt ro console=ttyS0 quiet"},
		{"dracut", Systemd, "luks-5e1f0000-0000-4000-8000-00000000f1c5", "root=UUID=5e1f0000-0000-4000-8000-0000000af0f5 ro console=ttyS0 rd.luks.uuid=5e1f0000-0000-4000-8000-00000000f1c5 quiet"},
	} {
		t.Run(tc.flavor, func(t *testing.T) {
			tars, _ := filepath.Glob(filepath.Join(cache, "romboot/install/debian12-"+tc.flavor+"-*.tar"))
			if len(tars) == 0 {
				t.Skipf("no installed tree cached: run scripts/mkinstall --initramfs %s", tc.flavor)
			}
			data := initrdFromTar(t, tars[len(tars)-1])
			plan, err := Find(data, tc.cmd, initrd.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Flavor != tc.want || len(plan.Volumes) != 1 || plan.Volumes[0].Name != tc.name {
				t.Fatalf("flavor %s volumes %q notes %q, want %s with %s", plan.Flavor, names(plan.Volumes), plan.Notes, tc.want, tc.name)
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
			t.Logf("%s: %d bytes, members %+v, %d entries", tc.flavor, len(data), rd.Members, rd.Entries)
		})
	}
}

func initrdFromTar(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s: no boot/initrd.img-*", p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(strings.TrimPrefix(h.Name, "./"), "boot/initrd.img-") && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
