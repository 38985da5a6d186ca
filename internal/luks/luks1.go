package luks

import (
	"encoding/binary"
	"fmt"
	"io"
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
	if cipherName == "" || cipherMode == "" {
		return nil, corrupt("LUKS1", "empty cipher name or mode")
	}
	if _, ok := hashByName(hashSpec); !ok {
		return nil, &UnsupportedError{What: "LUKS1 hash " + fmt.Sprintf("%q", hashSpec)}
	}
	switch v.keyBytes {
	case 16, 24, 32, 48, 64:
	default:
		return nil, corrupt("LUKS1", "key size %d bytes", v.keyBytes)
	}
	if v.mkIter < 1 || v.mkIter > maxPBKDF2Iter {
		return nil, corrupt("LUKS1", "master key digest iterations %d", v.mkIter)
	}
	if v.payloadSec == 0 {
		return nil, &UnsupportedError{What: "LUKS1 detached header (payload offset 0)"}
	}
	if h.PayloadOffset >= size {
		return nil, corrupt("LUKS1", "payload offset %d beyond the %d-byte device", h.PayloadOffset, size)
	}
	active := 0
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
		case ks.Stripes < 1 || ks.Stripes > luks1MaxStripes:
			ks.Problem = fmt.Sprintf("stripes %d outside 1..%d", ks.Stripes, luks1MaxStripes)
		case ks.KDF.Iterations < 1:
			ks.Problem = "zero iterations"
		case ks.Offset < luks1HeaderSize || ks.Offset+ks.Length > h.PayloadOffset || ks.Offset+ks.Length > size:
			ks.Problem = fmt.Sprintf("key material at %d (+%d) outside the header area", ks.Offset, ks.Length)
		}
		if ks.Problem != "" {
			h.Warnings = append(h.Warnings, fmt.Sprintf("keyslot %d: %s", i, ks.Problem))
		} else {
			active++
		}
		h.Keyslots = append(h.Keyslots, ks)
	}
	if active == 0 && len(h.Keyslots) > 0 {
		return nil, corrupt("LUKS1", "no valid keyslot: %v", h.Warnings)
	}
	return h, nil
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
