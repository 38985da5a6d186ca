// Command targetinit is the init of the test target's initrd: the kernel
// romboot kexecs into runs it. It proves the handover by printing a marker
// and the command line it was given, then powers the machine off.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	_ = os.MkdirAll("/proc", 0o555)
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("targetinit: mount /proc:", err)
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Println("targetinit: reading /proc/cmdline:", err)
	}
	fmt.Println("ROMBOOT-TARGET-OK")
	fmt.Printf("ROMBOOT-TARGET-CMDLINE: %s\n", strings.TrimSpace(string(cmdline)))
	// A second initrd (mkdisk --layout rhel8) adds /romboot-extra: it shows
	// every part of a concatenated initrd was unpacked.
	if extra, err := os.ReadFile("/romboot-extra"); err == nil {
		fmt.Printf("ROMBOOT-TARGET-EXTRA: %s\n", strings.TrimSpace(string(extra)))
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		fmt.Printf("ROMBOOT-TARGET-KERNEL: %s\n", unix.ByteSliceToString(u.Release[:]))
	}
	unix.Sync()
	time.Sleep(100 * time.Millisecond)
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Println("targetinit: power off:", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
