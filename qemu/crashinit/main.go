// Command crashinit is the init of a throw-away QEMU guest that makes a
// /boot whose ext4 journal needs recovery, the way a laptop that loses power
// seconds after a kernel update leaves it: it mounts the disk, installs a
// "new kernel" (copies a kernel and initrd, replaces grub.cfg by rename as
// update-grub does), commits each change to the journal with fsync, and
// then stops the machine at once, before any checkpoint writes the
// metadata back to its home blocks.
//
// Its work list is /crash.list: "copy SRC DST" (paths on the disk) and
// "put FILE DST" (a file of this initramfs onto the disk).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const mnt = "/mnt"

func main() {
	if err := run(); err != nil {
		fmt.Println("CRASHINIT-FAILED:", err)
	} else {
		fmt.Println("CRASHINIT-DONE")
	}
	// No sync, no unmount: the power goes.
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, d := range []string{"/dev", "/proc", mnt} {
		os.MkdirAll(d, 0o755)
	}
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	var err error
	for i := 0; i < 100; i++ {
		if err = unix.Mount("/dev/vda", mnt, "ext4", 0, "data=ordered,commit=600"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mount /dev/vda: %w", err)
	}
	list, err := os.Open("/crash.list")
	if err != nil {
		return err
	}
	defer list.Close()
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		src := f[1]
		if f[0] == "copy" {
			src = filepath.Join(mnt, src)
		}
		if err := install(src, filepath.Join(mnt, f[2])); err != nil {
			return err
		}
		fmt.Printf("crashinit: %s %s -> %s\n", f[0], f[1], f[2])
	}
	return sc.Err()
}

// install writes src to dst through a temporary file, fsyncs it, renames it
// into place and fsyncs the directory: each step is committed to the
// journal, none is checkpointed.
func install(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	out.Close()
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
