package luks

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/xts"

	"github.com/romboot/romboot/internal/luks/lukstest"
	"github.com/romboot/romboot/internal/testutil"
)

var small2 = []string{"--type", "luks2", "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "1m"}

func args(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func openFile(t *testing.T, img string) (*Header, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return Open(f, st.Size())
}

func addKey(t *testing.T, img string, slot string, newPass string, extra ...string) {
	t.Helper()
	nk := filepath.Join(t.TempDir(), "newkey")
	os.WriteFile(nk, []byte(newPass), 0o600)
	a := append([]string{"luksAddKey", "--batch-mode", "--key-file", "-", "--key-slot", slot}, extra...)
	testutil.Run(t, []byte(testPass), "cryptsetup", append(a, img, nk)...)
}

func TestLUKS1AllKeyslots(t *testing.T) {
	img := format(t, "8M", args([]string{"--type", "luks1", "--hash", "sha512"}, cheapPBKDF2)...)
	for _, s := range []string{"3", "7"} {
		addKey(t, img, s, "pass-"+s, cheapPBKDF2...)
	}
	testutil.Run(t, []byte(testPass), "cryptsetup", "luksKillSlot", "--batch-mode", "--key-file", "-", img, "3")
	want := volumeKey(t, img)
	h := openImage(t, img)
	if n := len(h.Keyslots); n != 2 {
		t.Fatalf("%d active keyslots, want 2 (0 and 7; 3 disabled)", n)
	}
	v, err := h.Unlock([]byte("pass-7"), UnlockOptions{Keyslot: -1})
	if err != nil || v.Keyslot != 7 || !bytes.Equal(v.Key, want) {
		t.Fatalf("slot 7: %v %+v", err, v)
	}
	if _, err := h.Unlock([]byte("pass-3"), UnlockOptions{Keyslot: -1}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("killed slot 3 still opens: %v", err)
	}
	if _, err := h.Unlock([]byte("pass-7"), UnlockOptions{Keyslot: 0}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("slot 0 with slot 7's passphrase: %v", err)
	}
}

func TestLUKS2PrioritiesAndSlots(t *testing.T) {
	img := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	addKey(t, img, "1", testPass, args([]string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	addKey(t, img, "2", testPass, args([]string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "keyslots", "2")["priority"] = 2
		lukstest.Get(m, "keyslots", "0")["priority"] = 0
	}); err != nil {
		t.Fatal(err)
	}
	h := openImage(t, img)
	var order []int
	v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1, BeforeKDF: func(k Keyslot) { order = append(order, k.Index) }})
	if err != nil || v.Keyslot != 2 || len(order) != 1 {
		t.Fatalf("preferred slot 2 not tried first: %v, tried %v", err, order)
	}
	// Priority 0 is ignored unless named.
	if _, err := h.Unlock([]byte("nope"), UnlockOptions{Keyslot: -1, BeforeKDF: func(k Keyslot) {
		if k.Index == 0 {
			t.Error("ignored slot 0 tried")
		}
	}}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatal(err)
	}
	if v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: 0}); err != nil || v.Keyslot != 0 {
		t.Fatalf("named slot 0: %v", err)
	}
	if _, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: 9}); !errors.Is(err, ErrNoKeyslot) {
		t.Fatalf("slot 9: %v", err)
	}
}

func TestLUKS2UnboundKeyslotAndFlags(t *testing.T) {
	img := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	// A keyslot cryptsetup itself leaves unbound to the data segment (its
	// own digest, no segment): it must never open the volume.
	addKey(t, img, "1", "unbound pass", args([]string{"--unbound", "--key-size", "512", "--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "config")["flags"] = []any{"allow-discards", "no-read-workqueue", "no-write-workqueue", "same-cpu-crypt", "submit-from-crypt-cpus"}
		lukstest.Get(m, "segments", "0")["size"] = "4194304"
	}); err != nil {
		t.Fatal(err)
	}
	h := openImage(t, img)
	if len(h.Keyslots) != 2 || h.Keyslots[1].Bound || !h.Keyslots[0].Bound {
		t.Fatalf("keyslots %+v: want 0 bound, 1 unbound", h.Keyslots)
	}
	if _, err := h.Unlock([]byte("unbound pass"), UnlockOptions{Keyslot: -1}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("the unbound keyslot's passphrase: %v", err)
	}
	if _, err := h.Unlock([]byte("unbound pass"), UnlockOptions{Keyslot: 1}); !errors.Is(err, ErrNoKeyslot) || !strings.Contains(err.Error(), "keyslot 1: not bound to the data segment") {
		t.Fatalf("an unbound keyslot asked for by number: %v", err)
	}
	want := []string{"allow_discards", "no_read_workqueue", "no_write_workqueue", "same_cpu_crypt", "submit_from_crypt_cpus"}
	if strings.Join(h.Flags, ",") != strings.Join(want, ",") || h.PayloadSize != 4194304 {
		t.Fatalf("flags %v size %d", h.Flags, h.PayloadSize)
	}
	n, p, err := (&Volume{Header: h, Key: make([]byte, 64)}).DMTable(8, 1, 8<<20)
	if err != nil || n != 8192 || !strings.HasSuffix(string(p), " 6 "+strings.Join(want, " ")+" sector_size:4096") {
		t.Fatalf("table %d %q %v", n, p, err)
	}
}

func TestUnsupportedCipherIsNotWrongPassphrase(t *testing.T) {
	img := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "keyslots", "0", "area")["encryption"] = "camellia-xts-plain64"
	})
	h := openImage(t, img)
	var uc *UnsupportedCipherError
	_, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
	if !errors.As(err, &uc) || uc.Spec != "camellia-xts-plain64" || !strings.Contains(err.Error(), "unsupported cipher camellia-xts-plain64") {
		t.Fatalf("got %v, want unsupported cipher camellia-xts-plain64", err)
	}
}

