// Command bootinit is romboot's PID 1: it unlocks the LUKS-encrypted /boot,
// picks the kernel the distro installed and kexecs into it. Every failure
// ends in a clear message and the recovery menu; it never exits.
package main

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/bootlog"
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
	earlyinit.IgnoreSignals()
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
	con := &console.Console{In: os.Stdin, Out: os.Stdout}
	if err := con.HideTyping(); err != nil {
		log.Printf("console: %v", err)
	}
	b := &booter{log: log, con: con, state: newState()}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		log.Printf("reading /proc/cmdline: %v (using the defaults)", err)
	}
	b.setOptions(string(raw))
	if err := earlyinit.HugePages(b.opts.thp); err != nil {
		log.Printf("transparent huge pages: %v", err)
	}
	if b.opts.diag != "" {
		if err := b.startDiag(b.opts.diag); err != nil {
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
		return "Check the disk is connected, or name the partition with romboot.boot=UUID=... on the payload's command line."
	case strings.Contains(s, "wrong passphrase"):
		return "Choose r to try again."
	case strings.Contains(s, "memory is available"):
		return "A keyslot needs more memory than this machine has free; the passphrase of another keyslot may open it (all are tried unless romboot.keyslot= names one: o in this menu edits it)."
	case strings.Contains(s, "boot menu left"):
		return "Choose e to pick the entry, k to edit its command line, r to boot again."
	case strings.Contains(s, "requirements"):
		return "This volume cannot be opened by a boot loader until the operation is finished."
	}
	return ""
}
