// Package lukstest edits LUKS2 headers of test images the way a damaged or
// unusual disk would have them: it rewrites the JSON metadata of both copies
// with valid checksums, or breaks one copy. Tests only: romboot itself never
// writes a header.
package lukstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
)

// Copy offsets of a LUKS2 image's two header copies, read from the primary.
func Copies(f *os.File, base int64) (hdrSize int64, offsets []int64, err error) {
	bin := make([]byte, 4096)
	if _, err := f.ReadAt(bin, base); err != nil {
		return 0, nil, err
	}
	if !bytes.Equal(bin[:6], []byte("LUKS\xba\xbe")) || binary.BigEndian.Uint16(bin[6:8]) != 2 {
		return 0, nil, fmt.Errorf("no LUKS2 primary header at %d", base)
	}
	hdrSize = int64(binary.BigEndian.Uint64(bin[8:16]))
	return hdrSize, []int64{0, hdrSize}, nil
}

// EditJSON decodes the metadata of the LUKS2 image at base in path, lets
// edit change it, and writes it back to both copies with fresh checksums.
func EditJSON(path string, base int64, edit func(m map[string]any)) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	hdrSize, offs, err := Copies(f, base)
	if err != nil {
		return err
	}
	area := make([]byte, hdrSize-4096)
	if _, err := f.ReadAt(area, base+4096); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(area, "\x00")))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	edit(m)
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(js) >= len(area) {
		return fmt.Errorf("edited JSON does not fit")
	}
	clear(area)
	copy(area, js)
	for _, off := range offs {
		if err := writeCopy(f, base+off, area); err != nil {
			return err
		}
	}
	return nil
}

// writeCopy writes the JSON area of the copy at off and fixes its checksum.
func writeCopy(f *os.File, off int64, area []byte) error {
	bin := make([]byte, 4096)
	if _, err := f.ReadAt(bin, off); err != nil {
		return err
	}
	if _, err := f.WriteAt(area, off+4096); err != nil {
		return err
	}
	return Rechecksum(f, off, bin, area)
}

// Rechecksum recomputes the sha256 checksum of the header copy at off.
func Rechecksum(f *os.File, off int64, bin, area []byte) error {
	clear(bin[448 : 448+64])
	h := sha256.New()
	h.Write(bin)
	h.Write(area)
	copy(bin[448:], h.Sum(nil))
	_, err := f.WriteAt(bin, off)
	return err
}

// Flip XORs the byte at off with 0xff: damage without changing the size.
func Flip(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	return err
}

// Get walks m by keys ("keyslots", "0", "area") and returns the object there.
func Get(m map[string]any, keys ...string) map[string]any {
	cur := m
	for _, k := range keys {
		next, _ := cur[k].(map[string]any)
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// ReadJSON decodes the metadata of the LUKS2 header copy at off (numbers
// kept as json.Number) and returns it with the copy's hdr_size.
func ReadJSON(path string, off int64) (map[string]any, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	bin := make([]byte, 4096)
	if _, err := f.ReadAt(bin, off); err != nil {
		return nil, 0, err
	}
	hdrSize := int64(binary.BigEndian.Uint64(bin[8:16]))
	if hdrSize < 16384 || hdrSize > 4<<20 {
		return nil, 0, fmt.Errorf("hdr_size %d", hdrSize)
	}
	area := make([]byte, hdrSize-4096)
	if _, err := f.ReadAt(area, off+4096); err != nil {
		return nil, 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(area, "\x00")))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, 0, err
	}
	return m, hdrSize, nil
}

// Marshal encodes metadata compactly, as cryptsetup writes it.
func Marshal(m map[string]any) []byte {
	js, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return js
}

// WriteCopy writes a header copy at off: the binary header of the copy at
// from (its seqid, uuid, labels) with the magic for off, hdr_size and
// hdr_offset set, then area (padded with NULs to hdrSize-4096 when
// shorter) and a fresh sha256 checksum. The area is written as given: it
// may be malformed on purpose.
func WriteCopy(path string, from, off, hdrSize int64, area []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bin := make([]byte, 4096)
	if _, err := f.ReadAt(bin, from); err != nil {
		return err
	}
	if off == 0 {
		copy(bin, "LUKS\xba\xbe")
	} else {
		copy(bin, "SKUL\xba\xbe")
	}
	binary.BigEndian.PutUint64(bin[8:16], uint64(hdrSize))
	binary.BigEndian.PutUint64(bin[256:264], uint64(off))
	full := make([]byte, hdrSize-4096)
	if len(area) > len(full) {
		return fmt.Errorf("area of %d bytes does not fit %d", len(area), len(full))
	}
	copy(full, area)
	if _, err := f.WriteAt(full, off+4096); err != nil {
		return err
	}
	return Rechecksum(f, off, bin, full)
}

// Kill destroys the header copy at off (its magic), as a damaged sector
// would.
func Kill(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt([]byte("XXXXXX"), off)
	return err
}
