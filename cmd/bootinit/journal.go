package main

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/dm"
)

// ext4 superblock facts (the kernel's fs/ext4/ext4.h).
const (
	ext4SuperOffset   = 1024
	ext4Magic         = 0xEF53
	ext4IncompatRecov = 0x4 // EXT4_FEATURE_INCOMPAT_RECOVER: the journal needs replaying
)

// ext4NeedsRecovery reads the superblock of r: whether it is ext4 (or
// ext2/3) and whether its journal holds transactions not yet written back.
func ext4NeedsRecovery(r io.ReaderAt) (isExt, dirty bool) {
	var sb [0x64]byte
	if _, err := r.ReadAt(sb[:], ext4SuperOffset); err != nil {
		return false, false
	}
	// Little-endian fields (encoding/binary would cost the init 4 KB).
	if uint16(sb[0x38])|uint16(sb[0x39])<<8 != ext4Magic {
		return false, false
	}
	return true, sb[0x60]&ext4IncompatRecov != 0 // the flag is in the low byte
}

const (
	replayName = "romboot-boot-replay"
	ramDisk    = "/dev/ram0"
)

// replayInRAM maps a snapshot of the read-only volume dev whose writes land
// in the RAM disk, so ext4 can replay its journal there: the disk is never
// written, and the files read are the ones the crash left committed.
func (b *booter) replayInRAM(dev string) (string, error) {
	var st, rst unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", err
	}
	if err := unix.Stat(ramDisk, &rst); err != nil {
		return "", fmt.Errorf("%s: %w (is CONFIG_BLK_DEV_RAM built in?)", ramDisk, err)
	}
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	size, err := f.Seek(0, io.SeekEnd)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("size of %s: %w", dev, err)
	}
	origin := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	cow := fmt.Sprintf("%d:%d", unix.Major(rst.Rdev), unix.Minor(rst.Rdev))
	d, err := b.ctl.Create(replayName, "", false, dm.Snapshot(uint64(size)/512, origin, cow, 8))
	if err != nil {
		return "", fmt.Errorf("snapshot in RAM: %w (is CONFIG_DM_SNAPSHOT built in?)", err)
	}
	b.snap = true
	return dm.WaitNode(d, 5*time.Second)
}

// freeRAMDisk gives the RAM disk's pages back.
func freeRAMDisk() {
	f, err := os.Open(ramDisk)
	if err != nil {
		return
	}
	defer f.Close()
	unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
}
