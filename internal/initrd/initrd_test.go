package initrd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/testutil"
)

// mkcpio archives the files (name → content) with GNU cpio -H newc, as
// initramfs-tools and dracut do, in sorted order.
func mkcpio(t *testing.T, files map[string]string) []byte {
	t.Helper()
	cpio := testutil.NeedTool(t, "cpio")
	dir := t.TempDir()
	var names []string
	for n, c := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	cmd := exec.Command(cpio, "--quiet", "-o", "-H", "newc", "--reproducible")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio: %v", err)
	}
	return out
}

// compress runs a host compressor the way the initramfs tools call it.
func compress(t *testing.T, how string, b []byte) []byte {
	t.Helper()
	var args []string
	switch how {
	case "none":
		return b
	case "gzip":
		args = []string{"gzip", "-n", "-9", "-c"}
	case "xz":
		args = []string{"xz", "--check=crc32", "-c"}
	case "zstd":
		args = []string{"zstd", "-q", "-19", "-c"}
	case "lz4":
		args = []string{"lz4", "-q", "-9", "-l", "-c"}
	}
	cmd := exec.Command(testutil.NeedTool(t, args[0]), args[1:]...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", how, err)
	}
	return out
}

func wantAll(Entry) bool { return true }

func TestEachCompressionAfterMicrocode(t *testing.T) {
	ucode := mkcpio(t, map[string]string{"kernel/x86/microcode/GenuineIntel.bin": strings.Repeat("\x01", 1000)})
	big := strings.Repeat("modules and binaries ", 450000) // over 8 MiB: two lz4 blocks, many zstd blocks
	main := mkcpio(t, map[string]string{
		"cryptroot/crypttab":          "root_crypt UUID=abc none luks,discard\n",
		"usr/lib/big":                 big,
		"scripts/local-top/cryptroot": "#!/bin/sh\n",
	})
	for _, how := range []string{"none", "gzip", "xz", "zstd", "lz4"} {
		t.Run(how, func(t *testing.T) {
			img := append(append([]byte{}, ucode...), compress(t, how, main)...)
			rd, err := Read(img, wantAll, Limits{MaxFileSize: 16 << 20})
			if how == "xz" && !xzBuilt {
				if err == nil || !strings.Contains(err.Error(), "initrd_xz") {
					t.Fatalf("xz without the decoder: err %v, want one naming the build tag", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rd.Members) != 2 || rd.Members[0].Compression != "none" || rd.Members[1].Compression != how {
				t.Fatalf("members %+v, want none then %s", rd.Members, how)
			}
			if got := string(rd.Files["cryptroot/crypttab"]); got != "root_crypt UUID=abc none luks,discard\n" {
				t.Errorf("crypttab %q", got)
			}
			if got := string(rd.Files["usr/lib/big"]); got != big {
				t.Errorf("big file: %d bytes, want %d", len(got), len(big))
			}
			if len(rd.Files["kernel/x86/microcode/GenuineIntel.bin"]) != 1000 {
				t.Errorf("microcode not read")
			}
		})
	}
}

// Every compression followed by another member: the reader must find where
// each member ends, and a later copy of a file wins, as in the kernel.
func TestConcatenatedMembersLaterWins(t *testing.T) {
	var img []byte
	hows := []string{"none", "gzip", "xz", "zstd", "lz4", "gzip"}
	if !xzBuilt {
		hows = []string{"none", "gzip", "zstd", "lz4", "gzip"}
	}
	for i, how := range hows {
		a := mkcpio(t, map[string]string{"etc/crypttab": "v" + how + string(rune('0'+i)), "f" + string(rune('0'+i)): how})
		img = append(img, compress(t, how, a)...)
		for len(img)%4 != 0 { // the kernel wants archives stored as is on 4-byte boundaries
			img = append(img, 0)
		}
		img = append(img, 0, 0, 0, 0) // and skips zero padding
	}
	rd, err := Read(img, wantAll, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Members) != len(hows) {
		t.Fatalf("%d members %+v, want %d", len(rd.Members), rd.Members, len(hows))
	}
	for i, how := range hows {
		if rd.Members[i].Compression != how {
			t.Errorf("member %d is %s, want %s", i, rd.Members[i].Compression, how)
		}
		if got := string(rd.Files["f"+string(rune('0'+i))]); got != how {
			t.Errorf("file of member %d: %q", i, got)
		}
	}
	if got := string(rd.Files["etc/crypttab"]); got != "vgzip"+string(rune('0'+len(hows)-1)) {
		t.Errorf("etc/crypttab %q, want the last archive's", got)
	}
}

// Several archives inside one compressed stream (zero padded), as
// concatenating before compressing gives.
func TestArchivesWithinOneStream(t *testing.T) {
	a := mkcpio(t, map[string]string{"a": "1"})
	b := mkcpio(t, map[string]string{"b": "2"})
	raw := append(append(append([]byte{}, a...), 0, 0, 0, 0), b...)
	rd, err := Read(compress(t, "zstd", raw), wantAll, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if string(rd.Files["a"]) != "1" || string(rd.Files["b"]) != "2" {
		t.Errorf("files %v", rd.Files)
	}
	junk := append(append([]byte{}, a...), 'x')
	if _, err := Read(compress(t, "gzip", junk), wantAll, Limits{}); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("junk after an archive: err %v", err)
	}
}

func TestWantOnlyKeepsWanted(t *testing.T) {
	img := mkcpio(t, map[string]string{"etc/crypttab": "x", "bin/sh": "y"})
	var seen []string
	rd, err := Read(img, func(e Entry) bool { seen = append(seen, e.Name); return e.Name == "etc/crypttab" }, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Files) != 1 || string(rd.Files["etc/crypttab"]) != "x" {
		t.Errorf("files %v", rd.Files)
	}
	if !strings.Contains(strings.Join(seen, " "), "bin/sh") {
		t.Errorf("want not asked about every entry: %v", seen)
	}
}

func TestLimits(t *testing.T) {
	bomb := mkcpio(t, map[string]string{"zeros": strings.Repeat("\x00", 64<<20)})
	for _, how := range []string{"gzip", "xz", "zstd", "lz4"} {
		if how == "xz" && !xzBuilt {
			continue
		}
		img := compress(t, how, bomb)
		if len(img) > 1<<20 {
			t.Fatalf("%s bomb is %d bytes", how, len(img))
		}
		_, err := Read(img, wantAll, Limits{MaxUnpacked: 8 << 20, MaxFileSize: 128 << 20})
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%s: 64 MiB unpacked under an 8 MiB limit: err %v", how, err)
		}
	}
	img := mkcpio(t, map[string]string{"big": strings.Repeat("x", 5000)})
	if _, err := Read(img, wantAll, Limits{MaxFileSize: 4096}); !errors.Is(err, ErrLimit) {
		t.Errorf("wanted file over MaxFileSize: err %v", err)
	}
	if _, err := Read(img, func(Entry) bool { return false }, Limits{MaxFileSize: 4096}); err != nil {
		t.Errorf("unwanted big file: %v", err)
	}
	many := map[string]string{}
	for i := 0; i < 20; i++ {
		many[string(rune('a'+i))] = ""
	}
	if _, err := Read(mkcpio(t, many), wantAll, Limits{MaxEntries: 10}); !errors.Is(err, ErrLimit) {
		t.Errorf("entries over MaxEntries: err %v", err)
	}
}

func TestBroken(t *testing.T) {
	main := mkcpio(t, map[string]string{"etc/crypttab": strings.Repeat("line\n", 1000)})
	for _, how := range []string{"none", "gzip", "xz", "zstd", "lz4"} {
		img := compress(t, how, main)
		cuts := []int{len(img) / 3, len(img) / 2}
		if how != "none" { // a cpio stored as is ends in zero padding: cutting that is no damage
			cuts = append(cuts, len(img)-9)
		}
		for _, cut := range cuts {
			if _, err := Read(img[:cut], wantAll, Limits{}); err == nil {
				t.Errorf("%s cut at %d of %d: no error", how, cut, len(img))
			}
		}
	}
	if _, err := Read([]byte("garbage!"), wantAll, Limits{}); err == nil {
		t.Error("garbage: no error")
	}
}
