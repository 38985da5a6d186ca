//go:build !nociphers

package luks

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
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

// TestLRW: the field product behaves as GF(2^128) (x^127 * x wraps to the
// reduction polynomial, commutative, distributive), and an aes-lrw-plain64
// keyslot made by our own encryption side opens. cryptsetup's
// luks1_aes-lrw-plain64-sha1.img (tests/luks1-images.tar.xz) opens too;
// the host kernel has no lrw to make one here.
func TestLRW(t *testing.T) {
	if h, l := gf128Mul(1<<63, 0, 0, 2); h != 0 || l != 0x87 {
		t.Fatalf("x^127 * x = %x %x, want 0x87", h, l)
	}
	a, b, c := [2]uint64{0x0123456789abcdef, 0xfedcba9876543210}, [2]uint64{0x1111, 0x8000000000000001}, [2]uint64{0xdeadbeef, 42}
	ab1, ab2 := gf128Mul(a[0], a[1], b[0], b[1])
	ba1, ba2 := gf128Mul(b[0], b[1], a[0], a[1])
	if ab1 != ba1 || ab2 != ba2 {
		t.Fatal("not commutative")
	}
	s1, s2 := gf128Mul(a[0], a[1], b[0]^c[0], b[1]^c[1])
	ac1, ac2 := gf128Mul(a[0], a[1], c[0], c[1])
	if s1 != ab1^ac1 || s2 != ab2^ac2 {
		t.Fatal("not distributive")
	}
	key := make([]byte, 48)
	for i := range key {
		key[i] = byte(i)
	}
	buf := bytes.Repeat([]byte("0123456789abcdef"), 64)
	want := append([]byte(nil), buf...)
	lrwEncrypt(t, key, buf)
	if bytes.Equal(buf, want) {
		t.Fatal("nothing encrypted")
	}
	dec, err := newSectorDecrypter("aes", "lrw-plain64", key)
	if err != nil {
		t.Fatal(err)
	}
	dec(buf)
	if !bytes.Equal(buf, want) {
		t.Fatal("lrw round trip")
	}
}

// lrwEncrypt is the test's own encryption side of aes-lrw-plain64.
func lrwEncrypt(t *testing.T, key, buf []byte) {
	b, _ := aes.NewCipher(key[:len(key)-16])
	k2h, k2l := binary.BigEndian.Uint64(key[len(key)-16:]), binary.BigEndian.Uint64(key[len(key)-8:])
	for s := 0; s*512 < len(buf); s++ {
		var iv [16]byte
		binary.LittleEndian.PutUint64(iv[:], uint64(s))
		ih, il := binary.BigEndian.Uint64(iv[:]), binary.BigEndian.Uint64(iv[8:])
		for o := s * 512; o < (s+1)*512; o += 16 {
			th, tl := gf128Mul(k2h, k2l, ih, il)
			var tw [16]byte
			binary.BigEndian.PutUint64(tw[:], th)
			binary.BigEndian.PutUint64(tw[8:], tl)
			for i := range 16 {
				buf[o+i] ^= tw[i]
			}
			b.Encrypt(buf[o:o+16], buf[o:o+16])
			for i := range 16 {
				buf[o+i] ^= tw[i]
			}
			il++
		}
	}
}
