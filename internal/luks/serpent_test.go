package luks

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"
)

// TestSerpent: known answers from the Linux kernel's test vectors for
// "tnepres" (Serpent with every byte of key, plaintext and ciphertext in
// reverse order, as in the Serpent submission's reference code), mapped to
// the kernel's serpent byte order that cryptsetup uses; and round trips for
// every key size. Opening cryptsetup's own luks1_serpent-xts-plain64-*
// images (tests/luks1-images.tar.xz) was checked too.
func TestSerpent(t *testing.T) {
	rev := func(s string) []byte {
		b, _ := hex.DecodeString(s)
		slices.Reverse(b)
		return b
	}
	for _, v := range []struct{ key, pt, ct string }{
		{"80000000000000000000000000000000", "00000000000000000000000000000000", "49afbfad9d5a34052cd8ffa5986bd2dd"},
		{"000102030405060708090a0b0c0d0e0f", "000102030405060708090a0b0c0d0e0f", "eaf4d7fcd801344781450bfa0cd6ad6e"},
	} {
		c, err := newSerpent(rev(v.key))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 16)
		c.Encrypt(got, rev(v.pt))
		if !bytes.Equal(got, rev(v.ct)) {
			t.Fatalf("key %s: got %x, want %x", v.key, got, rev(v.ct))
		}
		c.Decrypt(got, got)
		if !bytes.Equal(got, rev(v.pt)) {
			t.Fatalf("key %s: decrypt %x", v.key, got)
		}
	}
	for _, kl := range []int{16, 24, 32} {
		k := make([]byte, kl)
		for i := range k {
			k[i] = byte(i * 7)
		}
		c, _ := newSerpent(k)
		pt := []byte("sixteen byte blk")
		ct := make([]byte, 16)
		c.Encrypt(ct, pt)
		c.Decrypt(ct, ct)
		if !bytes.Equal(ct, pt) {
			t.Fatalf("%d-byte key: round trip %q", kl, ct)
		}
	}
	if _, err := newSerpent(make([]byte, 20)); err == nil {
		t.Fatal("20-byte key accepted")
	}
}
