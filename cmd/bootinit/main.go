// Command bootinit is romboot's PID 1: it unlocks the LUKS-encrypted /boot,
// picks the kernel the distro installed and kexecs into it. Every failure
// ends in a clear message and the recovery menu; it never exits.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/cmdline"
	"github.com/romboot/romboot/internal/console"
	"github.com/romboot/romboot/internal/earlyinit"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "bootinit is romboot's init and runs only as PID 1 (in the payload's initramfs)")
		os.Exit(2)
	}
	debug.SetTraceback("single")
	mountErr := earlyinit.MountAll()
	consoleErr := earlyinit.Console()
	log := bootlog.New(os.Stdout)
	log.Printf("romboot %s starting", version)
	if mountErr != nil {
		log.Printf("early mounts: %v", mountErr)
	}
	if consoleErr != nil {
		log.Printf("console: %v", consoleErr)
	}
	earlyinit.Reap(log.Printf)
	if err := earlyinit.HugePages(thpMode()); err != nil {
		log.Printf("transparent huge pages: %v", err)
	}
	con := &console.Console{In: os.Stdin, Out: os.Stdout}
	b := &booter{log: log, con: con, state: newState()}
	if addr := diagAddr(); addr != "" {
		if err := b.startDiag(addr); err != nil {
			log.Printf("%v", err)
		}
	}
	for {
		b.bootOrRecover()
	}
}

// bootOrRecover runs one boot; when it fails (the kexec never returns), it
// says why and shows the recovery menu. Nothing in it can end PID 1.
func (b *booter) bootOrRecover() {
	defer func() {
		if r := recover(); r != nil {
			b.log.Printf("recovered from panic: %v", r)
			time.Sleep(time.Second)
		}
	}()
	err := b.attempt()
	if err == nil {
		err = errors.New("the kexec did not happen")
	}
	b.state.Set("error: " + err.Error())
	fmt.Fprintf(os.Stdout, "\nromboot: %v\n", err)
	if hint := hintFor(err); hint != "" {
		fmt.Fprintf(os.Stdout, "romboot: %s\n", hint)
	}
	recovery(b)
}

// attempt runs one boot, turning a panic into an error.
func (b *booter) attempt() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (please report): %v", r)
			b.log.Printf("panic: %v\n%s", r, debug.Stack())
		}
		b.cleanup()
	}()
	return b.boot()
}

// recovery shows the recovery menu until the user retries.
func recovery(b *booter) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Printf("recovery menu recovered from panic: %v", r)
			time.Sleep(time.Second)
		}
	}()
	for {
		k, err := b.con.Menu("\nromboot recovery menu:", []console.MenuItem{
			{Key: 'r', Label: "retry the boot"},
			{Key: 'd', Label: diagLabel()},
			{Key: 'b', Label: "reboot"},
			{Key: 'p', Label: "power off"},
		})
		if err != nil {
			// No console input (EOF): wait instead of spinning, then offer again.
			b.log.Printf("console: %v", err)
			time.Sleep(5 * time.Second)
			continue
		}
		switch k {
		case 'r':
			return
		case 'd':
			showDiagnostics(b)
		case 'b':
			b.log.Printf("rebooting")
			if err := earlyinit.Restart(); err != nil {
				b.log.Printf("reboot: %v", err)
			}
		case 'p':
			b.log.Printf("powering off")
			if err := earlyinit.PowerOff(); err != nil {
				b.log.Printf("power off: %v", err)
			}
		}
	}
}

func showDiagnostics(b *booter) {
	out := b.con.Out
	fmt.Fprintf(out, "\n== romboot %s diagnostics ==\n", version)
	fmt.Fprint(out, b.log.Timeline())
	fmt.Fprintln(out, "block devices:")
	devs, err := blockdev.List("/sys", "/dev")
	if err != nil {
		fmt.Fprintf(out, "  %v\n", err)
	}
	for _, d := range devs {
		if _, _, err := probe(&d); err != nil {
			d.Type += " (" + err.Error() + ")"
		}
		fmt.Fprintf(out, "  %-8s %4d:%-4d %10d MiB  %-12s %s %s\n", d.Name, d.Major, d.Minor, d.Size>>20, d.Type, d.UUID, d.PartLabel)
	}
	fmt.Fprintln(out, "log:")
	for _, l := range b.log.Lines() {
		fmt.Fprintln(out, "  "+l)
	}
	addr := diagAddr()
	if addr == "" {
		addr = defaultDiagAddr
	}
	if err := b.startDiag(addr); err != nil {
		fmt.Fprintf(out, "%v\n", err)
		return
	}
	fmt.Fprintf(out, "Diagnostics are served at %s: try curl http://<address>/\n", b.diagURL())
}

// thpMode is romboot.thp= from the command line, "always" by default.
func thpMode() string {
	if v := cmdlineValue("romboot.thp"); v != "" {
		return v
	}
	return "always"
}

// cmdlineValue returns a parameter of the kernel command line, "" when absent.
func cmdlineValue(key string) string {
	raw, _ := os.ReadFile("/proc/cmdline")
	v, _ := cmdline.Parse(string(raw)).Get(key)
	return v
}

func diagLabel() string {
	if diagBuilt {
		return "diagnostics (log, timeline, block devices; starts the HTTP server)"
	}
	return "diagnostics (log, timeline, block devices)"
}

// hintFor says what to do about a failure, when there is something to say.
func hintFor(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "no LUKS"):
		return "Check the disk is connected, or name the partition with romboot.boot=UUID=… on the payload's command line."
	case strings.Contains(s, "wrong passphrase"):
		return "Choose r to try again."
	case strings.Contains(s, "requirements"):
		return "This volume cannot be opened by a boot loader until the operation is finished."
	}
	return ""
}
