package luks

import (
	"bytes"
	"encoding/binary"
	"io"
)

// foreignSignature looks for another format's signature on a LUKS2 device,
// as cryptsetup asks blkid before it uses a device with one damaged header
// copy: an LVM2 PV label, a file system, swap, an MD RAID superblock or a
// GPT partition table. It returns the blkid type name, or "".
func foreignSignature(r io.ReaderAt) string {
	buf := make([]byte, 8192)
	n, _ := r.ReadAt(buf, 0)
	buf = buf[:n]
	at := func(off int, magic string) bool {
		return off+len(magic) <= len(buf) && string(buf[off:off+len(magic)]) == magic
	}
	// LVM2: a label in one of the first four sectors, with its own sector
	// number and checksum.
	for s := 0; s < 4 && (s+1)*512 <= len(buf); s++ {
		sec := buf[s*512 : (s+1)*512]
		if string(sec[0:8]) == "LABELONE" && string(sec[24:32]) == "LVM2 001" &&
			binary.LittleEndian.Uint64(sec[8:16]) == uint64(s) &&
			binary.LittleEndian.Uint32(sec[16:20]) == lvmCRC(sec[20:]) {
			return "LVM2_member"
		}
	}
	le := binary.LittleEndian
	switch {
	case len(buf) >= 2048 && le.Uint16(buf[1024+56:]) == 0xEF53 && le.Uint32(buf[1024+24:]) <= 6 && le.Uint32(buf[1024:]) != 0:
		return "ext4"
	case at(0, "XFSB"):
		return "xfs"
	case at(4096-10, "SWAPSPACE2"), at(4096-10, "SWAP-SPACE"):
		return "swap"
	case len(buf) >= 4 && le.Uint32(buf[0:]) == 0xa92b4efc, len(buf) >= 4100 && le.Uint32(buf[4096:]) == 0xa92b4efc:
		return "linux_raid_member"
	case at(512, "EFI PART"):
		return "gpt"
	}
	var b [8]byte
	if n, _ := r.ReadAt(b[:], 65536+64); n == 8 && bytes.Equal(b[:], []byte("_BHRfS_M")) {
		return "btrfs"
	}
	return ""
}

// lvmCRC is LVM2's label checksum: the reflected CRC-32 (IEEE polynomial)
// seeded with 0xf597a6cf, without the final inversion (bitwise: no table in
// the init for 512 bytes).
func lvmCRC(b []byte) uint32 {
	crc := uint32(0xf597a6cf)
	for _, c := range b {
		crc ^= uint32(c)
		for i := 0; i < 8; i++ {
			crc = crc>>1 ^ 0xedb88320&-(crc&1)
		}
	}
	return crc
}
