package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/luks/lukstest"
	"github.com/romboot/romboot/internal/testutil"
)

const pass = "host tool test passphrase"

func luksImage(t *testing.T) string {
	t.Helper()
	cs := testutil.NeedTool(t, "cryptsetup")
	img := filepath.Join(t.TempDir(), "boot.img")
	testutil.Run(t, nil, "truncate", "-s", "8M", img)
	testutil.Run(t, []byte(pass), cs, "luksFormat", "--batch-mode", "--type", "luks2", "--label", "myboot",
		"--luks2-metadata-size", "16k", "--luks2-keyslots-size", "1m", "--pbkdf", "argon2id",
		"--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--key-file", "-", img)
	return img
}

func stdinFile(t *testing.T, s string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stdin")
	os.WriteFile(p, []byte(s), 0o600)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestLuksDumpJSON(t *testing.T) {
	img := luksImage(t)
	var out, errb bytes.Buffer
	if code := run([]string{"luks", "dump", "--json", img}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var d dump
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Version != 2 || d.Label != "myboot" || d.Cipher != "aes-xts-plain64" || len(d.Keyslots) != 1 ||
		d.Keyslots[0].KDF != "argon2id" || d.Keyslots[0].MemoryKiB != 32768 || !d.Supported {
		t.Fatalf("dump %+v", d)
	}
}

func TestLuksTest(t *testing.T) {
	img := luksImage(t)
	var out, errb bytes.Buffer
	if code := run([]string{"luks", "test", img, "--key-file", "-", "--dump-volume-key"}, stdinFile(t, pass), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	m := regexp.MustCompile(`Volume key: ([0-9a-f]+)`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "keyslot 0 opened") {
		t.Fatalf("output %q", out.String())
	}
	dumpOut := testutil.Run(t, []byte(pass), "cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", "-", img)
	_, after, _ := strings.Cut(string(dumpOut), "MK dump:")
	if want := regexp.MustCompile(`[^0-9a-f]`).ReplaceAllString(after, ""); want != m[1] {
		t.Fatalf("volume key %s, cryptsetup says %s", m[1], want)
	}
	out.Reset()
	if code := run([]string{"luks", "test", "--key-file", "-", img}, stdinFile(t, "wrong"), &out, &errb); code != 2 {
		t.Fatalf("wrong passphrase: exit %d, want 2", code)
	}
	if code := run([]string{"luks", "test", "--key-file", "-", "/nonexistent"}, stdinFile(t, pass), &out, &errb); code != 1 {
		t.Fatalf("missing device: exit %d, want 1", code)
	}
	if strings.Contains(errb.String()+out.String(), pass) {
		t.Fatal("passphrase printed")
	}
}

func TestCheck(t *testing.T) {
	img := luksImage(t)
	root := t.TempDir()
	for _, d := range []string{"proc", "dev/mapper", "sys/block/dm-0/slaves/vda2", "boot/grub"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "proc/mounts"), []byte("/dev/vda3 / ext4 rw 0 0\n/dev/mapper/boot_crypt /boot ext4 rw 0 0\n"), 0o644)
	os.Symlink("../dm-0", filepath.Join(root, "dev/mapper/boot_crypt"))
	os.WriteFile(filepath.Join(root, "dev/dm-0"), nil, 0o644)
	os.Symlink(img, filepath.Join(root, "dev/vda2"))
	os.WriteFile(filepath.Join(root, "boot/grub/grub.cfg"), []byte("menuentry 'Debian' { linux /vmlinuz-6.1 root=/dev/vda3 ro\n initrd /initrd.img-6.1 }\n"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-6.1"), []byte("i"), 0o644)
	var out bytes.Buffer
	if err := check([]string{"--json"}, root, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	var res struct {
		LUKSDevice string `json:"luks_device"`
		Supported  bool   `json:"supported"`
		Entries    struct {
			Entries []entryJSON `json:"entries"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.LUKSDevice != filepath.Join(root, "dev/vda2") || !res.Supported || len(res.Entries.Entries) != 1 || res.Entries.Entries[0].Cmdline != "root=/dev/vda3 ro" {
		t.Fatalf("check %s", out.String())
	}
	// /boot on a plain partition: not supported, with the reason.
	os.WriteFile(filepath.Join(root, "proc/mounts"), []byte("/dev/vda2 /boot ext4 rw 0 0\n"), 0o644)
	out.Reset()
	err := check(nil, root, &out)
	if err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("plain /boot: %v", err)
	}
}

func TestEntriesJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"entries", "--json", "../../internal/bootentry/testdata/debian12"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d %s", code, errb.String())
	}
	var m menuJSON
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 4 || !m.Entries[0].Default || m.Timeout != 5 {
		t.Fatalf("%+v", m)
	}
}

// TestLuksDumpRequirements: a header with mandatory requirements (an
// interrupted reencryption) and an unbound keyslot is still dumped, with
// the reason it will not boot; only unlocking refuses it, as cryptsetup
// does.
func TestLuksDumpRequirements(t *testing.T) {
	img := luksImage(t)
	nk := filepath.Join(t.TempDir(), "nk")
	os.WriteFile(nk, []byte("other"), 0o600)
	testutil.Run(t, []byte(pass), "cryptsetup", "luksAddKey", "--batch-mode", "--unbound", "--key-size", "512",
		"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", "--key-slot", "1", img, nk)
	if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "config")["requirements"] = map[string]any{"mandatory": []any{"offline-reencrypt"}}
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, nil, "cryptsetup", "luksDump", img) // cryptsetup dumps it too
	var out, errb bytes.Buffer
	if code := run([]string{"luks", "dump", img}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "NOT supported") || !strings.Contains(s, "offline-reencrypt") ||
		!strings.Contains(s, "1: ") || !strings.Contains(s, "unbound keyslot") {
		t.Fatalf("dump:\n%s", s)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"luks", "test", "--key-file", "-", img}, stdinFile(t, pass), &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "mandatory requirements") {
		t.Fatalf("luks test on a header with requirements: exit %d: %s", code, errb.String())
	}
}

// TestLuksDumpBoard: a serpent volume opens in the unlocker, but the x220
// payload maps serpent only when built with CIPHERS=1; the qemu payload
// always has it.
func TestLuksDumpBoard(t *testing.T) {
	img := luksImage(t)
	if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "segments", "0")["encryption"] = "serpent-xts-plain64"
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		supported bool
	}{
		{nil, false},
		{[]string{"--board", "x220", "--ciphers"}, true},
		{[]string{"--board", "qemu"}, true},
	} {
		var out, errb bytes.Buffer
		if code := run(append(append([]string{"luks", "dump", "--json"}, tc.args...), img), nil, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errb.String())
		}
		var d dump
		if err := json.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if d.Supported != tc.supported || (!tc.supported && !strings.Contains(strings.Join(d.Problems, ";"), "CIPHERS=1")) {
			t.Fatalf("%v: supported %v, problems %v", tc.args, d.Supported, d.Problems)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"luks", "dump", "--board", "pdp11", img}, nil, &out, &errb); code == 0 {
		t.Fatal("unknown board accepted")
	}
}