func TestKDFLimits(t *testing.T) {
	img := format(t, "8M", args(small2, []string{"--pbkdf", "argon2id"}, cheapArgon)...)
	h := openImage(t, img)
	var kl *KDFLimitError
	_, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1, MemAvailable: func() (uint64, error) { return 16 << 20, nil }})
	if !errors.As(err, &kl) || !strings.Contains(err.Error(), "32 MiB") {
		t.Fatalf("32 MiB KDF with 16 MiB free: %v", err)
	}
	lukstest.EditJSON(img, 0, func(m map[string]any) {
		lukstest.Get(m, "keyslots", "0", "kdf")["memory"] = 8 * 1024 * 1024
	})
	h = openImage(t, img)
	if _, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1}); !errors.As(err, &kl) {
		t.Fatalf("8 GiB argon2: %v", err)
	}
}

// TestMalformed: each damaged image is refused with its own error, and
// one damaged copy of two falls back to the other.
func TestMalformed(t *testing.T) {
	base := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
	want := volumeKey(t, base)
	orig, _ := os.ReadFile(base)
	variant := func(t *testing.T, damage func(img string)) string {
		img := filepath.Join(t.TempDir(), "bad.img")
		os.WriteFile(img, orig, 0o600)
		damage(img)
		return img
	}
	rawJSON := func(img string, off int64, mutate func([]byte) []byte) {
		f, _ := os.OpenFile(img, os.O_RDWR, 0)
		defer f.Close()
		bin := make([]byte, 4096)
		area := make([]byte, 16384-4096)
		f.ReadAt(bin, off)
		f.ReadAt(area, off+4096)
		area = mutate(area)
		f.WriteAt(area, off+4096)
		lukstest.Rechecksum(f, off, bin, area)
	}
	var corruptErr *CorruptHeaderError
	cases := []struct {
		name   string
		damage func(img string)
		check  func(t *testing.T, h *Header, err error)
	}{
		{"truncated", func(img string) { os.Truncate(img, 3000) }, func(t *testing.T, h *Header, err error) {
			var ioe *IOError
			if !errors.As(err, &ioe) {
				t.Fatalf("got %v, want an I/O error", err)
			}
		}},
		{"bad-magic-both", func(img string) { lukstest.Flip(img, 0); lukstest.Flip(img, 16384) }, func(t *testing.T, h *Header, err error) {
			if !errors.Is(err, ErrNotLUKS) {
				t.Fatalf("got %v, want not LUKS", err)
			}
		}},
		{"version-3", func(img string) {
			f, _ := os.OpenFile(img, os.O_RDWR, 0)
			f.WriteAt([]byte{0, 3}, 6)
			f.Close()
		}, func(t *testing.T, h *Header, err error) {
			var uv *UnsupportedVersionError
			if !errors.As(err, &uv) || uv.Version != 3 {
				t.Fatalf("got %v", err)
			}
		}},
		{"bad-checksum-primary", func(img string) { lukstest.Flip(img, 4096+20) }, func(t *testing.T, h *Header, err error) {
			if err != nil || h.HeaderCopy != "secondary" || !strings.Contains(strings.Join(h.Warnings, ";"), "checksum mismatch") {
				t.Fatalf("want the secondary with a warning: %v %+v", err, h)
			}
		}},
		{"bad-magic-primary", func(img string) { lukstest.Flip(img, 0) }, func(t *testing.T, h *Header, err error) {
			if err != nil || h.HeaderCopy != "secondary" {
				t.Fatalf("want the secondary: %v", err)
			}
		}},
		{"bad-hdr-size-primary", func(img string) {
			f, _ := os.OpenFile(img, os.O_RDWR, 0)
			f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0x30, 0x01}, 8)
			f.Close()
		}, func(t *testing.T, h *Header, err error) {
			if err != nil || h.HeaderCopy != "secondary" {
				t.Fatalf("garbage hdr_size: want the secondary found by scanning: %v", err)
			}
		}},
		{"bad-checksum-secondary", func(img string) { lukstest.Flip(img, 16384+4096+20) }, func(t *testing.T, h *Header, err error) {
			if err != nil || h.HeaderCopy != "primary" || len(h.Warnings) == 0 {
				t.Fatalf("want the primary with a warning: %v", err)
			}
		}},
		{"stale-primary", func(img string) {
			f, _ := os.OpenFile(img, os.O_RDWR, 0)
			defer f.Close()
			bin := make([]byte, 4096)
			area := make([]byte, 16384-4096)
			f.ReadAt(bin, 16384)
			f.ReadAt(area, 16384+4096)
			binary.BigEndian.PutUint64(bin[16:24], binary.BigEndian.Uint64(bin[16:24])+1)
			lukstest.Rechecksum(f, 16384, bin, area)
		}, func(t *testing.T, h *Header, err error) {
			if err != nil || h.HeaderCopy != "secondary" {
				t.Fatalf("higher seqid secondary not used: %v", err)
			}
		}},
		{"bad-checksum-both", func(img string) { lukstest.Flip(img, 4096+20); lukstest.Flip(img, 16384+4096+20) }, func(t *testing.T, h *Header, err error) {
			if !errors.As(err, &corruptErr) || corruptErr.Copy != "both" {
				t.Fatalf("got %v, want corrupt (both)", err)
			}
		}},
		{"bad-json", func(img string) {
			for _, off := range []int64{0, 16384} {
				rawJSON(img, off, func(a []byte) []byte { a[0] = '['; return a })
			}
		}, func(t *testing.T, h *Header, err error) {
			if !errors.As(err, &corruptErr) || !strings.Contains(err.Error(), "JSON") {
				t.Fatalf("got %v", err)
			}
		}},
		{"json-size-mismatch", func(img string) {
			lukstest.EditJSON(img, 0, func(m map[string]any) { lukstest.Get(m, "config")["json_size"] = "4096" })
		}, func(t *testing.T, h *Header, err error) {
			if !errors.As(err, &corruptErr) || !strings.Contains(err.Error(), "json_size") {
				t.Fatalf("got %v", err)
			}
		}},
		{"keyslot-area-out-of-bounds", func(img string) {
			lukstest.EditJSON(img, 0, func(m map[string]any) { lukstest.Get(m, "keyslots", "0", "area")["offset"] = "9999999999" })
		}, func(t *testing.T, h *Header, err error) {
			if !errors.As(err, &corruptErr) || !strings.Contains(err.Error(), "beyond the keyslots area end") {
				t.Fatalf("got %v", err)
			}
		}},
		{"requirements", func(img string) {
			lukstest.EditJSON(img, 0, func(m map[string]any) {
				lukstest.Get(m, "config")["requirements"] = map[string]any{"mandatory": []any{"offline-reencrypt"}}
			})
		}, func(t *testing.T, h *Header, err error) {
			var re *RequirementsError
			if !errors.As(err, &re) || re.Requirements[0] != "offline-reencrypt" {
				t.Fatalf("got %v", err)
			}
		}},
		{"damaged-key-material", func(img string) {
			h, _ := openFile(t, base)
			for i := int64(0); i < 64; i++ {
				lukstest.Flip(img, h.Keyslots[0].Offset+i*512)
			}
		}, func(t *testing.T, h *Header, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1}); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("damaged key material: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := variant(t, tc.damage)
			h, err := openFile(t, img)
			tc.check(t, h, err)
			if err == nil && tc.name != "damaged-key-material" {
				v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
				if err != nil || !bytes.Equal(v.Key, want) {
					t.Fatalf("the surviving copy does not open: %v", err)
				}
			}
		})
	}
}

