package blockdev

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/romboot/romboot/internal/testutil"
)

func TestGPTIdentities(t *testing.T) {
	sgdisk := testutil.NeedTool(t, "sgdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	testutil.Run(t, nil, "truncate", "-s", "8M", img)
	testutil.Run(t, nil, sgdisk, "-n", "1:2048:+2M", "-c", "1:boot", "-u", "1:0FC63DAF-8483-4772-8E79-3D69D8477DE4",
		"-n", "2:0:0", "-c", "2:root disk", "-u", "2:6a0c3f2e-1b2d-4c5e-9f00-aabbccddeeff", img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pt, err := parsePartTable(f)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int][2]string{
		1: {"0fc63daf-8483-4772-8e79-3d69d8477de4", "boot"},
		2: {"6a0c3f2e-1b2d-4c5e-9f00-aabbccddeeff", "root disk"},
	} {
		u, l := pt.identity(n)
		if u != want[0] || l != want[1] {
			t.Errorf("partition %d: %q %q, want %q %q", n, u, l, want[0], want[1])
		}
	}
}

func TestSpec(t *testing.T) {
	d := Device{Name: "vda1", Path: "/dev/vda1", PartUUID: "ABCD-01", PartLabel: "boot", UUID: "1111-2222", Label: "lbl"}
	for spec, want := range map[string]bool{
		"UUID=1111-2222": true, "uuid=1111-2222": true, "UUID=1111": false,
		"PARTUUID=abcd-01": true, "LABEL=lbl": true, "LABEL=LBL": false,
		"PARTLABEL=boot": true, "/dev/vda1": true, "/dev/vda2": false,
	} {
		s, err := ParseSpec(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got := s.Matches(d); got != want {
			t.Errorf("%s matches = %v, want %v", spec, got, want)
		}
	}
	for _, bad := range []string{"", "vda1", "FOO=bar", "UUID="} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}
