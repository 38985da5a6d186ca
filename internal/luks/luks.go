package luks

import (
	"bytes"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"strconv"
	"strings"
)

// Magic strings at offset 0 (LUKS1 and LUKS2 primary) and of the LUKS2
// secondary header.
var (
	magic1 = []byte("LUKS\xba\xbe")
	magic2 = []byte("SKUL\xba\xbe")
)

// Bounds on KDF costs a header may ask for (cryptsetup's own limits where it
// has them); a hostile header must not be able to hang or exhaust the init.
const (
	minArgonMemoryKiB = 32
	maxArgonMemoryKiB = 4 * 1024 * 1024
	maxArgonThreads   = 4
	maxArgonTime      = 1000
	maxPBKDF2Iter     = 200_000_000
)

// Header is a parsed LUKS header: what Dump shows and what Unlock needs.
// It holds no secret.
type Header struct {
	Version       int
	UUID          string
	Label         string // LUKS2 only
	Subsystem     string // LUKS2 only
	Cipher        string // data cipher as dm-crypt takes it, e.g. aes-xts-plain64
	KeyBytes      int    // volume key size in bytes
	SectorSize    int    // data segment sector size
	PayloadOffset int64  // bytes from the start of the device
	PayloadSize   uint64 // bytes; 0 means to the end of the device
	IVTweak       uint64 // LUKS2 segment iv_tweak
	Flags         []string
	Keyslots      []Keyslot
	HeaderCopy    string   // LUKS2: which copy was used ("primary" or "secondary")
	Warnings      []string // non-fatal findings, such as a damaged header copy
	// Problems say why romboot will not unlock or map this volume although
	// its metadata is valid (Inspect returns such headers, Open refuses
	// them with the first problem's error).
	Problems []string

	unusable error

	r      io.ReaderAt
	v1     *luks1Header
	v2     *luks2Metadata
	digest []digestCheck // LUKS2: digests bound to the data segment
}

// Keyslot describes one active keyslot.
type Keyslot struct {
	Index    int
	Priority int    // LUKS2: 0 ignore, 1 normal, 2 prefer; LUKS1: 1
	Cipher   string // keyslot area encryption, e.g. aes-xts-plain64
	KeyBytes int    // keyslot area key size
	KDF      KDF
	AFHash   string
	Stripes  int
	Offset   int64 // area offset, bytes
	Length   int64 // bytes read from the area
	Bound    bool  // a digest binds it to the data segment (LUKS1: always)
	Problem  string
	salt     []byte
}

// KDF is a keyslot's key-derivation function and its cost.
type KDF struct {
	Type       string // pbkdf2, argon2i, argon2id
	Hash       string // pbkdf2 only
	Iterations uint32 // pbkdf2 iterations or argon2 passes
	MemoryKiB  uint32 // argon2 only
	Threads    uint32 // argon2 only
}

// String describes the cost for people: "argon2id, 1 GiB, 4 passes".
func (k KDF) String() string {
	if k.Type == "pbkdf2" {
		return fmt.Sprintf("pbkdf2-%s, %d iterations", k.Hash, k.Iterations)
	}
	passes := "passes"
	if k.Iterations == 1 {
		passes = "pass"
	}
	return fmt.Sprintf("%s, %s, %d %s", k.Type, kibString(k.MemoryKiB), k.Iterations, passes)
}

func kibString(k uint32) string {
	switch {
	case k >= 1<<20 && k%(1<<20) == 0:
		return strconv.Itoa(int(k>>20)) + " GiB"
	case k >= 1<<10 && k%(1<<10) == 0:
		return strconv.Itoa(int(k>>10)) + " MiB"
	}
	return strconv.Itoa(int(k)) + " KiB"
}

// refuse records why the volume cannot be unlocked or mapped.
func (h *Header) refuse(err error) {
	if h.unusable == nil {
		h.unusable = err
	}
	h.Problems = append(h.Problems, err.Error())
}

// Unusable returns why the volume cannot be unlocked or mapped here, or nil.
func (h *Header) Unusable() error { return h.unusable }

