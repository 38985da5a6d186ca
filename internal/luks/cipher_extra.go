//go:build !nociphers

package luks

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
	"strconv"

	"golang.org/x/crypto/twofish"
)

// The ciphers beyond AES: twofish and serpent, and the LRW mode. A payload
// kernel maps them only when built with CIPHERS=1 (kernel-config/
// ciphers.config; LRW never), so the x220's default init leaves them out
// (build tag nociphers, see the Makefile); the host tool has them all.

func extraCipher(name string) (func([]byte) (cipher.Block, error), bool) {
	switch name {
	case "twofish":
		return func(k []byte) (cipher.Block, error) { return twofish.NewCipher(k) }, true
	case "serpent":
		return newSerpent, true
	}
	return nil, false
}

// newLRW decrypts LRW (IEEE P1619 style, as the kernel's lrw template):
// the key is the block cipher key followed by a 16-byte tweak key K2; block
// j of a sector is D(C xor T) xor T with T = K2 * (I + j) in GF(2^128)
// (x^128+x^7+x^2+x+1, big-endian bit order), I the IV read as a 128-bit
// big-endian number.
func newLRW(newBlock func([]byte) (cipher.Block, error), mode, spec string, key []byte) (sectorDecrypter, error) {
	if len(key) <= 16 {
		return nil, &UnsupportedCipherError{Spec: spec + " with a " + strconv.Itoa(len(key)*8) + "-bit key"}
	}
	b, err := newBlock(key[:len(key)-16])
	if err != nil || b.BlockSize() != 16 {
		return nil, &UnsupportedCipherError{Spec: spec}
	}
	k2h := binary.BigEndian.Uint64(key[len(key)-16:])
	k2l := binary.BigEndian.Uint64(key[len(key)-8:])
	return func(buf []byte) error {
		var t [16]byte
		for s := 0; s*sectorSize < len(buf); s++ {
			var ih, il uint64
			switch mode {
			case "lrw-plain64":
				ih = bits.ReverseBytes64(uint64(s))
			case "lrw-plain":
				ih = uint64(bits.ReverseBytes32(uint32(s))) << 32
			}
			for o := s * sectorSize; o < (s+1)*sectorSize; o += 16 {
				th, tl := gf128Mul(k2h, k2l, ih, il)
				binary.BigEndian.PutUint64(t[:], th)
				binary.BigEndian.PutUint64(t[8:], tl)
				blk := buf[o : o+16]
				subtle.XORBytes(blk, blk, t[:])
				b.Decrypt(blk, blk)
				subtle.XORBytes(blk, blk, t[:])
				if il++; il == 0 {
					ih++
				}
			}
		}
		return nil
	}, nil
}

// gf128Mul multiplies a and b in GF(2^128) with the polynomial
// x^128+x^7+x^2+x+1, bit i of the 128-bit big-endian value being the
// coefficient of x^i.
func gf128Mul(ah, al, bh, bl uint64) (rh, rl uint64) {
	for i := 127; i >= 0; i-- {
		carry := rh >> 63
		rh = rh<<1 | rl>>63
		rl <<= 1
		rl ^= 0x87 & -carry
		var bit uint64
		if i >= 64 {
			bit = bh >> (i - 64) & 1
		} else {
			bit = bl >> i & 1
		}
		rh ^= ah & -bit
		rl ^= al & -bit
	}
	return rh, rl
}
