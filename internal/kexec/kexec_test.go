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
	if string(got) != "MICROCODE-INITRD" {
		t.Fatalf("got %q", got)
	}
	if _, err := Concat([]string{a, filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing initrd accepted")
	}
}
