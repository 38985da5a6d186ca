package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/crypto/twofish"
	"golang.org/x/crypto/xts"
)

// sectorSize is the unit the keyslot areas are encrypted in, whatever the
// data segment's sector size.
const sectorSize = 512

// sectorDecrypter decrypts a whole keyslot area in place, sector by sector,
// sector numbers starting at 0 at the start of the area.
type sectorDecrypter func(buf []byte) error

// blockCipherByName returns the constructor of a block cipher LUKS names.
func blockCipherByName(name string) (func([]byte) (cipher.Block, error), bool) {
	switch name {
	case "aes":
		return aes.NewCipher, true
	case "twofish":
		return func(k []byte) (cipher.Block, error) { return twofish.NewCipher(k) }, true
	case "serpent":
		return newSerpent, true
	}
	return nil, false
}

// splitCipherSpec splits "aes-xts-plain64" into "aes" and "xts-plain64".
func splitCipherSpec(spec string) (name, mode string) {
	name, mode, _ = strings.Cut(spec, "-")
	return name, mode
}

// newSectorDecrypter builds the decrypter for cipher name and mode (as LUKS
// writes them) keyed by key. Supported: aes, twofish and serpent with
// xts-plain64, xts-plain, cbc-essiv:<hash>, cbc-plain64, cbc-plain,
// lrw-plain64, lrw-plain and ecb.
func newSectorDecrypter(name, mode string, key []byte) (sectorDecrypter, error) {
	spec := name + "-" + mode
	newBlock, ok := blockCipherByName(name)
	if !ok {
		return nil, &UnsupportedCipherError{Spec: spec}
	}
	switch {
	case mode == "xts-plain64" || mode == "xts-plain":
		if len(key) != 32 && len(key) != 64 {
			return nil, &UnsupportedCipherError{Spec: spec + " with a " + strconv.Itoa(len(key)*8) + "-bit key"}
		}
		c, err := xts.NewCipher(newBlock, key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		return func(buf []byte) error {
			for s := 0; s*sectorSize < len(buf); s++ {
				sec := buf[s*sectorSize : (s+1)*sectorSize]
				c.Decrypt(sec, sec, uint64(s))
			}
			return nil
		}, nil
	case mode == "lrw-plain64" || mode == "lrw-plain":
		return newLRW(newBlock, mode, spec, key)
	case mode == "ecb":
		// No IV: every block on its own (cryptsetup's aes-ecb).
		b, err := newBlock(key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		bs := b.BlockSize()
		return func(buf []byte) error {
			for o := 0; o+bs <= len(buf); o += bs {
				b.Decrypt(buf[o:o+bs], buf[o:o+bs])
			}
			return nil
		}, nil
	case mode == "cbc-plain64" || mode == "cbc-plain" || strings.HasPrefix(mode, "cbc-essiv:"):
		b, err := newBlock(key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		ivFor, err := cbcIV(mode, spec, key, newBlock, b.BlockSize())
		if err != nil {
			return nil, err
		}
		iv := make([]byte, b.BlockSize())
		return func(buf []byte) error {
			for s := 0; s*sectorSize < len(buf); s++ {
				sec := buf[s*sectorSize : (s+1)*sectorSize]
				ivFor(iv, uint64(s))
				cipher.NewCBCDecrypter(b, iv).CryptBlocks(sec, sec)
			}
			return nil
		}, nil
	}
	return nil, &UnsupportedCipherError{Spec: spec}
}

// cbcIV returns the IV generator for a CBC mode.
func cbcIV(mode, spec string, key []byte, newBlock func([]byte) (cipher.Block, error), bs int) (func(iv []byte, sector uint64), error) {
	switch mode {
	case "cbc-plain64":
		return func(iv []byte, s uint64) {
			clear(iv)
			binary.LittleEndian.PutUint64(iv, s)
		}, nil
	case "cbc-plain":
		return func(iv []byte, s uint64) {
			clear(iv)
			binary.LittleEndian.PutUint32(iv, uint32(s))
		}, nil
	}
	// ESSIV: IV = E_{H(key)}(le64(sector)), with the same block cipher keyed
	// by the digest of the volume key.
	hname := strings.TrimPrefix(mode, "cbc-essiv:")
	newHash, ok := hashByName(hname)
	if !ok {
		return nil, &UnsupportedCipherError{Spec: spec}
	}
	hh := newHash()
	hh.Write(key)
	salt := hh.Sum(nil)
	eb, err := newBlock(salt)
	wipe(salt)
	if err != nil {
		return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
	}
	plain := make([]byte, bs)
	return func(iv []byte, s uint64) {
		clear(plain)
		binary.LittleEndian.PutUint64(plain, s)
		eb.Encrypt(iv, plain)
	}, nil
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
