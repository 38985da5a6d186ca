// Command romboot is romboot's host tool: check, before flashing, that the
// payload will open your /boot volume and find your kernels.
//
//	romboot luks dump DEVICE|IMAGE [--board x220|qemu] [--ciphers] [--json]
//	romboot luks test DEVICE|IMAGE [--key-file F] [--key-slot N] [--dump-volume-key] [--json]
//	romboot entries DIR [--json]
//	romboot check [--board x220|qemu] [--ciphers] [--json]
//
// Exit status: 0 success; for `luks test` 2 means wrong passphrase; 1 any
// other error.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  romboot luks dump DEVICE|IMAGE [--board x220|qemu] [--ciphers] [--json]
  romboot luks test DEVICE|IMAGE [--key-file F] [--key-slot N] [--dump-volume-key] [--json]
  romboot entries DIR [--json]
  romboot check [--board x220|qemu] [--ciphers] [--json]
`

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) >= 2 && args[0] == "luks" && args[1] == "dump":
		err = luksDump(args[2:], stdout)
	case len(args) >= 2 && args[0] == "luks" && args[1] == "test":
		err = luksTest(args[2:], stdin, stdout, stderr)
	case len(args) >= 1 && args[0] == "entries":
		err = entries(args[1:], stdout)
	case len(args) >= 1 && args[0] == "check":
		err = check(args[1:], "/", stdout)
	case len(args) >= 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprint(stderr, usage)
		return 1
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "romboot:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
