package initrd

import (
	"encoding/binary"
	"errors"
	"io"
)

// The kernel's lz4 initrds use the legacy frame (lz4 -l): the magic, then
// blocks, each a little-endian 32-bit compressed size and an LZ4 block that
// unpacks to at most 8 MiB. There is no end mark: the member ends with the
// input, or where a size cannot be a block's (the next member's magic).
const (
	lz4LegacyMagic = 0x184c2102
	lz4BlockMax    = 8 << 20
	lz4Bound       = lz4BlockMax + lz4BlockMax/255 + 16
)

func decodeLZ4(in []byte, fn func(io.Reader) error) (int, error) {
	r := &lz4Reader{in: in, pos: 4, buf: make([]byte, 0, lz4BlockMax)}
	if err := fn(r); err != nil {
		return 0, err
	}
	return r.pos, nil
}

type lz4Reader struct {
	in   []byte
	pos  int
	buf  []byte // the current block, unpacked
	off  int    // read position in buf
	done bool
}

func (r *lz4Reader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// next unpacks the next block, or marks the member's end.
func (r *lz4Reader) next() error {
	for {
		if len(r.in)-r.pos < 4 {
			r.pos = len(r.in)
			r.done = true
			return nil
		}
		size := binary.LittleEndian.Uint32(r.in[r.pos:])
		if size == lz4LegacyMagic {
			r.pos += 4
			continue
		}
		if size == 0 || size > lz4Bound {
			r.done = true
			return nil
		}
		if int64(r.pos)+4+int64(size) > int64(len(r.in)) {
			return errors.New("lz4 block truncated")
		}
		out, err := lz4Block(r.in[r.pos+4:r.pos+4+int(size)], r.buf[:0], lz4BlockMax)
		if err != nil {
			return err
		}
		r.pos += 4 + int(size)
		r.buf, r.off = out, 0
		return nil
	}
}

var errLZ4 = errors.New("corrupt lz4 block")

// lz4Block unpacks one LZ4 block (the LZ4 block format: sequences of a
// token, literals and a back-reference) into dst, at most max bytes.
func lz4Block(src, dst []byte, max int) ([]byte, error) {
	i := 0
	for {
		if i >= len(src) {
			return nil, errLZ4
		}
		tok := src[i]
		i++
		var lit, ml int
		var ok bool
		lit, i, ok = lz4Length(src, i, int(tok>>4), max)
		if !ok {
			return nil, errLZ4
		}
		if lit > len(src)-i || len(dst)+lit > max {
			return nil, errLZ4
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			return dst, nil // the last sequence has literals only
		}
		if len(src)-i < 2 {
			return nil, errLZ4
		}
		off := int(src[i]) | int(src[i+1])<<8
		i += 2
		if off == 0 || off > len(dst) {
			return nil, errLZ4
		}
		ml, i, ok = lz4Length(src, i, int(tok&15), max)
		if !ok {
			return nil, errLZ4
		}
		ml += 4
		if len(dst)+ml > max {
			return nil, errLZ4
		}
		start := len(dst) - off
		for k := 0; k < ml; k++ { // byte by byte: the match may overlap its own output
			dst = append(dst, dst[start+k])
		}
	}
}

// lz4Length reads the rest of a length whose 4-bit start is n: when n is
// 15, bytes follow and add up until one is not 255. It returns the length
// and the position after it; false when the input ends or the length
// passes max.
func lz4Length(src []byte, i, n, max int) (int, int, bool) {
	if n != 15 {
		return n, i, true
	}
	for {
		if i >= len(src) {
			return 0, i, false
		}
		b := src[i]
		i++
		n += int(b)
		if n > max {
			return 0, i, false
		}
		if b != 255 {
			return n, i, true
		}
	}
}
