//go:build !nociphers

package luks

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/twofish"
	"golang.org/x/crypto/xts"

	"github.com/romboot/romboot/internal/luks/lukstest"
)

// encryptSectors is the test's own encryption side of the keyslot ciphers,
// to make twofish images the host's cryptsetup cannot (its kernel lacks the
// cipher); the AES path of the same modes is checked against cryptsetup.
func encryptSectors(t *testing.T, name, mode string, key, buf []byte) {
	newBlock := map[string]func([]byte) (cipher.Block, error){
		"aes":     aes.NewCipher,
		"twofish": func(k []byte) (cipher.Block, error) { return twofish.NewCipher(k) },
		"serpent": newSerpent,
	}[name]
	switch mode {
	case "xts-plain64":
		c, err := xts.NewCipher(newBlock, key)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s*512 < len(buf); s++ {
			c.Encrypt(buf[s*512:(s+1)*512], buf[s*512:(s+1)*512], uint64(s))
		}
	case "cbc-essiv:sha256":
		b, _ := newBlock(key)
		hk := hashSum("sha256", key)
		eb, _ := newBlock(hk)
		for s := 0; s*512 < len(buf); s++ {
			iv := make([]byte, 16)
			pt := make([]byte, 16)
			binary.LittleEndian.PutUint64(pt, uint64(s))
			eb.Encrypt(iv, pt)
			cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf[s*512:(s+1)*512], buf[s*512:(s+1)*512])
		}
	default:
		t.Fatalf("no test encrypter for %s", mode)
	}
}

func hashSum(name string, b []byte) []byte {
	h, _ := hashByName(name)
	x := h()
	x.Write(b)
	return x.Sum(nil)
}

// reencryptKeyslot moves keyslot 0's area from the cipher it has to
// newName/newMode with the same derived key.
func reencryptKeyslot(t *testing.T, img string, h *Header, newName, newMode string) {
	ks := h.Keyslots[0]
	newHash, _ := hashByName(ks.KDF.Hash)
	dk := pbkdf2(newHash, []byte(testPass), ks.salt, int(ks.KDF.Iterations), ks.KeyBytes)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, ks.Length)
	f.ReadAt(buf, ks.Offset)
	name, mode := splitCipherSpec(ks.Cipher)
	dec, err := newSectorDecrypter(name, mode, dk)
	if err != nil {
		t.Fatal(err)
	}
	dec(buf)
	encryptSectors(t, newName, newMode, dk, buf)
	f.WriteAt(buf, ks.Offset)
}

func TestTwofishKeyslots(t *testing.T) {
	t.Run("luks2-twofish-xts-keyslot-serpent-segment", func(t *testing.T) {
		img := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
		want := volumeKey(t, img)
		reencryptKeyslot(t, img, openImage(t, img), "twofish", "xts-plain64")
		if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
			lukstest.Get(m, "keyslots", "0", "area")["encryption"] = "twofish-xts-plain64"
			lukstest.Get(m, "segments", "0")["encryption"] = "serpent-xts-plain64"
		}); err != nil {
			t.Fatal(err)
		}
		h := openImage(t, img)
		v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
		if err != nil || !bytes.Equal(v.Key, want) {
			t.Fatalf("twofish keyslot: %v", err)
		}
		_, p, _ := v.DMTable(8, 1, 8<<20)
		if !strings.HasPrefix(string(p), "serpent-xts-plain64 ") {
			t.Fatalf("segment cipher not passed through: %q", p)
		}
	})
	t.Run("luks2-serpent-xts-keyslot", func(t *testing.T) {
		img := format(t, "8M", args(small2, []string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)...)
		want := volumeKey(t, img)
		reencryptKeyslot(t, img, openImage(t, img), "serpent", "xts-plain64")
		if err := lukstest.EditJSON(img, 0, func(m map[string]any) {
			lukstest.Get(m, "keyslots", "0", "area")["encryption"] = "serpent-xts-plain64"
		}); err != nil {
			t.Fatal(err)
		}
		v, err := openImage(t, img).Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
		if err != nil || !bytes.Equal(v.Key, want) {
			t.Fatalf("serpent keyslot: %v", err)
		}
	})
	t.Run("luks1-twofish-cbc-essiv", func(t *testing.T) {
		img := format(t, "8M", args([]string{"--type", "luks1", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"}, cheapPBKDF2)...)
		want := volumeKey(t, img)
		h := openImage(t, img)
		reencryptKeyslot(t, img, h, "twofish", "cbc-essiv:sha256")
		f, _ := os.OpenFile(img, os.O_RDWR, 0)
		f.WriteAt(append([]byte("twofish"), make([]byte, 25)...), 8)
		f.Close()
		h = openImage(t, img)
		v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1})
		if err != nil || !bytes.Equal(v.Key, want) || h.Cipher != "twofish-cbc-essiv:sha256" {
			t.Fatalf("twofish LUKS1: %v cipher %s", err, h.Cipher)
		}
	})
}
