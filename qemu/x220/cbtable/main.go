// Command cbtable writes a coreboot table (the "LBIO" table coreboot leaves
// in CBMEM for its payload) with the records the X220 e2e test needs: the
// mainboard's name and a linear framebuffer. qemu/x220-run places it in
// guest memory with QEMU's -device loader; the emulated hand-over
// (qemu/x220/stage.c) sets the display to its mode and fills in the
// framebuffer's address when it is 0, as coreboot's graphics init does.
//
//	cbtable -o cbtable.bin [-width 1024 -height 768]
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
)

// Tags from coreboot's commonlib/coreboot_tables.h.
const (
	tagMainboard   = 0x0003
	tagFramebuffer = 0x0012
)

func main() {
	out := flag.String("o", "", "output file")
	width := flag.Uint("width", 1024, "framebuffer width in pixels")
	height := flag.Uint("height", 768, "framebuffer height in pixels")
	addr := flag.Uint64("fb", 0, "framebuffer address (0: the stage fills in the display's BAR)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: cbtable -o FILE [-width W -height H -fb ADDR]")
		os.Exit(2)
	}
	if err := os.WriteFile(*out, table(uint32(*width), uint32(*height), *addr), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "cbtable:", err)
		os.Exit(1)
	}
}

// table returns the header and its records, with coreboot's checksums.
func table(width, height uint32, fb uint64) []byte {
	le := binary.LittleEndian
	var recs []byte
	// lb_mainboard: vendor and part number as two strings.
	mb := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
	mb = append(mb, "LENOVO\x00X220\x00"...)
	for len(mb)%8 != 0 {
		mb = append(mb, 0)
	}
	le.PutUint32(mb[0:], tagMainboard)
	le.PutUint32(mb[4:], uint32(len(mb)))
	recs = append(recs, mb...)
	// lb_framebuffer: 32 bits per pixel, x8r8g8b8.
	f := make([]byte, 40)
	le.PutUint32(f[0:], tagFramebuffer)
	le.PutUint32(f[4:], uint32(len(f)))
	le.PutUint64(f[8:], fb)
	le.PutUint32(f[16:], width)
	le.PutUint32(f[20:], height)
	le.PutUint32(f[24:], width*4)
	copy(f[28:], []byte{32, 16, 8, 8, 8, 0, 8, 24, 8})
	recs = append(recs, f...)

	h := make([]byte, 24)
	copy(h, "LBIO")
	le.PutUint32(h[4:], 24)
	le.PutUint32(h[12:], uint32(len(recs)))
	le.PutUint32(h[16:], uint32(ipChecksum(recs)))
	le.PutUint32(h[20:], 2)
	le.PutUint32(h[8:], uint32(ipChecksum(h)))
	return append(h, recs...)
}

// ipChecksum is coreboot's compute_ip_checksum: the ones' complement of the
// ones' complement sum of little-endian 16-bit words.
func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i, c := range b {
		if i&1 == 1 {
			sum += uint32(c) << 8
		} else {
			sum += uint32(c)
		}
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}