// TestPayloadDecrypts encrypts an ext4 image offline with cryptsetup, then
// decrypts the payload with the recovered key and finds the superblock and
// a known file's contents.
func TestPayloadDecrypts(t *testing.T) {
	mkfs := testutil.NeedTool(t, "mkfs.ext4")
	cs := testutil.NeedTool(t, "cryptsetup")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	marker := "romboot-known-file-" + hex.EncodeToString([]byte("payload"))
	os.WriteFile(filepath.Join(dir, "root", "known.txt"), []byte(marker), 0o644)
	img := filepath.Join(dir, "fs.img")
	testutil.Run(t, nil, mkfs, "-q", "-F", "-d", filepath.Join(dir, "root"), img, "8M")
	testutil.Run(t, nil, "truncate", "-s", "40M", img)
	testutil.Run(t, []byte(testPass), cs, args([]string{"reencrypt", "--encrypt", "--type", "luks2", "--batch-mode", "--reduce-device-size", "32M", "--key-file", "-", "--pbkdf", "pbkdf2"}, cheapPBKDF2, []string{img})...)
	h := openImage(t, img)
	v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(img)
	defer f.Close()
	data := make([]byte, 8<<20)
	if _, err := f.ReadAt(data, h.PayloadOffset); err != nil {
		t.Fatal(err)
	}
	c, err := xts.NewCipher(aes.NewCipher, v.Key)
	if err != nil || h.Cipher != "aes-xts-plain64" {
		t.Fatalf("%v %s", err, h.Cipher)
	}
	ss := h.SectorSize
	for off := 0; off < len(data); off += ss {
		// IVs count 512-byte sectors, whatever the sector size.
		c.Decrypt(data[off:off+ss], data[off:off+ss], uint64(off/512)+h.IVTweak)
	}
	if binary.LittleEndian.Uint16(data[1024+56:]) != 0xEF53 {
		t.Fatal("no ext4 superblock in the decrypted payload")
	}
	if !bytes.Contains(data, []byte(marker)) {
		t.Fatal("known file not found in the decrypted payload")
	}
}

