package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/romboot/romboot/internal/console"
	"github.com/romboot/romboot/internal/luks"
)

// openDevice opens an image file or block device read-only and returns its
// size.
func openDevice(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	size := st.Size()
	if st.Mode()&os.ModeDevice != 0 {
		var n uint64
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n)))
		if errno != 0 {
			err := error(errno)
			f.Close()
			return nil, 0, fmt.Errorf("BLKGETSIZE64 %s: %w", path, err)
		}
		size = int64(n)
	}
	return f, size, nil
}

// openHeader opens a device or image and reads its LUKS header (for dump:
// also one romboot cannot unlock). The caller closes the file (unlocking
// reads key material through it).
func openHeader(path string, dump bool) (*os.File, *luks.Header, error) {
	f, size, err := openDevice(path)
	if err != nil {
		return nil, nil, err
	}
	open := luks.Open
	if dump {
		open = luks.Inspect
	}
	h, err := open(f, size)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, h, nil
}

// dump is the JSON shape of `luks dump`: stable field names, no secrets.
type dump struct {
	Path          string        `json:"path"`
	Version       int           `json:"version"`
	UUID          string        `json:"uuid"`
	Label         string        `json:"label,omitempty"`
	Subsystem     string        `json:"subsystem,omitempty"`
	Cipher        string        `json:"cipher"`
	KeyBits       int           `json:"key_bits"`
	SectorSize    int           `json:"sector_size"`
	PayloadOffset int64         `json:"payload_offset"`
	PayloadSize   uint64        `json:"payload_size,omitempty"`
	Flags         []string      `json:"flags,omitempty"`
	HeaderCopy    string        `json:"header_copy,omitempty"`
	Keyslots      []keyslotDump `json:"keyslots"`
	Warnings      []string      `json:"warnings,omitempty"`
	Supported     bool          `json:"supported"`
	Problems      []string      `json:"problems,omitempty"`
}

type keyslotDump struct {
	Index     int    `json:"index"`
	Priority  int    `json:"priority"`
	Cipher    string `json:"cipher"`
	KeyBits   int    `json:"key_bits"`
	KDF       string `json:"kdf"`
	Hash      string `json:"hash,omitempty"`
	Iter      uint32 `json:"iterations"`
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	Threads   uint32 `json:"threads,omitempty"`
	AFHash    string `json:"af_hash"`
	Bound     bool   `json:"bound_to_segment"`
	Problem   string `json:"problem,omitempty"`
}

func newDump(path string, h *luks.Header, k payloadKernel) dump {
	d := dump{
		Path: path, Version: h.Version, UUID: h.UUID, Label: h.Label, Subsystem: h.Subsystem,
		Cipher: h.Cipher, KeyBits: h.KeyBytes * 8, SectorSize: h.SectorSize,
		PayloadOffset: h.PayloadOffset, PayloadSize: h.PayloadSize, Flags: h.Flags,
		HeaderCopy: h.HeaderCopy, Warnings: h.Warnings, Keyslots: []keyslotDump{},
	}
	for _, k := range h.Keyslots {
		d.Keyslots = append(d.Keyslots, keyslotDump{
			Index: k.Index, Priority: k.Priority, Cipher: k.Cipher, KeyBits: k.KeyBytes * 8,
			KDF: k.KDF.Type, Hash: k.KDF.Hash, Iter: k.KDF.Iterations, MemoryKiB: k.KDF.MemoryKiB,
			Threads: k.KDF.Threads, AFHash: k.AFHash, Bound: k.Bound, Problem: h.KeyslotProblem(k, nil),
		})
	}
	d.Problems = supportProblems(h, k)
	d.Supported = len(d.Problems) == 0
	return d
}

// payloadKernel is what the payload kernel of a board can map
// (kernel-config/: base.config everywhere; ciphers.config on qemu, and on
// the x220 only when built with CIPHERS=1).
type payloadKernel struct {
	board   string
	ciphers bool
}

func (k payloadKernel) cipher(name string) bool {
	return name == "aes" || ((name == "twofish" || name == "serpent") && (k.ciphers || k.board == "qemu"))
}

// payloadModes: XTS (which brings ECB), CBC, ESSIV with SHA-256.
var payloadModes = map[string]bool{"xts-plain64": true, "xts-plain": true, "cbc-essiv:sha256": true, "cbc-plain64": true, "cbc-plain": true, "ecb": true}

// supportProblems says what would stop the payload from opening the volume:
// the header's own problems, a data cipher the board's kernel lacks, no
// keyslot the unlocker can use.
func supportProblems(h *luks.Header, k payloadKernel) []string {
	p := append([]string(nil), h.Problems...)
	name, mode, _ := strings.Cut(h.Cipher, "-")
	switch {
	case !k.cipher(name) && (name == "twofish" || name == "serpent"):
		p = append(p, fmt.Sprintf("data cipher %s needs a %s payload built with CIPHERS=1", h.Cipher, k.board))
	case !k.cipher(name) || !payloadModes[mode]:
		p = append(p, fmt.Sprintf("data cipher %s is not built into the payload kernel", h.Cipher))
	}
	usable := 0
	for _, k := range h.Keyslots {
		if h.KeyslotProblem(k, nil) == "" && k.Priority != 0 {
			usable++
		}
	}
	if usable == 0 {
		p = append(p, "no usable keyslot")
	}
	return p
}

