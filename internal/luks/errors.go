package luks

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
)

// Errors a caller can tell apart with errors.Is or errors.As.
var (
	// ErrNotLUKS: the device does not start with a LUKS magic.
	ErrNotLUKS = errors.New("not a LUKS device")
	// ErrWrongPassphrase: no keyslot opened with the passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNoKeyslot: the header has no usable keyslot (or not the one asked for).
	ErrNoKeyslot = errors.New("no usable keyslot")
)

// UnsupportedVersionError is returned for a LUKS magic with a version other than 1 or 2.
type UnsupportedVersionError struct{ Version uint16 }

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("unsupported LUKS version %d", e.Version)
}

// CorruptHeaderError says which header copy is damaged and how.
type CorruptHeaderError struct {
	Copy   string // "LUKS1", "primary", "secondary", "both" or "metadata"
	Reason string
}

func (e *CorruptHeaderError) Error() string {
	return fmt.Sprintf("corrupt LUKS header (%s): %s", e.Copy, e.Reason)
}

func corrupt(copy, format string, args ...any) error {
	return &CorruptHeaderError{Copy: copy, Reason: fmt.Sprintf(format, args...)}
}

// UnsupportedCipherError is returned when a keyslot uses a cipher or mode this
// package cannot decrypt; it is distinct from a wrong passphrase.
type UnsupportedCipherError struct{ Spec string }

func (e *UnsupportedCipherError) Error() string {
	return fmt.Sprintf("unsupported cipher %s", e.Spec)
}

// UnsupportedError covers header features romboot refuses on purpose, such as
// hashes it does not know or integrity-protected segments.
type UnsupportedError struct{ What string }

func (e *UnsupportedError) Error() string { return "unsupported LUKS feature: " + e.What }

// RequirementsError is returned when a LUKS2 header lists mandatory
// requirements (for example an online reencryption in progress).
type RequirementsError struct{ Requirements []string }

func (e *RequirementsError) Error() string {
	return fmt.Sprintf("LUKS2 header has mandatory requirements %q (e.g. a reencryption in progress): finish it with cryptsetup on another machine", e.Requirements)
}

// KDFLimitError is returned when a keyslot asks for more KDF cost than is
// allowed or than the machine has memory for.
type KDFLimitError struct {
	Reason   string
	NoMemory bool // refused for lack of memory (another machine could try it)
}

func (e *KDFLimitError) Error() string { return "keyslot KDF cost refused: " + e.Reason }

// IOError wraps a read failure of the device.
type IOError struct {
	Op  string
	Err error
}

func (e *IOError) Error() string { return fmt.Sprintf("reading %s: %v", e.Op, e.Err) }
func (e *IOError) Unwrap() error { return e.Err }

// AmbiguousError is returned for a LUKS2 device with one damaged header copy
// that also carries another format's signature (an LVM PV label or a file
// system written over it): cryptsetup refuses to use, and would not repair,
// such a device, and so does romboot.
type AmbiguousError struct {
	Signature string // e.g. "LVM2_member"
	Copy      string // the damaged header copy
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("device carries a %s signature and its %s LUKS2 header is damaged: ambiguous, refused (check it with cryptsetup repair on another machine)", e.Signature, e.Copy)
}