// Open reads and validates the LUKS header of a device of size bytes and
// refuses a volume romboot cannot unlock and map (mandatory requirements,
// integrity, a detached header, ...). It never writes.
func Open(r io.ReaderAt, size int64) (*Header, error) {
	h, err := Inspect(r, size)
	if err != nil {
		return nil, err
	}
	if h.unusable != nil {
		return nil, h.unusable
	}
	return h, nil
}

// Inspect reads and validates the LUKS header of a device of size bytes,
// as cryptsetup does when it loads one: a header cryptsetup refuses is an
// error; a valid one is returned even when romboot cannot open the volume
// (see Problems). It never writes.
func Inspect(r io.ReaderAt, size int64) (*Header, error) {
	var first [8]byte
	if err := readFull(r, first[:], 0, "LUKS magic"); err != nil {
		return nil, err
	}
	if !bytes.Equal(first[:6], magic1) {
		// A damaged primary LUKS2 header may still have a good secondary;
		// with a secondary magic but no usable copy, say why rather than
		// "not LUKS".
		h, err := openLUKS2(r, size)
		if err == nil || hasSecondaryMagic(r) {
			return h, err
		}
		return nil, ErrNotLUKS
	}
	switch v := uint16(first[6])<<8 | uint16(first[7]); v {
	case 1:
		return openLUKS1(r, size)
	case 2:
		return openLUKS2(r, size)
	default:
		return nil, &UnsupportedVersionError{Version: v}
	}
}

// hasSecondaryMagic reports whether a LUKS2 secondary header magic sits at
// one of its standard offsets.
func hasSecondaryMagic(r io.ReaderAt) bool {
	var m [6]byte
	for o := int64(luks2MinHdr); o <= luks2MaxHdr; o *= 2 {
		if n, _ := r.ReadAt(m[:], o); n == 6 && bytes.Equal(m[:], magic2) {
			return true
		}
	}
	return false
}

// HasSignature reports whether a device carries a LUKS signature: the
// magic at its start, or a LUKS2 secondary header's where the primary is
// gone. A device with one is LUKS even when its header is refused.
func HasSignature(r io.ReaderAt) bool {
	var m [6]byte
	if n, _ := r.ReadAt(m[:], 0); n == 6 && IsLUKS(m[:]) {
		return true
	}
	return hasSecondaryMagic(r)
}

// IsLUKS reports whether the first bytes carry the LUKS magic.
func IsLUKS(first []byte) bool {
	return len(first) >= 6 && bytes.Equal(first[:6], magic1)
}

func readFull(r io.ReaderAt, buf []byte, off int64, what string) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &IOError{Op: what, Err: err}
}

// UnlockOptions tune Unlock.
type UnlockOptions struct {
	// Keyslot, when >= 0, tries only that keyslot (even one of priority 0).
	Keyslot int
	// BeforeKDF is called before each keyslot's KDF runs, so a caller can say
	// "Unlocking (argon2id, 1 GiB, 4 passes)…".
	BeforeKDF func(Keyslot)
	// MemAvailable returns the bytes the KDF may use; nil reads
	// /proc/meminfo. A keyslot asking for more is refused, not attempted.
	MemAvailable func() (uint64, error)
}

// Volume is an unlocked volume: the key and what dm-crypt needs to map it.
type Volume struct {
	Header  *Header
	Keyslot int
	Key     []byte
}

// Wipe clears the volume key.
func (v *Volume) Wipe() {
	if v != nil {
		wipe(v.Key)
	}
}

