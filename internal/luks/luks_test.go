package luks

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/testutil"
)

const testPass = "romboot test passphrase"

var cheapArgon = []string{"--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "2"}
var cheapPBKDF2 = []string{"--pbkdf-force-iterations", "1000"}

// format makes a LUKS image with cryptsetup and returns its path.
func format(t *testing.T, size string, args ...string) string {
	t.Helper()
	cs := testutil.NeedTool(t, "cryptsetup")
	img := filepath.Join(t.TempDir(), "luks.img")
	testutil.Run(t, nil, "truncate", "-s", size, img)
	all := append([]string{"luksFormat", "--batch-mode", "--key-file", "-"}, args...)
	testutil.Run(t, []byte(testPass), cs, append(all, img)...)
	return img
}

// volumeKey asks cryptsetup for the volume key of img.
func volumeKey(t *testing.T, img string) []byte {
	t.Helper()
	out := testutil.Run(t, []byte(testPass), "cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", "-", img)
	_, after, ok := strings.Cut(string(out), "MK dump:")
	if !ok {
		t.Fatalf("no MK dump in %s", out)
	}
	hexKey := regexp.MustCompile(`[^0-9a-f]`).ReplaceAllString(after, "")
	k, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openImage(t *testing.T, img string) *Header {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	h, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return h
}

func TestUnlockCryptsetupImages(t *testing.T) {
	small2 := []string{"--type", "luks2", "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "1m"}
	cases := []struct {
		name    string
		args    []string
		version int
		kdf     string
		cipher  string
		sector  int
	}{
		{"luks2-argon2id", append(append([]string{}, small2...), append([]string{"--pbkdf", "argon2id"}, cheapArgon...)...), 2, "argon2id", "aes-xts-plain64", 4096},
		{"luks2-argon2i", append(append([]string{}, small2...), append([]string{"--pbkdf", "argon2i"}, cheapArgon...)...), 2, "argon2i", "aes-xts-plain64", 4096},
		{"luks2-pbkdf2-sha512-512sector", append(append([]string{}, small2...), append([]string{"--pbkdf", "pbkdf2", "--hash", "sha512", "--sector-size", "512"}, cheapPBKDF2...)...), 2, "pbkdf2", "aes-xts-plain64", 512},
		{"luks2-cbc-essiv-aes128", append(append([]string{}, small2...), append([]string{"--pbkdf", "pbkdf2", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "128"}, cheapPBKDF2...)...), 2, "pbkdf2", "aes-cbc-essiv:sha256", 4096},
		{"luks2-pbkdf2-sha1-1024sector-xts256", append(append([]string{}, small2...), append([]string{"--pbkdf", "pbkdf2", "--hash", "sha1", "--sector-size", "1024", "--key-size", "256"}, cheapPBKDF2...)...), 2, "pbkdf2", "aes-xts-plain64", 1024},
		{"luks2-pbkdf2-sha256-2048sector-cbc-plain", append(append([]string{}, small2...), append([]string{"--pbkdf", "pbkdf2", "--hash", "sha256", "--sector-size", "2048", "--cipher", "aes-cbc-plain", "--key-size", "256"}, cheapPBKDF2...)...), 2, "pbkdf2", "aes-cbc-plain", 2048},
		{"luks1-sha256", append([]string{"--type", "luks1"}, cheapPBKDF2...), 1, "pbkdf2", "aes-xts-plain64", 512},
		{"luks1-sha1-cbc-essiv", append([]string{"--type", "luks1", "--hash", "sha1", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"}, cheapPBKDF2...), 1, "pbkdf2", "aes-cbc-essiv:sha256", 512},
		{"luks1-ripemd160-cbc-plain64", append([]string{"--type", "luks1", "--hash", "ripemd160", "--cipher", "aes-cbc-plain64", "--key-size", "256"}, cheapPBKDF2...), 1, "pbkdf2", "aes-cbc-plain64", 512},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := format(t, "8M", tc.args...)
			want := volumeKey(t, img)
			h := openImage(t, img)
			if h.Version != tc.version || h.Cipher != tc.cipher || h.SectorSize != tc.sector {
				t.Fatalf("header: version %d cipher %s sector %d, want %d %s %d", h.Version, h.Cipher, h.SectorSize, tc.version, tc.cipher, tc.sector)
			}
			var seen []string
			v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1, BeforeKDF: func(k Keyslot) { seen = append(seen, k.KDF.Type) }})
			if err != nil {
				t.Fatalf("Unlock: %v", err)
			}
			defer v.Wipe()
			if hex.EncodeToString(v.Key) != hex.EncodeToString(want) {
				t.Fatalf("volume key differs from cryptsetup's")
			}
			if len(seen) != 1 || seen[0] != tc.kdf {
				t.Fatalf("BeforeKDF saw %v, want [%s]", seen, tc.kdf)
			}
			if _, err := h.Unlock([]byte("wrong"), UnlockOptions{Keyslot: -1}); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
			}
		})
	}
}

func TestDMTable(t *testing.T) {
	h := &Header{Version: 2, Cipher: "aes-xts-plain64", SectorSize: 4096, PayloadOffset: 16 << 20, IVTweak: 0, Flags: []string{"allow_discards"}}
	v := &Volume{Header: h, Key: []byte{0xde, 0xad, 0xbe, 0xef}}
	n, p, err := v.DMTable(254, 1, 16<<20+8192+100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 {
		t.Fatalf("length %d sectors, want 16 (rounded down to the 4096-byte sector)", n)
	}
	if want := "aes-xts-plain64 deadbeef 0 254:1 32768 2 allow_discards sector_size:4096"; string(p) != want {
		t.Fatalf("params %q, want %q", p, want)
	}
	if _, _, err := v.DMTable(254, 1, 1<<20); err == nil {
		t.Fatal("a device smaller than the data offset must be refused")
	}
}

func TestNotLUKS(t *testing.T) {
	r := strings.NewReader(strings.Repeat("\x00", 64<<10))
	if _, err := Open(r, int64(r.Len())); !errors.Is(err, ErrNotLUKS) {
		t.Fatalf("got %v, want ErrNotLUKS", err)
	}
}
