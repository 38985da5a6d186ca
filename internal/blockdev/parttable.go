package blockdev

import (
	"bytes"
	"encoding/binary"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"
)

// partTable holds the identities of a disk's partitions.
type partTable struct {
	uuids  map[int]string
	labels map[int]string
}

func (t *partTable) identity(n int) (string, string) { return t.uuids[n], t.labels[n] }

func readPartTable(path string) (*partTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parsePartTable(f)
}

// parsePartTable reads a GPT (512- or 4096-byte sectors) or, failing that, an
// MBR. Every count and offset is bounded before use.
func parsePartTable(r io.ReaderAt) (*partTable, error) {
	for _, ss := range []int64{512, 4096} {
		if t, err := parseGPT(r, ss); err == nil {
			return t, nil
		}
	}
	return parseMBR(r)
}

func parseGPT(r io.ReaderAt, ss int64) (*partTable, error) {
	hdr := make([]byte, 92)
	if _, err := r.ReadAt(hdr, ss); err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return nil, fmt.Errorf("no GPT")
	}
	le := binary.LittleEndian
	entLBA := int64(le.Uint64(hdr[72:80]))
	n := le.Uint32(hdr[80:84])
	size := le.Uint32(hdr[84:88])
	if n == 0 || n > 1024 || size < 128 || size > 4096 || entLBA < 2 || entLBA > 1<<40 {
		return nil, fmt.Errorf("implausible GPT header")
	}
	ents := make([]byte, int(n)*int(size))
	if _, err := r.ReadAt(ents, entLBA*ss); err != nil {
		return nil, err
	}
	t := &partTable{uuids: map[int]string{}, labels: map[int]string{}}
	for i := 0; i < int(n); i++ {
		e := ents[i*int(size):][:128]
		if isZero(e[:16]) {
			continue
		}
		t.uuids[i+1] = guidString(e[16:32])
		u := make([]uint16, 36)
		for j := range u {
			u[j] = le.Uint16(e[56+2*j:])
		}
		t.labels[i+1] = strings.TrimRight(string(utf16.Decode(u)), "\x00")
	}
	return t, nil
}

func parseMBR(r io.ReaderAt) (*partTable, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, fmt.Errorf("no partition table")
	}
	sig := binary.LittleEndian.Uint32(mbr[440:444])
	t := &partTable{uuids: map[int]string{}, labels: map[int]string{}}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] != 0 {
			t.uuids[i+1] = fmt.Sprintf("%08x-%02x", sig, i+1)
		}
	}
	return t, nil
}

// guidString formats a GPT GUID (first three fields little-endian).
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:4]), le.Uint16(b[4:6]), le.Uint16(b[6:8]), b[8:10], b[10:16])
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
