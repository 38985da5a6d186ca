package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/romboot/romboot/internal/testutil"
)

func build(t *testing.T, dir, bin, compress string) []byte {
	t.Helper()
	out := filepath.Join(dir, "initramfs."+compress)
	var stderr bytes.Buffer
	if err := run([]string{"-list", "files.txt", "-D", "BOOTINIT=" + bin, "-compress", compress, "-o", out}, &stderr); err != nil {
		t.Fatalf("run: %v %s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReproducible(t *testing.T) {
	testutil.NeedTool(t, "xz")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootinit")
	os.WriteFile(bin, bytes.Repeat([]byte("\x7fELF binary "), 4096), 0o600)
	a := build(t, dir, bin, "xz")
	// Another mtime and mode on the input must not change the output.
	later := time.Now().Add(time.Hour)
	os.Chtimes(bin, later, later)
	os.Chmod(bin, 0o755)
	b := build(t, dir, bin, "xz")
	if !bytes.Equal(a, b) {
		t.Fatal("two builds from the same inputs differ")
	}
	// xz stream flags: check type 0x01 is CRC32, what the kernel accepts.
	if len(a) < 8 || !bytes.Equal(a[:6], []byte("\xfd7zXZ\x00")) || a[6] != 0 || a[7] != 1 {
		t.Fatalf("not an xz stream with a CRC32 check: % x", a[:8])
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if c := build(t, dir, bin, "xz"); bytes.Equal(a, c) {
		t.Fatal("SOURCE_DATE_EPOCH did not change the mtimes")
	}
}

func TestContents(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootinit")
	os.WriteFile(bin, []byte("init program"), 0o600)
	raw := build(t, dir, bin, "none")
	rr := cpio.Newc.Reader(bytes.NewReader(raw))
	var names []string
	recs := map[string]cpio.Record{}
	for {
		r, err := rr.ReadRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Name == cpio.Trailer {
			break
		}
		names = append(names, r.Name)
		recs[r.Name] = r
	}
	want := []string{"boot", "dev", "dev/console", "dev/null", "init", "proc", "run", "sys", "tmp"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v (sorted)", names, want)
		}
	}
	c := recs["dev/console"]
	if c.Mode != cpio.S_IFCHR|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("console %v", c.Info)
	}
	in := recs["init"]
	body, _ := io.ReadAll(io.NewSectionReader(in.ReaderAt, 0, int64(in.FileSize)))
	if in.Mode != cpio.S_IFREG|0o755 || string(body) != "init program" || in.UID != 0 || in.MTime != 0 {
		t.Errorf("init %v %q", in.Info, body)
	}
}

func TestBadLists(t *testing.T) {
	for _, l := range []string{"file /init 0755", "dir init 0755", "nod /dev/x 0600 x 1 1", "file /init ${NOPE} 0755", "bogus /x", "dir /a/../b 0755"} {
		if _, err := parseList(bytes.NewReader([]byte(l)), defines{}); err == nil {
			t.Errorf("%q accepted", l)
		}
	}
}
