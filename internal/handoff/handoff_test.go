package handoff

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/initrd"
	"github.com/romboot/romboot/internal/testutil"
)

// mkInitrd is an initrd as the tools leave it: an uncompressed microcode
// archive, then the main archive gzipped.
func mkInitrd(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var fs []file
	for n, c := range files {
		fs = append(fs, file{name: n, mode: 0o100644, data: []byte(c)})
	}
	ucode := writeNewc([]file{{name: "kernel/x86/microcode/GenuineIntel.bin", mode: 0o100644, data: []byte("ucode")}})
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(writeNewc(fs))
	w.Close()
	return append(ucode, z.Bytes()...)
}

const rootUUID = "5e1f0000-0000-4000-8000-00000000f1c5"

func names(vs []Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name+" "+v.Source+" "+v.KeyFile)
	}
	return out
}

func TestFindInitramfsTools(t *testing.T) {
	tab := "# comment\nroot_crypt UUID=" + rootUUID + " none luks,discard\n" +
		"swap_crypt /dev/vda3 /dev/urandom swap\n" +
		"home\\040x UUID=1111 none luks,keyscript=decrypt_keyctl\n" +
		"data PARTUUID=2222 none luks\n"
	img := mkInitrd(t, map[string]string{cryptrootScript: "#!/bin/sh\n", cryptrootTab: tab})
	plan, err := Find(img, "root=/dev/mapper/root_crypt ro quiet", initrd.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"root_crypt UUID=" + rootUUID + " cryptroot/keyfiles/root_crypt.key",
		"data PARTUUID=2222 cryptroot/keyfiles/data.key",
	}
	if plan.Flavor != InitramfsTools || !reflect.DeepEqual(names(plan.Volumes), want) {
		t.Fatalf("flavor %s volumes %q, want %q", plan.Flavor, names(plan.Volumes), want)
	}
	if len(plan.Notes) != 2 {
		t.Errorf("notes %q: want the key-file and keyscript entries explained", plan.Notes)
	}
	// Only root passed the check: data keeps "none" and is asked for.
	pass := []byte("correct horse")
	arc, err := plan.Archive(plan.Volumes[:1], pass)
	if err != nil {
		t.Fatal(err)
	}
	if len(arc)%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", len(arc))
	}
	// The kernel unpacks the appended archive last: its files win.
	img = append(img, make([]byte, Padding(int64(len(img))))...)
	rd, err := initrd.Read(append(img, arc...), func(initrd.Entry) bool { return true }, initrd.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rd.Files["cryptroot/keyfiles/root_crypt.key"]); got != string(pass) {
		t.Errorf("key file %q", got)
	}
	wantTab := "# comment\nroot_crypt UUID=" + rootUUID + " /cryptroot/keyfiles/root_crypt.key luks,discard\n" +
		"swap_crypt /dev/vda3 /dev/urandom swap\n" +
		"home\\040x UUID=1111 none luks,keyscript=decrypt_keyctl\n" +
		"data PARTUUID=2222 none luks\n"
	if got := string(rd.Files[cryptrootTab]); got != wantTab {
		t.Errorf("crypttab\n%s\nwant\n%s", got, wantTab)
	}
	if _, ok := rd.Files["cryptroot/keyfiles/data.key"]; ok {
		t.Error("a key file for a volume that did not pass the check")
	}
	Wipe(arc)
	if bytes.Contains(arc, pass) {
		t.Error("Wipe left the passphrase")
	}

	plan, err = Find(img, "root=/dev/mapper/x cryptopts=target=x,source=/dev/vda2,luks", initrd.Limits{})
	if err != nil || len(plan.Volumes) != 0 {
		t.Errorf("cryptopts= replaces the crypttab: want no volume, got %v %v", plan, err)
	}
}

