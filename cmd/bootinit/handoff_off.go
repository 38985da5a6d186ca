//go:build nohandoff

package main

import (
	"os"

	"github.com/romboot/romboot/internal/bootentry"
	"github.com/romboot/romboot/internal/kexec"
)

// Built with -tags nohandoff (make HANDOFF=0): no passphrase handoff, and
// none of its code (initrd reading, decompressors) in the init.

type handoffState struct{}

func (b *booter) keepPassphrase(_ []byte, _ string, unlockErr error) {
	if unlockErr == nil && b.opts.handoff == "auto" {
		b.log.Printf("romboot.handoff=auto: this payload was built without the handoff (HANDOFF=0)")
	}
}

func (b *booter) prepareHandoff(*bootentry.Menu) {}

func (b *booter) load(kernel *os.File, initrds []*os.File, e bootentry.Entry) error {
	return kexec.LoadFiles(kernel, initrds, e.Cmdline)
}

func (b *booter) dropHandoff() {}
