// Package initrd reads the files of a Linux initrd the way the kernel
// unpacks it: a concatenation of cpio "newc" archives, each stored as is or
// compressed (gzip, xz, zstd, lz4 legacy), with zero padding between them.
// Debian's initramfs-tools puts an uncompressed early-microcode archive
// first and the main archive, compressed, after it; dracut does the same.
//
// Reading is bounded: the unpacked bytes, the entries and the bytes kept for
// a file are capped, so a hostile or broken initrd (a decompression bomb)
// costs bounded memory and time and ends in an error. Nothing is written.
package initrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits bound the work of one Read. Zero fields take the defaults.
type Limits struct {
	MaxUnpacked int64 // bytes of cpio data, all archives together (default 1 GiB)
	MaxEntries  int   // cpio entries, all archives together (default 1<<20)
	MaxFileSize int64 // bytes kept of one wanted file (default 1 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxUnpacked <= 0 {
		l.MaxUnpacked = 1 << 30
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 1 << 20
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 1 << 20
	}
	return l
}

// ErrLimit is wrapped by the error Read returns when a limit is reached.
var ErrLimit = errors.New("initrd limit reached")

// ErrNotBuilt is wrapped by the error for a member whose compression this
// build does not read (xz without the initrd_xz build tag).
var ErrNotBuilt = errors.New("compression not built in")

// Entry is one cpio entry as Read sees it.
type Entry struct {
	Name string // without a leading "/" or "./"
	Mode uint32 // st_mode: type and permission bits
	Size int64
}

// IsRegular reports whether the entry is a regular file.
func (e Entry) IsRegular() bool { return e.Mode&0o170000 == 0o100000 }

// Member is one archive of the concatenation.
type Member struct {
	Offset      int64  // in the initrd
	Compression string // "none", "gzip", "xz", "zstd", "lz4"
}

// Initrd is what Read found.
type Initrd struct {
	Members []Member
	Entries int               // cpio entries seen
	Files   map[string][]byte // the wanted regular files; a later archive's copy wins, as in the kernel
}

// Read walks every archive of the initrd in data. want is asked about every
// entry; the contents of the regular files it wants are returned. A wanted
// file larger than lim.MaxFileSize is an error.
func Read(data []byte, want func(Entry) bool, lim Limits) (*Initrd, error) {
	r := &reader{lim: lim.withDefaults(), want: want, out: &Initrd{Files: map[string][]byte{}}}
	pos := 0
	for pos < len(data) {
		b := data[pos]
		switch {
		case b == 0:
			pos++
			continue
		case b == '0' && pos%4 == 0:
			r.out.Members = append(r.out.Members, Member{int64(pos), "none"})
			br := bytes.NewReader(data[pos:])
			if err := r.archive(br); err != nil {
				return r.out, fmt.Errorf("cpio archive at offset %d: %w", pos, err)
			}
			pos = len(data) - br.Len()
			continue
		}
		d := decoderFor(data[pos:])
		if d == nil {
			return r.out, fmt.Errorf("offset %d: neither a cpio archive nor a known compression (magic % x)", pos, data[pos:min(pos+6, len(data))])
		}
		r.out.Members = append(r.out.Members, Member{int64(pos), d.name})
		n, err := d.decode(data[pos:], func(rd io.Reader) error { return r.stream(rd) })
		if err != nil {
			return r.out, fmt.Errorf("%s archive at offset %d: %w", d.name, pos, err)
		}
		if n <= 0 {
			return r.out, fmt.Errorf("%s archive at offset %d: no progress", d.name, pos)
		}
		pos += n
	}
	return r.out, nil
}

// decoder unpacks one compressed member at the start of its input: decode
// hands the unpacked stream to fn and returns how many input bytes the
// member took.
type decoder struct {
	name   string
	magic  []byte
	decode func(in []byte, fn func(io.Reader) error) (int, error)
}

func decoderFor(b []byte) *decoder {
	for i := range decoders {
		if bytes.HasPrefix(b, decoders[i].magic) {
			return &decoders[i]
		}
	}
	return nil
}

var decoders = []decoder{
	{"gzip", []byte{0x1f, 0x8b}, decodeGzip},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, decodeZstd},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}, decodeXZ},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}, decodeLZ4},
}

// countingReader counts the bytes read through it against the unpacked limit.
type countingReader struct {
	r    io.Reader
	left *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.left <= 0 {
		return 0, fmt.Errorf("more than the allowed unpacked bytes: %w", ErrLimit)
	}
	if int64(len(p)) > *c.left {
		p = p[:*c.left]
	}
	n, err := c.r.Read(p)
	*c.left -= int64(n)
	return n, err
}
