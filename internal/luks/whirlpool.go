package luks

import (
	"encoding/binary"
	"hash"
	"sync"
)

// Whirlpool (the 2003 final version, as in ISO/IEC 10118-3), written from
// its specification for LUKS1 headers made with --hash whirlpool. The S-box
// and the circulant products are computed once, from the spec's three
// 4-bit mini-boxes (when first needed), rather than carried as 16 KB of
// tables in the init.

var (
	wpSbox [256]byte
	wpMul  [8][256]uint64 // wpMul[k][x]: row byte x at column k through θ
	wpRC   [11]uint64     // round constants, row 0 of each c^r
)

var wpOnce sync.Once

// wpInit builds the tables, the first time a whirlpool hash is made.
func wpInit() {
	e := [16]byte{0x1, 0xB, 0x9, 0xC, 0xD, 0x6, 0xF, 0x3, 0xE, 0x8, 0x7, 0x4, 0xA, 0x2, 0x5, 0x0}
	r := [16]byte{0x7, 0xC, 0xB, 0xD, 0xE, 0x4, 0x9, 0xF, 0x6, 0x3, 0x8, 0xA, 0x2, 0x5, 0x1, 0x0}
	var ei [16]byte
	for i, v := range e {
		ei[v] = byte(i)
	}
	for u := 0; u < 256; u++ {
		a, b := e[u>>4], ei[u&15]
		x := r[a^b]
		wpSbox[u] = e[a^x]<<4 | ei[b^x]
	}
	// GF(2^8) with x^8+x^4+x^3+x^2+1.
	mul := func(a, b byte) byte {
		var p byte
		for b != 0 {
			if b&1 != 0 {
				p ^= a
			}
			hi := a & 0x80
			a <<= 1
			if hi != 0 {
				a ^= 0x1d
			}
			b >>= 1
		}
		return p
	}
	c := [8]byte{1, 1, 4, 1, 8, 5, 2, 9}
	for k := 0; k < 8; k++ {
		for x := 0; x < 256; x++ {
			s := wpSbox[x]
			var v uint64
			for j := 0; j < 8; j++ {
				v |= uint64(mul(s, c[(j-k+8)%8])) << (56 - 8*j)
			}
			wpMul[k][x] = v
		}
	}
	for rd := 1; rd <= 10; rd++ {
		wpRC[rd] = binary.BigEndian.Uint64(wpSbox[8*(rd-1):])
	}
}

// wpRound computes one round ρ[key](in): γ (S-box), π (column j moves down
// by j rows), θ (row times the circulant matrix) and σ (key addition), with
// γ and θ folded into wpMul. Rows are big-endian uint64s.
func wpRound(in, key *[8]uint64) (out [8]uint64) {
	for i := 0; i < 8; i++ {
		v := key[i]
		for k := 0; k < 8; k++ {
			v ^= wpMul[k][byte(in[(i-k+8)%8]>>(56-8*k))]
		}
		out[i] = v
	}
	return out
}

type whirlpool struct {
	h   [8]uint64
	buf [64]byte
	n   int
	len uint64 // bytes hashed
}

func newWhirlpool() hash.Hash {
	wpOnce.Do(wpInit)
	return new(whirlpool)
}

func (w *whirlpool) Size() int      { return 64 }
func (w *whirlpool) BlockSize() int { return 64 }
func (w *whirlpool) Reset()         { *w = whirlpool{} }

func (w *whirlpool) Write(p []byte) (int, error) {
	n := len(p)
	w.len += uint64(n)
	for len(p) > 0 {
		c := copy(w.buf[w.n:], p)
		w.n += c
		p = p[c:]
		if w.n == 64 {
			w.block()
			w.n = 0
		}
	}
	return n, nil
}

// block applies the Miyaguchi-Preneel step to the buffered block.
func (w *whirlpool) block() {
	var m, k, s [8]uint64
	for i := range m {
		m[i] = binary.BigEndian.Uint64(w.buf[8*i:])
		k[i] = w.h[i]
		s[i] = m[i] ^ k[i]
	}
	for r := 1; r <= 10; r++ {
		rc := [8]uint64{wpRC[r]}
		k = wpRound(&k, &rc)
		s = wpRound(&s, &k)
	}
	for i := range w.h {
		w.h[i] ^= s[i] ^ m[i]
	}
}

func (w *whirlpool) Sum(b []byte) []byte {
	d := *w
	bits := d.len * 8
	// A 1 bit, zeros up to 32 bytes before a block end, then the 256-bit
	// length (of which only the low 64 bits can be non-zero here).
	d.Write([]byte{0x80})
	for d.n != 32 {
		d.Write([]byte{0})
	}
	var l [32]byte
	binary.BigEndian.PutUint64(l[24:], bits)
	d.Write(l[:])
	for _, v := range d.h {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}
