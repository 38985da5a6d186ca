package initrd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The newc header: 6 bytes of magic and 13 fields of 8 hex digits.
const (
	headerLen = 110
	trailer   = "TRAILER!!!"
	maxName   = 4096 // PATH_MAX, as the kernel's unpacker
)

type reader struct {
	lim      Limits
	want     func(Entry) bool
	out      *Initrd
	unpacked int64
}

// byteSource is what the cpio parser reads from: a bytes.Reader for a
// member stored as is (so its end is known exactly), a bufio.Reader over a
// decompressor otherwise.
type byteSource interface {
	io.Reader
	io.ByteReader
}

// stream parses the unpacked stream of a compressed member: archives one
// after another, zero padding between them, as the kernel's flush_buffer
// accepts; anything else is junk.
func (r *reader) stream(rd io.Reader) error {
	left := r.lim.MaxUnpacked - r.unpacked
	cr := &countingReader{r: rd, left: &left}
	br := bufio.NewReaderSize(cr, 64<<10)
	defer func() { r.unpacked = r.lim.MaxUnpacked - left }()
	for {
		b, err := br.Peek(1)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch b[0] {
		case 0:
			br.ReadByte()
		case '0':
			if err := r.archive(br); err != nil {
				return err
			}
		default:
			return fmt.Errorf("junk (byte %#x) within a compressed archive", b[0])
		}
	}
}

// archive parses one cpio archive up to and including its trailer.
func (r *reader) archive(src byteSource) error {
	var hdr [headerLen]byte
	var off int64 // offset within the archive, for the 4-byte padding
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return fmt.Errorf("reading a cpio header: %w", noEOF(err))
		}
		off += headerLen
		if string(hdr[:5]) != "07070" || (hdr[5] != '1' && hdr[5] != '2') {
			return fmt.Errorf("bad cpio magic %q (only newc archives are read)", hdr[:6])
		}
		var f [13]uint32
		for i := range f {
			v, ok := hex8(hdr[6+8*i : 14+8*i])
			if !ok {
				return fmt.Errorf("bad cpio header field %q", hdr[6+8*i:14+8*i])
			}
			f[i] = v
		}
		mode, size, nameLen := f[1], int64(f[6]), int64(f[11])
		if nameLen < 1 || nameLen > maxName {
			return fmt.Errorf("cpio name length %d out of range", nameLen)
		}
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(src, name); err != nil {
			return fmt.Errorf("reading a cpio name: %w", noEOF(err))
		}
		off += nameLen
		if err := skip(src, pad4(off)); err != nil {
			return err
		}
		off += pad4(off)
		n := strings.TrimRight(string(name), "\x00")
		if n == trailer {
			return nil
		}
		r.out.Entries++
		if r.out.Entries > r.lim.MaxEntries {
			return fmt.Errorf("more than %d cpio entries: %w", r.lim.MaxEntries, ErrLimit)
		}
		e := Entry{Name: cleanName(n), Mode: mode, Size: size}
		if e.IsRegular() && r.want != nil && r.want(e) {
			if size > r.lim.MaxFileSize {
				return fmt.Errorf("%s: %d bytes, more than the %d kept for a file: %w", e.Name, size, r.lim.MaxFileSize, ErrLimit)
			}
			data := make([]byte, size)
			if _, err := io.ReadFull(src, data); err != nil {
				return fmt.Errorf("reading %s: %w", e.Name, noEOF(err))
			}
			r.out.Files[e.Name] = data
		} else if err := skip(src, size); err != nil {
			return fmt.Errorf("reading %s: %w", e.Name, err)
		}
		off += size
		if err := skip(src, pad4(off)); err != nil {
			return err
		}
		off += pad4(off)
	}
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

func skip(src io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := src.(io.Seeker); ok {
		// A member stored as is: seeking past the end would hide truncation.
		if l, ok := src.(interface{ Len() int }); ok && int64(l.Len()) < n {
			return io.ErrUnexpectedEOF
		}
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	_, err := io.CopyN(io.Discard, src, n)
	return noEOF(err)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func hex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// cleanName drops the leading "./" or "/" archivers write.
func cleanName(n string) string {
	for {
		switch {
		case strings.HasPrefix(n, "./"):
			n = n[2:]
		case strings.HasPrefix(n, "/"):
			n = n[1:]
		default:
			return n
		}
	}
}