// Unlock tries the passphrase on the keyslots in priority order and returns
// the volume key. Wrong passphrase and unsupported keyslots are told apart.
func (h *Header) Unlock(pass []byte, opt UnlockOptions) (*Volume, error) {
	if h.unusable != nil {
		return nil, h.unusable
	}
	order := h.slotOrder(opt.Keyslot)
	if len(order) == 0 {
		err := ErrNoKeyslot
		if opt.Keyslot >= 0 {
			err = fmt.Errorf("keyslot %d: %w", opt.Keyslot, ErrNoKeyslot)
		}
		// Say why the first keyslot is out (unbound, damaged, unsupported).
		for _, ks := range h.Keyslots {
			if opt.Keyslot >= 0 && ks.Index != opt.Keyslot {
				continue
			}
			p := ks.Problem
			if !ks.Bound {
				p = "not bound to the data segment"
			}
			if p != "" {
				return nil, fmt.Errorf("%w (keyslot %d: %s)", err, ks.Index, p)
			}
		}
		return nil, err
	}
	var firstErr error
	var skipped []string // keyslots not tried for lack of memory
	tried := 0
	for _, ks := range order {
		if err := h.checkKDF(ks, opt.MemAvailable); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keyslot %d: %w", ks.Index, err)
			}
			if le, ok := err.(*KDFLimitError); ok && le.NoMemory {
				skipped = append(skipped, fmt.Sprintf("keyslot %d not tried: %v", ks.Index, err))
			}
			continue
		}
		if err := checkCipher(ks); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keyslot %d: %w", ks.Index, err)
			}
			continue
		}
		if opt.BeforeKDF != nil {
			opt.BeforeKDF(ks)
		}
		key, err := h.recoverKey(ks, pass)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keyslot %d: %w", ks.Index, err)
			}
			continue
		}
		tried++
		if h.verifyKey(ks, key) {
			return &Volume{Header: h, Keyslot: ks.Index, Key: key}, nil
		}
		wipe(key)
	}
	if tried > 0 && len(skipped) > 0 {
		// Wrong for the keyslots tried; the others were never asked.
		return nil, fmt.Errorf("%w for the keyslots tried (%s)", ErrWrongPassphrase, strings.Join(skipped, "; "))
	}
	if tried > 0 || firstErr == nil {
		return nil, ErrWrongPassphrase
	}
	return nil, firstErr
}

// slotOrder lists the keyslots to try: priority 2 first, then normal ones,
// each in index order; priority 0 only when asked for by number.
func (h *Header) slotOrder(want int) []Keyslot {
	var pref, normal []Keyslot
	for _, ks := range h.Keyslots {
		if !ks.Bound || ks.Problem != "" {
			continue
		}
		if want >= 0 {
			if ks.Index == want {
				return []Keyslot{ks}
			}
			continue
		}
		switch ks.Priority {
		case 2:
			pref = append(pref, ks)
		case 0:
		default:
			normal = append(normal, ks)
		}
	}
	return append(pref, normal...)
}

// checkKDF refuses costs beyond the bounds or the memory at hand.
func (h *Header) checkKDF(ks Keyslot, memAvail func() (uint64, error)) error {
	k := ks.KDF
	switch k.Type {
	case "pbkdf2":
		if k.Iterations < 1 || k.Iterations > maxPBKDF2Iter {
			return &KDFLimitError{Reason: fmt.Sprintf("pbkdf2 iterations %d outside 1..%d", k.Iterations, maxPBKDF2Iter)}
		}
		return nil
	case "argon2i", "argon2id":
	default:
		return &UnsupportedError{What: "KDF " + k.Type}
	}
	if k.MemoryKiB < minArgonMemoryKiB || k.MemoryKiB > maxArgonMemoryKiB {
		return &KDFLimitError{Reason: fmt.Sprintf("argon2 memory %d KiB outside %d..%d", k.MemoryKiB, minArgonMemoryKiB, maxArgonMemoryKiB)}
	}
	if k.Threads < 1 || k.Threads > maxArgonThreads {
		return &KDFLimitError{Reason: fmt.Sprintf("argon2 threads %d outside 1..%d", k.Threads, maxArgonThreads)}
	}
	if k.Iterations < 1 || k.Iterations > maxArgonTime {
		return &KDFLimitError{Reason: fmt.Sprintf("argon2 passes %d outside 1..%d", k.Iterations, maxArgonTime)}
	}
	if memAvail == nil {
		memAvail = MemAvailable
	}
	avail, err := memAvail()
	if err != nil {
		return nil // cannot tell: let the KDF try
	}
	need := uint64(k.MemoryKiB)*1024 + 16<<20
	if need > avail {
		return &KDFLimitError{Reason: fmt.Sprintf("argon2 needs %s but only %d MiB of memory is available", kibString(k.MemoryKiB), avail>>20), NoMemory: true}
	}
	return nil
}

func (h *Header) recoverKey(ks Keyslot, pass []byte) ([]byte, error) {
	if h.v1 != nil {
		return h.v1.recoverKey(h, ks, pass)
	}
	return h.v2.recoverKey(h, ks, pass)
}

