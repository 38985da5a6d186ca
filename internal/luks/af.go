package luks

import (
	"encoding/binary"
	"hash"
)

// afMerge recovers a key of keyLen bytes from material split into stripes by
// the LUKS anti-forensic splitter: d = 0; for each stripe but the last,
// d = diffuse(d XOR stripe); key = d XOR last stripe.
func afMerge(material []byte, keyLen, stripes int, h func() hash.Hash) []byte {
	d := make([]byte, keyLen)
	for i := 0; i < stripes-1; i++ {
		s := material[i*keyLen : (i+1)*keyLen]
		for j := range d {
			d[j] ^= s[j]
		}
		diffuse(d, h)
	}
	last := material[(stripes-1)*keyLen : stripes*keyLen]
	for j := range d {
		d[j] ^= last[j]
	}
	return d
}

// diffuse replaces each digest-sized block j of b by H(be32(j) || block),
// truncated to the block's length (the last block may be short).
func diffuse(b []byte, newHash func() hash.Hash) {
	hh := newHash()
	size := hh.Size()
	var iv [4]byte
	sum := make([]byte, 0, size)
	for j, off := 0, 0; off < len(b); j, off = j+1, off+size {
		end := min(off+size, len(b))
		hh.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(j))
		hh.Write(iv[:])
		hh.Write(b[off:end])
		sum = hh.Sum(sum[:0])
		copy(b[off:end], sum)
	}
	wipe(sum)
}