func TestFindSystemd(t *testing.T) {
	bin := systemdBinaries[0]
	for _, tc := range []struct {
		name, tab, cmdline string
		want               []string
	}{
		{"rd.luks.uuid without crypttab (dracut generic)", "", "rd.luks.uuid=" + rootUUID + " root=/dev/mapper/luks-" + rootUUID,
			[]string{"luks-" + rootUUID + " UUID=" + rootUUID + " etc/cryptsetup-keys.d/luks-" + rootUUID + ".key"}},
		{"rd.luks.uuid with the luks- prefix", "", "rd.luks.uuid=luks-" + strings.ToUpper(rootUUID),
			[]string{"luks-" + rootUUID + " UUID=" + rootUUID + " etc/cryptsetup-keys.d/luks-" + rootUUID + ".key"}},
		{"rd.luks.name", "", "rd.luks.name=" + rootUUID + "=cryptroot",
			[]string{"cryptroot UUID=" + rootUUID + " etc/cryptsetup-keys.d/cryptroot.key"}},
		{"crypttab (dracut hostonly), noauto and keyed entries skipped",
			"luks-abc UUID=" + rootUUID + " none discard\nhome UUID=9 /etc/home.key\nboot UUID=8 none noauto\n", "root=/dev/mapper/luks-abc",
			[]string{"luks-abc UUID=" + rootUUID + " etc/cryptsetup-keys.d/luks-abc.key"}},
		{"rd.luks.uuid picks from crypttab, under crypttab's name",
			"root_crypt UUID=" + rootUUID + " - discard\nother UUID=7 none\n", "rd.luks.uuid=" + rootUUID,
			[]string{"root_crypt UUID=" + rootUUID + " etc/cryptsetup-keys.d/root_crypt.key"}},
		{"rd.luks.crypttab=no", "root_crypt UUID=" + rootUUID + " none\n", "rd.luks.crypttab=no", nil},
		{"rd.luks=0", "root_crypt UUID=" + rootUUID + " none\n", "rd.luks=0 rd.luks.uuid=" + rootUUID, nil},
		{"rd.luks.key names the key", "", "rd.luks.uuid=" + rootUUID + " rd.luks.key=/k:UUID=1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{bin: "ELF"}
			if tc.tab != "" {
				files[etcCrypttab] = tc.tab
			}
			plan, err := Find(mkInitrd(t, files), tc.cmdline, initrd.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Flavor != Systemd || !reflect.DeepEqual(names(plan.Volumes), tc.want) {
				t.Errorf("flavor %s volumes %q, want %q (notes %q)", plan.Flavor, names(plan.Volumes), tc.want, plan.Notes)
			}
		})
	}
}

func TestFindUnsupported(t *testing.T) {
	_, err := Find(mkInitrd(t, map[string]string{"init": "#!/bin/sh"}), "rd.luks.uuid="+rootUUID, initrd.Limits{})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("err %v, want ErrUnsupported", err)
	}
	if _, err := Find([]byte("not an initrd"), "", initrd.Limits{}); err == nil {
		t.Error("garbage initrd: no error")
	}
}

// GNU cpio must read the appended archive as the kernel does: the files,
// their modes, their contents.
func TestArchiveWithGNUCpio(t *testing.T) {
	cpio := testutil.NeedTool(t, "cpio")
	plan := &Plan{Flavor: Systemd}
	vols := []Volume{{Name: "luks-" + rootUUID, KeyFile: systemdKeysDir + "/luks-" + rootUUID + ".key"}, {Name: "swap", KeyFile: systemdKeysDir + "/swap.key"}}
	pass := []byte("pässphrase with spaces\x00and a NUL")
	arc, err := plan.Archive(vols, pass)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(cpio, "--quiet", "-idm", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(arc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for _, v := range vols {
		p := filepath.Join(dir, v.KeyFile)
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, pass) {
			t.Errorf("%s: %q %v", v.KeyFile, b, err)
		}
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o400 {
			t.Errorf("%s: mode %v %v, want 0400", v.KeyFile, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, systemdKeysDir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %v %v, want 0700", st.Mode(), err)
	}
	if _, err := plan.Archive([]Volume{{Name: "../x", KeyFile: "etc/cryptsetup-keys.d/../x.key"}}, pass); err == nil {
		t.Error("a name with a slash: no error")
	}
}
