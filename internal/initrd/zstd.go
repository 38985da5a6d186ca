package initrd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// decodeZstd unpacks the zstd frames (and skippable frames) at the start of
// in. Their end is found from the frame and block headers (RFC 8878), so
// what follows is the next member.
func decodeZstd(in []byte, fn func(io.Reader) error) (int, error) {
	end, err := zstdFramesEnd(in)
	if err != nil {
		return 0, err
	}
	d, err := zstd.NewReader(bytes.NewReader(in[:end]),
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(128<<20))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	if err := fn(d); err != nil {
		return 0, err
	}
	return end, nil
}

var errZstdTruncated = errors.New("zstd frame truncated")

// zstdFramesEnd returns the length of the run of frames at the start of b.
func zstdFramesEnd(b []byte) (int, error) {
	pos := 0
	for pos+4 <= len(b) {
		magic := binary.LittleEndian.Uint32(b[pos:])
		switch {
		case magic == 0xfd2fb528:
			n, err := zstdFrameLen(b[pos:])
			if err != nil {
				return 0, fmt.Errorf("frame at +%d: %w", pos, err)
			}
			pos += n
		case magic&0xfffffff0 == 0x184d2a50: // skippable frame
			if pos+8 > len(b) {
				return 0, errZstdTruncated
			}
			n := int64(binary.LittleEndian.Uint32(b[pos+4:]))
			if int64(pos)+8+n > int64(len(b)) {
				return 0, errZstdTruncated
			}
			pos += 8 + int(n)
		default:
			if pos == 0 {
				return 0, errors.New("not a zstd frame")
			}
			return pos, nil
		}
	}
	return pos, nil
}

func zstdFrameLen(b []byte) (int, error) {
	if len(b) < 6 {
		return 0, errZstdTruncated
	}
	fhd := b[4]
	if fhd&0x08 != 0 {
		return 0, errors.New("reserved bit set in the frame header")
	}
	pos := 5
	single := fhd&0x20 != 0
	if !single {
		pos++ // window descriptor
	}
	pos += [4]int{0, 1, 2, 4}[fhd&3] // dictionary ID
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	pos += fcs
	for {
		if pos+3 > len(b) {
			return 0, errZstdTruncated
		}
		h := uint32(b[pos]) | uint32(b[pos+1])<<8 | uint32(b[pos+2])<<16
		pos += 3
		last, typ, size := h&1 != 0, (h>>1)&3, int(h>>3)
		switch typ {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return 0, errors.New("reserved block type")
		}
		if pos+size > len(b) {
			return 0, errZstdTruncated
		}
		pos += size
		if last {
			break
		}
	}
	if fhd&0x04 != 0 { // content checksum
		pos += 4
		if pos > len(b) {
			return 0, errZstdTruncated
		}
	}
	return pos, nil
}
