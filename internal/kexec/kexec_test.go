package kexec

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestConcat(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "ucode.img"), filepath.Join(dir, "initrd.img")
	os.WriteFile(a, []byte("MICROCODE"), 0o644)
	os.WriteFile(b, []byte("-INITRD"), 0o644)
	f, err := Concat([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	// Each part but the last starts at a 4-byte boundary: 9 bytes, 3 zeros.
	if string(got) != "MICROCODE\x00\x00\x00-INITRD" {
		t.Fatalf("got %q", got)
	}
	// Already aligned parts get no padding; three parts pad the middle too.
	c := filepath.Join(dir, "four")
	os.WriteFile(c, []byte("ABCD"), 0o644)
	f3, err := Concat([]string{c, b, a})
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()
	got, _ = io.ReadAll(f3)
	if string(got) != "ABCD-INITRD\x00MICROCODE" {
		t.Fatalf("got %q", got)
	}
	if _, err := Concat([]string{a, filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing initrd accepted")
	}
}