func TestJSONReader(t *testing.T) {
	for _, bad := range []string{`{"a":1`, `{"a" 1}`, `[1]`, `{"a":1-2}`, `{"a":"\x"}`, `{"a":tru}`, `{} {}`, `{"a":"` + "\x00" + `"}`, `{/* x }`, `{"a":-}`, `{,}`, strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)} {
		if _, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	v, err := parseJSON([]byte(`{"s":"a\"b\u00e9\ud83d\ude00","n":"16777216","i":-3,"l":["x","y"],"o":{"k":null},"t":true,"d":1,"d":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.strField("s"); s != "a\"bé😀" {
		t.Errorf("string %q", s)
	}
	if n, err := v.u64String("n"); err != nil || n != 16777216 {
		t.Errorf("u64 %d %v", n, err)
	}
	if _, err := v.u64String("i"); err == nil {
		t.Error("number accepted where LUKS2 wants a decimal string")
	}
	if n, _ := v.intField("d", 0); n != 2 {
		t.Errorf("duplicate key: %d, want the last", n)
	}
	if l, _ := v.strings("l"); len(l) != 2 || l[1] != "y" {
		t.Errorf("strings %v", l)
	}
	if _, err := v.intField("s", 0); err == nil {
		t.Error("string accepted as a number")
	}
	// What json-c (cryptsetup's parser) reads beyond RFC 8259.
	v, err = parseJSON([]byte("{'q':'x', /* c */ \"n\":007, // eol\n \"t\":TRUE, \"f\":1., \"l\":[1,],\"c\":\"a\tb\",}"))
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := v.strField("q"); q != "x" || !v.get("n").isInt() || v.get("f").isInt() || !v.get("t").b || len(v.get("l").arr) != 1 {
		t.Errorf("json-c extensions: %+v", v.obj)
	}
}

// A keyslot refused for lack of memory is said to be untried, never folded
// into "wrong passphrase" as if it had been tried.
func TestMemorySkippedKeyslotReported(t *testing.T) {
	img := format(t, "8M", args(small2, []string{"--pbkdf", "argon2id"}, cheapArgon)...)
	addKey(t, img, "1", "recovery-pass", "--pbkdf", "argon2id", "--pbkdf-memory", "262144", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1")
	h := openImage(t, img)
	mem := func() (uint64, error) { return 100 << 20, nil }
	_, err := h.Unlock([]byte("recovery-pass"), UnlockOptions{Keyslot: -1, MemAvailable: mem})
	var kl *KDFLimitError
	if !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "keyslot 1 not tried") || !strings.Contains(err.Error(), "256 MiB") {
		t.Fatalf("got %v, want wrong for keyslot 0 and keyslot 1 not tried", err)
	}
	_, err = h.Unlock([]byte("recovery-pass"), UnlockOptions{Keyslot: 1, MemAvailable: mem})
	if !errors.As(err, &kl) || !kl.NoMemory || errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("keyslot 1 alone: %v", err)
	}
	if v, err := h.Unlock([]byte("recovery-pass"), UnlockOptions{Keyslot: -1}); err != nil || v.Keyslot != 1 {
		t.Fatalf("with memory: %v", err)
	}
}
