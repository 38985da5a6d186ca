package luks

import (
	"encoding/binary"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"strconv"
	"strings"
)

// LUKS1 on-disk layout (spec 1.2.3), big-endian.
const (
	luks1HeaderSize   = 592
	luks1NumKeys      = 8
	luks1KeyEnabled   = 0x00AC71F3
	luks1KeyDisabled  = 0x0000DEAD
	luks1DigestSize   = 20
	luks1SaltSize     = 32
	luks1KeyslotStart = 208
	luks1KeyslotSize  = 48
	luks1MaxStripes   = 4000
)

type luks1Header struct {
	hash       string
	mkDigest   []byte
	mkSalt     []byte
	mkIter     uint32
	keyBytes   int
	payloadSec uint32
}

func openLUKS1(r io.ReaderAt, size int64) (*Header, error) {
	buf := make([]byte, luks1HeaderSize)
	if err := readFull(r, buf, 0, "LUKS1 header"); err != nil {
		return nil, err
	}
	return parseLUKS1(buf, r, size)
}

// parseLUKS1 validates a 592-byte LUKS1 header of a device of size bytes.
func parseLUKS1(b []byte, r io.ReaderAt, size int64) (*Header, error) {
	if len(b) < luks1HeaderSize {
		return nil, corrupt("LUKS1", "header truncated to %d bytes", len(b))
	}
	be := binary.BigEndian
	cipherName := cString(b[8:40])
	cipherMode := cString(b[40:72])
	hashSpec := cString(b[72:104])
	v := &luks1Header{
		hash:       hashSpec,
		payloadSec: be.Uint32(b[104:108]),
		keyBytes:   int(be.Uint32(b[108:112])),
		mkDigest:   append([]byte(nil), b[112:132]...),
		mkSalt:     append([]byte(nil), b[132:164]...),
		mkIter:     be.Uint32(b[164:168]),
	}
	h := &Header{
		Version:       1,
		UUID:          cString(b[168:208]),
		Cipher:        cipherName + "-" + cipherMode,
		KeyBytes:      v.keyBytes,
		SectorSize:    512,
		PayloadOffset: int64(v.payloadSec) * 512,
		r:             r,
		v1:            v,
	}
	if _, ok := hashByName(hashSpec); !ok {
		if !knownHash(hashSpec) {
			return nil, corrupt("LUKS1", "hash %q is not supported by cryptsetup either", hashSpec)
		}
		h.refuse(&UnsupportedError{What: "LUKS1 hash " + strconv.Quote(hashSpec)})
	}
	if v.keyBytes == 0 {
		return nil, corrupt("LUKS1", "key size 0")
	}
	// All eight keyslot descriptors, enabled or not, as cryptsetup checks
	// them: 4000 stripes, key material after the header and before the
	// data, no two areas overlapping, the last one inside the device.
	secs := (int64(v.keyBytes)*luks1MaxStripes + 511) / 512
	type area struct{ slot, off int64 }
	var areas []area
	for i := 0; i < luks1NumKeys; i++ {
		sl := b[luks1KeyslotStart+i*luks1KeyslotSize:][:luks1KeyslotSize]
		off := int64(be.Uint32(sl[40:44]))
		if st := be.Uint32(sl[44:48]); st != luks1MaxStripes {
			return nil, corrupt("LUKS1", "keyslot %d: %d stripes, not 4000", i, st)
		}
		if off*512 < luks1HeaderSize {
			return nil, corrupt("LUKS1", "keyslot %d: key material at sector %d overlaps the header", i, off)
		}
		if v.payloadSec != 0 && (int64(v.payloadSec) <= off || int64(v.payloadSec) < off+secs) {
			return nil, corrupt("LUKS1", "keyslot %d: key material at sector %d (+%d) runs into the data at sector %d", i, off, secs, v.payloadSec)
		}
		areas = append(areas, area{int64(i), off})
	}
	insertionSort(areas, func(a, b area) int { return int(a.off - b.off) })
	for i := 1; i < len(areas); i++ {
		if areas[i].off < areas[i-1].off+secs {
			return nil, corrupt("LUKS1", "keyslot %d: key material overlaps keyslot %d's", areas[i-1].slot, areas[i].slot)
		}
	}
	if end := (areas[len(areas)-1].off + secs) * 512; end > size {
		return nil, corrupt("LUKS1", "device of %d bytes is smaller than the header and keyslots (%d bytes)", size, end)
	}
	switch {
	case cipherName == "" || cipherMode == "":
		h.refuse(corrupt("LUKS1", "empty cipher name or mode"))
	case v.keyBytes != 16 && v.keyBytes != 24 && v.keyBytes != 32 && v.keyBytes != 48 && v.keyBytes != 64:
		h.refuse(&UnsupportedError{What: fmt.Sprintf("LUKS1 key size %d bytes", v.keyBytes)})
	case v.mkIter < 1 || v.mkIter > maxPBKDF2Iter:
		h.refuse(&UnsupportedError{What: fmt.Sprintf("master key digest iterations %d", v.mkIter)})
	case v.payloadSec == 0:
		h.refuse(&UnsupportedError{What: "LUKS1 detached header (payload offset 0)"})
	}
	for i := 0; i < luks1NumKeys; i++ {
		s := b[luks1KeyslotStart+i*luks1KeyslotSize:][:luks1KeyslotSize]
		state := be.Uint32(s[0:4])
		if state == luks1KeyDisabled {
			continue
		}
		ks := Keyslot{
			Index:    i,
			Priority: 1,
			Cipher:   h.Cipher,
			KeyBytes: v.keyBytes,
			KDF:      KDF{Type: "pbkdf2", Hash: hashSpec, Iterations: be.Uint32(s[4:8])},
			AFHash:   hashSpec,
			Stripes:  int(be.Uint32(s[44:48])),
			Offset:   int64(be.Uint32(s[40:44])) * 512,
			Bound:    true,
			salt:     append([]byte(nil), s[8:40]...),
		}
		ks.Length = roundUp(int64(v.keyBytes)*int64(ks.Stripes), 512)
		switch {
		case state != luks1KeyEnabled:
			ks.Problem = fmt.Sprintf("invalid state 0x%08x", state)
		case ks.KDF.Iterations < 1:
			ks.Problem = "zero iterations"
		}
		if ks.Problem != "" {
			h.Warnings = append(h.Warnings, fmt.Sprintf("keyslot %d: %s", i, ks.Problem))
		}
		h.Keyslots = append(h.Keyslots, ks)
	}
	return h, nil
}

// knownHash: hashes cryptsetup's crypto backends know that this package does
// not implement (a LUKS1 header naming one is valid, but not unlocked here).
func knownHash(name string) bool {
	switch strings.ToLower(name) {
	case "sha3-224", "sha3-256", "sha3-384", "sha3-512", "blake2b-512", "blake2s-256", "sm3", "stribog256", "stribog512", "ripemd128", "ripemd256", "ripemd320", "tiger":
		return true
	}
	return false
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

func (v *luks1Header) recoverKey(h *Header, ks Keyslot, pass []byte) ([]byte, error) {
	newHash, _ := hashByName(v.hash)
	dk := pbkdf2(newHash, pass, ks.salt, int(ks.KDF.Iterations), v.keyBytes)
	defer wipe(dk)
	return h.readArea(ks, dk, v.keyBytes)
}

func (v *luks1Header) verifyKey(key []byte) bool {
	newHash, _ := hashByName(v.hash)
	d := pbkdf2(newHash, key, v.mkSalt, int(v.mkIter), luks1DigestSize)
	return constantTimeEqual(d, v.mkDigest)
}
