package luks

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/luks/lukstest"
	"github.com/romboot/romboot/internal/testutil"
)

// Cases beyond luks2-validation-test: LUKS1 keyslot sanity as cryptsetup's
// LUKS_check_keyslots and its evil_hdr-* images (api-test), header-only
// files and data beyond the end, foreign signatures (compat-test2's
// blkid-luks2-pv), requirements and detached headers. Each is judged by the
// host cryptsetup and romboot in the same test; check adds what romboot
// must say.

func luks1Image(t *testing.T, extra ...string) string {
	return format(t, "4M", args([]string{"--type", "luks1", "--key-size", "256"}, cheapPBKDF2, extra)...)
}

func luks2Image(t *testing.T) string {
	return format(t, "4M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
}

// slot1 edits LUKS1 keyslot i's descriptor: field 0 state, 40 offset
// (sectors), 44 stripes.
func slot1(t *testing.T, img string, i, field int, v uint32) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	_, err = f.WriteAt(b[:], int64(208+48*i+field))
	must(t, err)
}

func writeAt(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// lvmLabel writes an LVM2 PV label (label header and PV header, with its
// checksum) into sector 1, as pvcreate does.
func lvmLabel(t *testing.T, img string) {
	sec := make([]byte, 512)
	copy(sec, "LABELONE")
	binary.LittleEndian.PutUint64(sec[8:], 1)
	binary.LittleEndian.PutUint32(sec[20:], 32)
	copy(sec[24:], "LVM2 001")
	copy(sec[32:], "yhF8yJjhG2w7Yt2T9Bz6MVe1ICee4XHf") // PV UUID
	binary.LittleEndian.PutUint64(sec[64:], 8<<20)     // device size
	binary.LittleEndian.PutUint32(sec[16:], lvmCRC(sec[20:]))
	writeAt(t, img, 512, sec)
}

type mcase struct {
	name, mirrors, upstream string
	make                    func(t *testing.T) string
	check                   func(t *testing.T, h *Header, err error)
}

var moreCases = []mcase{
	{"luks1-valid", "compat-test", "R", func(t *testing.T) string { return luks1Image(t) }, nil},
	{"luks1-disabled-slot-in-header", "evil_hdr-luks_hdr_damage", "F", func(t *testing.T) string {
		img := luks1Image(t)
		slot1(t, img, 2, 40, 1)
		return img
	}, nil},
	{"luks1-disabled-slot-over-payload", "evil_hdr-payload_overwrite", "F", func(t *testing.T) string {
		img := luks1Image(t)
		slot1(t, img, 3, 40, 4096-249)
		return img
	}, nil},
	{"luks1-disabled-slot-stripes", "evil_hdr-stripes_payload_dmg", "F", func(t *testing.T) string {
		img := luks1Image(t)
		slot1(t, img, 5, 44, 44944)
		return img
	}, nil},
	{"luks1-small-device", "evil_hdr-small_luks_device", "F", func(t *testing.T) string {
		img := luks1Image(t)
		must(t, os.Truncate(img, 1800*512+250*512-512))
		return img
	}, nil},
	{"luks1-disabled-slots-overlap", "evil_hdr-keyslot_overlap", "F", func(t *testing.T) string {
		img := luks1Image(t)
		for i := 1; i <= 6; i++ {
			slot1(t, img, i, 40, 520)
		}
		return img
	}, nil},
	{"luks1-header-only", "api-test (header backup file)", "", func(t *testing.T) string {
		img := luks1Image(t)
		must(t, os.Truncate(img, 4096*512))
		return img
	}, func(t *testing.T, h *Header, err error) {
		if _, _, err := (&Volume{Header: h, Key: make([]byte, 32)}).DMTable(8, 1, 4096*512); err == nil {
			t.Fatal("a header-only file mapped")
		}
	}},
	{"luks1-keyslots-end-at-eof", "LUKS_check_device_size", "", func(t *testing.T) string {
		img := luks1Image(t)
		must(t, os.Truncate(img, (1800+250)*512))
		return img
	}, nil},
	{"luks1-invalid-slot-state", "api-test (keyslot invalid)", "", func(t *testing.T) string {
		img := luks1Image(t)
		slot1(t, img, 1, 0, 0x12345678)
		return img
	}, func(t *testing.T, h *Header, err error) {
		if len(h.Keyslots) != 2 || !strings.Contains(h.Keyslots[1].Problem, "invalid state") {
			t.Fatalf("keyslots %+v", h.Keyslots)
		}
	}},
	// Opening agrees with cryptsetup (judge): the master key digest, a
	// PBKDF2-HMAC-whirlpool, matching proves the hash and the AF merge.
	{"luks1-whirlpool", "luks1-compat-test (whirlpool images)", "", func(t *testing.T) string { return luks1Image(t, "--hash", "whirlpool") }, nil},
	{"luks1-aes-ecb", "compat-test (aes-ecb)", "", func(t *testing.T) string { return luks1Image(t, "--cipher", "aes-ecb") }, nil},
	{"luks2-aes-ecb", "compat-test2 (aes-ecb)", "", func(t *testing.T) string {
		return format(t, "4M", args(small2, []string{"--pbkdf", "pbkdf2", "--cipher", "aes-ecb", "--key-size", "256"}, cheapPBKDF2)...)
	}, nil},
	{"luks1-sha3-256", "_check_and_convert_hdr (known, not unlocked here)", "", func(t *testing.T) string {
		img := luks1Image(t)
		writeAt(t, img, 72, append([]byte("sha3-256"), make([]byte, 24)...))
		return img
	}, func(t *testing.T, h *Header, err error) {
		var ue *UnsupportedError
		if !errors.As(h.Unusable(), &ue) || !strings.Contains(ue.What, "sha3-256") {
			t.Fatalf("sha3-256: %v", h.Unusable())
		}
	}},
	{"luks1-unknown-hash", "_check_and_convert_hdr", "", func(t *testing.T) string {
		img := luks1Image(t)
		writeAt(t, img, 72, append([]byte("nohash"), make([]byte, 26)...))
		return img
	}, nil},
	{"luks1-key-bytes-0", "LUKS_check_device_size", "", func(t *testing.T) string {
		img := luks1Image(t)
		writeAt(t, img, 108, []byte{0, 0, 0, 0})
		return img
	}, nil},
	{"luks2-header-only", "compat-test2 (detached header file)", "", func(t *testing.T) string {
		img := luks2Image(t)
		h := openImage(t, img)
		must(t, os.Truncate(img, h.PayloadOffset))
		return img
	}, func(t *testing.T, h *Header, err error) {
		if _, _, err := (&Volume{Header: h, Key: make([]byte, 64)}).DMTable(8, 1, h.PayloadOffset); err == nil {
			t.Fatal("a header-only file mapped")
		}
	}},
	{"luks2-keyslots-area-beyond-eof", "LUKS2_disk_hdr_read device_check_size", "", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, os.Truncate(img, 2*16384+4096))
		return img
	}, nil},
	{"luks2-segment-size-beyond-eof", "segment size limits", "", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, lukstest.EditJSON(img, 0, func(m map[string]any) { seg0(m)["size"] = "1099511627776" }))
		return img
	}, func(t *testing.T, h *Header, err error) {
		if h.PayloadSize != 1<<40 {
			t.Fatalf("size %d", h.PayloadSize)
		}
		if _, _, err := (&Volume{Header: h, Key: make([]byte, 64)}).DMTable(8, 1, 4<<20); err == nil || !strings.Contains(err.Error(), "does not fit") {
			t.Fatalf("mapping a 1 TiB segment on 4 MiB: %v", err)
		}
	}},
	{"luks2-unknown-requirement", "luks2_header_requirements", "", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, lukstest.EditJSON(img, 0, func(m map[string]any) {
			lukstest.Get(m, "config")["requirements"] = map[string]any{"mandatory": []any{"romboot-test"}}
		}))
		return img
	}, func(t *testing.T, h *Header, err error) {
		var re *RequirementsError
		if !errors.As(h.Unusable(), &re) || len(h.Problems) == 0 {
			t.Fatalf("requirement not reported: %v %v", h.Unusable(), h.Problems)
		}
	}},
	{"luks2-detached-offset-0", "luks2 detached header", "", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, lukstest.EditJSON(img, 0, func(m map[string]any) { seg0(m)["offset"] = "0" }))
		return img
	}, func(t *testing.T, h *Header, err error) {
		if h.Unusable() == nil || !strings.Contains(h.Unusable().Error(), "detached") {
			t.Fatalf("data at offset 0 over the header not refused: %v", h.Unusable())
		}
	}},
	{"luks2-lvm-pv-label", "compat-test2 blkid-luks2-pv.img", "F", func(t *testing.T) string {
		img := luks2Image(t)
		lvmLabel(t, img)
		if out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", img).Output(); strings.TrimSpace(string(out)) != "LVM2_member" {
			t.Fatalf("blkid does not see the test's LVM label: %q", out)
		}
		return img
	}, func(t *testing.T, h *Header, err error) {
		var ae *AmbiguousError
		if !errors.As(err, &ae) || ae.Signature != "LVM2_member" {
			t.Fatalf("got %v, want ambiguous LVM2_member", err)
		}
	}},
	{"luks2-ext4-over-primary", "compat-test2 (ambiguous signatures)", "F", func(t *testing.T) string {
		img := luks2Image(t)
		fs := filepath.Join(t.TempDir(), "fs.img")
		testutil.Run(t, nil, testutil.NeedTool(t, "mkfs.ext4"), "-q", "-F", fs, "1M")
		b, err := os.ReadFile(fs)
		must(t, err)
		writeAt(t, img, 0, b[:4096])
		if out, _ := exec.Command("blkid", "-p", "-n", "ext4", "-o", "value", "-s", "TYPE", img).Output(); strings.TrimSpace(string(out)) != "ext4" {
			t.Fatalf("blkid does not see ext4: %q", out)
		}
		return img
	}, func(t *testing.T, h *Header, err error) {
		var ae *AmbiguousError
		if !errors.As(err, &ae) || ae.Signature != "ext4" {
			t.Fatalf("got %v, want ambiguous ext4", err)
		}
	}},
	{"luks2-secondary-only-corrupt", "issue 11 point 7", "F", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, lukstest.Kill(img, 0))
		must(t, lukstest.Flip(img, 16384+448))
		return img
	}, func(t *testing.T, h *Header, err error) {
		var ce *CorruptHeaderError
		if errors.Is(err, ErrNotLUKS) || !errors.As(err, &ce) {
			t.Fatalf("got %v, want a corrupt header (not 'not LUKS')", err)
		}
	}},
	{"luks2-secondary-only", "luks2-validation-test [1]", "R", func(t *testing.T) string {
		img := luks2Image(t)
		must(t, lukstest.Kill(img, 0))
		return img
	}, func(t *testing.T, h *Header, err error) {
		if h.HeaderCopy != "secondary" {
			t.Fatalf("copy %s", h.HeaderCopy)
		}
	}},
}

func TestCryptsetupVerdictsMore(t *testing.T) {
	testutil.NeedTool(t, "cryptsetup")
	testutil.NeedTool(t, "blkid")
	for _, tc := range moreCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.make(t)
			h, err := judge(t, tc.name+" ("+tc.mirrors+")", tc.upstream, img)
			if tc.check != nil {
				tc.check(t, h, err)
			}
		})
	}
}

func runStdin(in string, name string, a ...string) (string, error) {
	cmd := exec.Command(name, a...)
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	return string(out), err
}