func printDump(w io.Writer, d dump) {
	fmt.Fprintf(w, "LUKS header of %s\n", d.Path)
	fmt.Fprintf(w, "Version:        %d\n", d.Version)
	fmt.Fprintf(w, "UUID:           %s\n", d.UUID)
	if d.Label != "" {
		fmt.Fprintf(w, "Label:          %s\n", d.Label)
	}
	fmt.Fprintf(w, "Cipher:         %s (%d-bit key)\n", d.Cipher, d.KeyBits)
	fmt.Fprintf(w, "Sector size:    %d\n", d.SectorSize)
	fmt.Fprintf(w, "Payload offset: %d bytes\n", d.PayloadOffset)
	if d.PayloadSize > 0 {
		fmt.Fprintf(w, "Payload size:   %d bytes\n", d.PayloadSize)
	}
	if len(d.Flags) > 0 {
		fmt.Fprintf(w, "Flags:          %s\n", strings.Join(d.Flags, " "))
	}
	if d.HeaderCopy != "" {
		fmt.Fprintf(w, "Header copy:    %s\n", d.HeaderCopy)
	}
	fmt.Fprintln(w, "Keyslots:")
	for _, k := range d.Keyslots {
		cost := fmt.Sprintf("%s-%s, %d iterations", k.KDF, k.Hash, k.Iter)
		if k.KDF != "pbkdf2" {
			cost = fmt.Sprintf("%s, %d KiB, %d passes, %d threads", k.KDF, k.MemoryKiB, k.Iter, k.Threads)
		}
		fmt.Fprintf(w, "  %d: %s (%d-bit), %s, priority %d", k.Index, k.Cipher, k.KeyBits, cost, k.Priority)
		if k.Problem != "" {
			fmt.Fprintf(w, ", unusable: %s", k.Problem)
		}
		fmt.Fprintln(w)
	}
	for _, x := range d.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", x)
	}
	if d.Supported {
		fmt.Fprintln(w, "romboot: supported")

	} else {
		fmt.Fprintf(w, "romboot: NOT supported: %s\n", strings.Join(d.Problems, "; "))
	}
}

func luksDump(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("luks dump", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON output")
	k := kernelFlags(fs)
	path, err := parseWithPath(fs, args)
	if err != nil {
		return err
	}
	f, h, err := openHeader(path, true)
	if err != nil {
		return err
	}
	f.Close()
	if err := k.valid(); err != nil {
		return err
	}
	d := newDump(path, h, *k)
	if *asJSON {
		return writeJSON(stdout, d)
	}
	printDump(stdout, d)
	return nil
}

// kernelFlags adds --board and --ciphers: the payload the verdict is for.
func kernelFlags(fs *flag.FlagSet) *payloadKernel {
	k := &payloadKernel{}
	fs.StringVar(&k.board, "board", "x220", "judge support for this board's payload (x220 or qemu)")
	fs.BoolVar(&k.ciphers, "ciphers", false, "the payload is built with CIPHERS=1 (twofish, serpent)")
	return k
}

func (k payloadKernel) valid() error {
	if k.board != "x220" && k.board != "qemu" {
		return fmt.Errorf("unknown board %q (x220 or qemu)", k.board)
	}
	return nil
}

// parseWithPath parses flags that may come before or after one positional
// argument.
func parseWithPath(fs *flag.FlagSet, args []string) (string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("want one DEVICE or IMAGE, got %d", len(pos))
	}
	return pos[0], nil
}

func luksTest(args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("luks test", flag.ContinueOnError)
	keyFile := fs.String("key-file", "", "read the passphrase from this file (- for stdin) instead of the terminal")
	slot := fs.Int("key-slot", -1, "try only this keyslot")
	dumpKey := fs.Bool("dump-volume-key", false, "print the volume key in hex (keep it secret)")
	asJSON := fs.Bool("json", false, "JSON output")
	path, err := parseWithPath(fs, args)
	if err != nil {
		return err
	}
	f, h, err := openHeader(path, false)
	if err != nil {
		return err
	}
	defer f.Close()
	pass, err := readPass(*keyFile, path, stdin, stderr)
	if err != nil {
		return err
	}
	v, err := h.Unlock(pass, luks.UnlockOptions{Keyslot: *slot, BeforeKDF: func(k luks.Keyslot) {
		if !*asJSON {
			fmt.Fprintf(stderr, "Trying keyslot %d (%s)…\n", k.Index, k.KDF)
		}
	}})
	luks.Wipe(pass)
	if errors.Is(err, luks.ErrWrongPassphrase) {
		return &exitError{code: 2, err: fmt.Errorf("%s: no keyslot opened with this passphrase", path)}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer v.Wipe()
	res := struct {
		Path      string `json:"path"`
		Keyslot   int    `json:"keyslot"`
		VolumeKey string `json:"volume_key,omitempty"`
	}{Path: path, Keyslot: v.Keyslot}
	if *dumpKey {
		res.VolumeKey = hex.EncodeToString(v.Key)
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s: keyslot %d opened\n", path, v.Keyslot)
	if *dumpKey {
		fmt.Fprintf(stdout, "Volume key: %s\n", res.VolumeKey)
	}
	return nil
}

// readPass reads the passphrase from a key file (whole file, as cryptsetup
// does), stdin ("-"), or the terminal with echo off.
func readPass(keyFile, path string, stdin *os.File, stderr io.Writer) ([]byte, error) {
	switch keyFile {
	case "":
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("no terminal for the passphrase (use --key-file): %w", err)
		}
		defer tty.Close()
		c := &console.Console{In: tty, Out: tty}
		return c.ReadPassphrase(fmt.Sprintf("Enter passphrase for %s: ", path))
	case "-":
		return io.ReadAll(stdin)
	}
	return os.ReadFile(keyFile)
}
