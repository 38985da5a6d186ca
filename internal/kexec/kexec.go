// Package kexec loads a kernel, its initrds and command line with
// kexec_file_load and jumps into it. Several initrds are concatenated in
// memory (memfd), never through temporary files.
package kexec

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Load loads kernel with the initrds (in order) and cmdline for a later
// Exec. The files are read now, so the filesystem they live on may be
// unmounted afterwards.
func Load(kernel string, initrds []string, cmdline string) error {
	kf, err := os.Open(kernel)
	if err != nil {
		return fmt.Errorf("opening kernel: %w", err)
	}
	defer kf.Close()
	files, err := openAll(initrds)
	defer closeAll(files)
	if err != nil {
		return err
	}
	return LoadFiles(kf, files, cmdline)
}

// openAll opens the initrds in order, stopping at the first failure; the
// caller closes what was opened.
func openAll(paths []string) ([]*os.File, error) {
	var files []*os.File
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return files, fmt.Errorf("opening initrd: %w", err)
		}
		files = append(files, f)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// LoadFiles is Load for files the caller opened (for example inside an
// os.Root, so no path can lead outside /boot).
func LoadFiles(kernel *os.File, initrds []*os.File, cmdline string) error {
	initrdFd := -1
	flags := 0
	switch len(initrds) {
	case 0:
		flags |= unix.KEXEC_FILE_NO_INITRAMFS
	case 1:
		initrdFd = int(initrds[0].Fd())
	default:
		f, err := ConcatFiles(initrds)
		if err != nil {
			return err
		}
		defer f.Close()
		initrdFd = int(f.Fd())
	}
	if err := unix.KexecFileLoad(int(kernel.Fd()), initrdFd, cmdline, flags); err != nil {
		return fmt.Errorf("kexec_file_load(%s, %d initrd(s), %d-byte cmdline): %w", kernel.Name(), len(initrds), len(cmdline), err)
	}
	return nil
}

// Concat copies files, in order, into one memory-backed file positioned at
// its start. The kernel accepts concatenated cpio archives as one initrd,
// but it looks for the next uncompressed cpio header only at a 4-byte
// aligned offset (init/initramfs.c skips zero bytes four at a time), so
// every part but the last is padded with zero bytes to a multiple of 4, as
// GRUB's initrd loader does: an early-microcode cpio of odd length followed
// by the main initramfs then still unpacks.
func Concat(files []string) (*os.File, error) {
	in, err := openAll(files)
	defer closeAll(in)
	if err != nil {
		return nil, err
	}
	return ConcatFiles(in)
}

// ConcatFiles is Concat for files the caller opened.
func ConcatFiles(files []*os.File) (*os.File, error) {
	fd, err := unix.MemfdCreate("initrd", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	out := os.NewFile(uintptr(fd), "memfd:initrd")
	for i, in := range files {
		n, err := io.Copy(out, in)
		if err == nil && n%4 != 0 && i < len(files)-1 {
			_, err = out.Write(make([]byte, 4-n%4))
		}
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("copying initrd %s: %w", in.Name(), err)
		}
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// Exec jumps into the loaded kernel. It returns only on failure.
func Exec() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC): %w", err)
	}
	return nil
}
