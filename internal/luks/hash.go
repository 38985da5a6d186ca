package luks

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"strings"

	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // LUKS1 volumes use it.
)

// hashByName maps a LUKS hash spec to its constructor.
func hashByName(name string) (func() hash.Hash, bool) {
	switch strings.ToLower(name) {
	case "sha1":
		return sha1.New, true
	case "sha224":
		return sha256.New224, true
	case "sha256":
		return sha256.New, true
	case "sha384":
		return sha512.New384, true
	case "sha512":
		return sha512.New, true
	case "ripemd160":
		return ripemd160.New, true
	case "whirlpool":
		return newWhirlpool, true
	}
	return nil, false
}

// pbkdf2 implements RFC 8018 PBKDF2 with HMAC. It is ours rather than
// x/crypto's because that one takes the password as a Go string (which can
// never be wiped) and panics on errors.
func pbkdf2(h func() hash.Hash, password, salt []byte, iter, keyLen int) []byte {
	prf := hmac.New(h, password)
	hLen := prf.Size()
	blocks := (keyLen + hLen - 1) / hLen
	out := make([]byte, 0, blocks*hLen)
	u := make([]byte, 0, hLen)
	t := make([]byte, hLen)
	var ctr [4]byte
	for b := 1; b <= blocks; b++ {
		binary.BigEndian.PutUint32(ctr[:], uint32(b))
		prf.Reset()
		prf.Write(salt)
		prf.Write(ctr[:])
		u = prf.Sum(u[:0])
		copy(t, u)
		for i := 1; i < iter; i++ {
			prf.Reset()
			prf.Write(u)
			u = prf.Sum(u[:0])
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t...)
	}
	wipe(u)
	wipe(t)
	wipe(out[keyLen:]) // the tail beyond keyLen never escapes
	return out[:keyLen:keyLen]
}

// wipe zeroes b.
func wipe(b []byte) {
	clear(b)
}

// Wipe zeroes a key buffer; callers use it for anything this package returns.
func Wipe(b []byte) { wipe(b) }