func (h *Header) verifyKey(ks Keyslot, key []byte) bool {
	if h.v1 != nil {
		return h.v1.verifyKey(key)
	}
	for _, d := range h.digest {
		if d.binds(ks.Index) && d.verify(key) {
			return true
		}
	}
	return false
}

// KeyslotProblem says why a keyslot cannot open the volume here, or "": not
// bound to the data segment, a problem found in the header, a KDF cost
// beyond the bounds (or, with memAvail, the memory at hand), an area
// cipher this package cannot decrypt.
func (h *Header) KeyslotProblem(ks Keyslot, memAvail func() (uint64, error)) string {
	if memAvail == nil {
		memAvail = func() (uint64, error) { return 0, errors.New("unknown") }
	}
	switch {
	case !ks.Bound:
		return "not bound to the data segment (unbound keyslot)"
	case ks.Problem != "":
		return ks.Problem
	}
	if err := h.checkKDF(ks, memAvail); err != nil {
		return err.Error()
	}
	if err := checkCipher(ks); err != nil {
		return err.Error()
	}
	return ""
}

// checkCipher refuses a keyslot whose area cipher cannot be decrypted here,
// before its (expensive) KDF runs.
func checkCipher(ks Keyslot) error {
	name, mode := splitCipherSpec(ks.Cipher)
	_, err := newSectorDecrypter(name, mode, make([]byte, ks.KeyBytes))
	return err
}

// readArea reads and decrypts a keyslot area, then merges the stripes.
func (h *Header) readArea(ks Keyslot, dk []byte, keyBytes int) ([]byte, error) {
	name, mode := splitCipherSpec(ks.Cipher)
	dec, err := newSectorDecrypter(name, mode, dk)
	if err != nil {
		return nil, err
	}
	afHash, ok := hashByName(ks.AFHash)
	if !ok {
		return nil, &UnsupportedError{What: "anti-forensic hash " + ks.AFHash}
	}
	buf := make([]byte, ks.Length)
	defer wipe(buf)
	if err := readFull(h.r, buf, ks.Offset, fmt.Sprintf("keyslot %d area", ks.Index)); err != nil {
		return nil, err
	}
	if err := dec(buf); err != nil {
		return nil, err
	}
	return afMerge(buf, keyBytes, ks.Stripes, afHash), nil
}

func constantTimeEqual(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// cString returns the NUL-terminated string at the start of b.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// DMTable returns the dm-crypt target length (512-byte sectors) and
// parameters for mapping the volume on the block device major:minor of
// deviceSize bytes. The parameters hold the key in hex: wipe them after use.
func (v *Volume) DMTable(major, minor uint32, deviceSize int64) (uint64, []byte, error) {
	h := v.Header
	if h.PayloadOffset%512 != 0 || h.PayloadOffset >= deviceSize {
		return 0, nil, corrupt("metadata", "data offset %d outside the %d-byte device", h.PayloadOffset, deviceSize)
	}
	length := deviceSize - h.PayloadOffset
	if h.PayloadSize > 0 {
		if h.PayloadSize > uint64(length) {
			return 0, nil, corrupt("metadata", "data segment of %d bytes does not fit the device (%d bytes after the data offset)", h.PayloadSize, length)
		}
		length = int64(h.PayloadSize)
	}
	ss := int64(h.SectorSize)
	if ss == 0 {
		ss = 512
	}
	length -= length % ss
	if length <= 0 {
		return 0, nil, corrupt("metadata", "empty data segment")
	}
	ivOffset := h.IVTweak
	var opts []string
	opts = append(opts, h.Flags...)
	if ss != 512 {
		opts = append(opts, "sector_size:"+strconv.FormatInt(ss, 10))
	}
	// Sized once: growing it would leave copies of the hex key behind.
	p := make([]byte, 0, 1024+2*len(v.Key))
	p = append(p, h.Cipher...)
	p = append(p, ' ')
	p = hex.AppendEncode(p, v.Key)
	p = fmt.Appendf(p, " %d %d:%d %d", ivOffset, major, minor, h.PayloadOffset/512)
	if len(opts) > 0 {
		p = fmt.Appendf(p, " %d %s", len(opts), strings.Join(opts, " "))
	}
	return uint64(length / 512), p, nil
}
