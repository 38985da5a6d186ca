//go:build !nociphers

package luks

import (
	"crypto/cipher"
	"encoding/binary"
	"math/bits"
	"strconv"
)

// Serpent, written from its specification (Anderson, Biham, Knudsen) in
// the bitsliced form, with the byte order of the Linux kernel's serpent
// (blocks and keys as little-endian 32-bit words), which cryptsetup's
// serpent keyslots use. The S-boxes are applied bit by bit from the
// spec's 4-bit tables: slow, but a keyslot area is a few hundred KB.

var serpentS = [8][16]byte{
	{3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12},
	{15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4},
	{8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2},
	{0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14},
	{1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13},
	{15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1},
	{7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0},
	{1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6},
}

type serpentCipher struct {
	k   [33][4]uint32
	inv [8][16]byte
}

// newSerpent keys Serpent with 16, 24 or 32 bytes.
func newSerpent(key []byte) (cipher.Block, error) {
	if len(key) != 16 && len(key) != 24 && len(key) != 32 {
		return nil, KeySizeError(len(key))
	}
	c := &serpentCipher{}
	for s := range serpentS {
		for i, v := range serpentS[s] {
			c.inv[s][v] = byte(i)
		}
	}
	// Short keys are padded with a single 1 bit, then zeros, to 256 bits.
	var kb [32]byte
	copy(kb[:], key)
	if len(key) < 32 {
		kb[len(key)] = 1
	}
	var w [140]uint32
	for i := 0; i < 8; i++ {
		w[i] = binary.LittleEndian.Uint32(kb[4*i:])
	}
	for i := 8; i < 140; i++ {
		w[i] = bits.RotateLeft32(w[i-8]^w[i-5]^w[i-3]^w[i-1]^0x9e3779b9^uint32(i-8), 11)
	}
	for i := 0; i < 33; i++ {
		sub(&serpentS[(3-i+32*8)%8], (*[4]uint32)(w[8+4*i:]), &c.k[i])
	}
	clear(kb[:])
	clear(w[:])
	return c, nil
}

// KeySizeError reports a key length a cipher does not take.
type KeySizeError int

func (k KeySizeError) Error() string { return "invalid key size " + strconv.Itoa(int(k)) }

// sub applies a 4-bit S-box to the bit slices of x: bit i of the four
// words is one nibble (word 0 the low bit).
func sub(s *[16]byte, x, out *[4]uint32) {
	var o [4]uint32
	for i := 0; i < 32; i++ {
		n := (x[0]>>i)&1 | (x[1]>>i)&1<<1 | (x[2]>>i)&1<<2 | (x[3]>>i)&1<<3
		v := uint32(s[n])
		o[0] |= (v & 1) << i
		o[1] |= (v >> 1 & 1) << i
		o[2] |= (v >> 2 & 1) << i
		o[3] |= (v >> 3 & 1) << i
	}
	*out = o
}

func (c *serpentCipher) BlockSize() int { return 16 }

func lt(x *[4]uint32) {
	x[0] = bits.RotateLeft32(x[0], 13)
	x[2] = bits.RotateLeft32(x[2], 3)
	x[1] ^= x[0] ^ x[2]
	x[3] ^= x[2] ^ x[0]<<3
	x[1] = bits.RotateLeft32(x[1], 1)
	x[3] = bits.RotateLeft32(x[3], 7)
	x[0] ^= x[1] ^ x[3]
	x[2] ^= x[3] ^ x[1]<<7
	x[0] = bits.RotateLeft32(x[0], 5)
	x[2] = bits.RotateLeft32(x[2], 22)
}

func ltInv(x *[4]uint32) {
	x[2] = bits.RotateLeft32(x[2], -22)
	x[0] = bits.RotateLeft32(x[0], -5)
	x[2] ^= x[3] ^ x[1]<<7
	x[0] ^= x[1] ^ x[3]
	x[3] = bits.RotateLeft32(x[3], -7)
	x[1] = bits.RotateLeft32(x[1], -1)
	x[3] ^= x[2] ^ x[0]<<3
	x[1] ^= x[0] ^ x[2]
	x[2] = bits.RotateLeft32(x[2], -3)
	x[0] = bits.RotateLeft32(x[0], -13)
}

func xorKey(x, k *[4]uint32) {
	for i := range x {
		x[i] ^= k[i]
	}
}

func load(b []byte) (x [4]uint32) {
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return x
}

func store(b []byte, x *[4]uint32) {
	for i := range x {
		binary.LittleEndian.PutUint32(b[4*i:], x[i])
	}
}

func (c *serpentCipher) Encrypt(dst, src []byte) {
	x := load(src)
	for r := 0; r < 32; r++ {
		xorKey(&x, &c.k[r])
		sub(&serpentS[r%8], &x, &x)
		if r < 31 {
			lt(&x)
		}
	}
	xorKey(&x, &c.k[32])
	store(dst, &x)
}

func (c *serpentCipher) Decrypt(dst, src []byte) {
	x := load(src)
	xorKey(&x, &c.k[32])
	for r := 31; r >= 0; r-- {
		if r < 31 {
			ltInv(&x)
		}
		sub(&c.inv[r%8], &x, &x)
		xorKey(&x, &c.k[r])
	}
	store(dst, &x)
}
