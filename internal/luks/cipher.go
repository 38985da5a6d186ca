package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/crypto/xts"
)

// sectorSize is the unit the keyslot areas are encrypted in, whatever the
// data segment's sector size.
const sectorSize = 512

// sectorDecrypter decrypts a whole keyslot area in place, sector by sector,
// sector numbers starting at 0 at the start of the area.
type sectorDecrypter func(buf []byte) error

// blockCipherByName returns the constructor of a block cipher LUKS names.
func blockCipherByName(name string) (func([]byte) (cipher.Block, error), bool) {
	switch name {
	case "aes":
		return aes.NewCipher, true
	}
	return extraCipher(name)
}

// splitCipherSpec splits "aes-xts-plain64" into "aes" and "xts-plain64".
func splitCipherSpec(spec string) (name, mode string) {
	name, mode, _ = strings.Cut(spec, "-")
	return name, mode
}

// newSectorDecrypter builds the decrypter for cipher name and mode (as LUKS
// writes them) keyed by key. Supported: aes, twofish and serpent with
// xts-plain64, xts-plain, cbc-essiv:<hash>, cbc-plain64, cbc-plain,
// lrw-plain64, lrw-plain and ecb.
func newSectorDecrypter(name, mode string, key []byte) (sectorDecrypter, error) {
	spec := name + "-" + mode
	newBlock, ok := blockCipherByName(name)
	if !ok {
		return nil, &UnsupportedCipherError{Spec: spec}
	}
	switch {
	case mode == "xts-plain64" || mode == "xts-plain":
		if len(key) != 32 && len(key) != 64 {
			return nil, &UnsupportedCipherError{Spec: spec + " with a " + strconv.Itoa(len(key)*8) + "-bit key"}
		}
		c, err := xts.NewCipher(newBlock, key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		return func(buf []byte) error {
			for s := 0; s*sectorSize < len(buf); s++ {
				sec := buf[s*sectorSize : (s+1)*sectorSize]
				c.Decrypt(sec, sec, uint64(s))
			}
			return nil
		}, nil
	case mode == "lrw-plain64" || mode == "lrw-plain":
		return newLRW(newBlock, mode, spec, key)
	case mode == "ecb":
		// No IV: every block on its own (cryptsetup's aes-ecb).
		b, err := newBlock(key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		bs := b.BlockSize()
		return func(buf []byte) error {
			for o := 0; o+bs <= len(buf); o += bs {
				b.Decrypt(buf[o:o+bs], buf[o:o+bs])
			}
			return nil
		}, nil
	case mode == "cbc-plain64" || mode == "cbc-plain" || strings.HasPrefix(mode, "cbc-essiv:"):
		b, err := newBlock(key)
		if err != nil {
			return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
		}
		ivFor, err := cbcIV(mode, spec, key, newBlock, b.BlockSize())
		if err != nil {
			return nil, err
		}
		iv := make([]byte, b.BlockSize())
		return func(buf []byte) error {
			for s := 0; s*sectorSize < len(buf); s++ {
				sec := buf[s*sectorSize : (s+1)*sectorSize]
				ivFor(iv, uint64(s))
				cipher.NewCBCDecrypter(b, iv).CryptBlocks(sec, sec)
			}
			return nil
		}, nil
	}
	return nil, &UnsupportedCipherError{Spec: spec}
}

// cbcIV returns the IV generator for a CBC mode.
func cbcIV(mode, spec string, key []byte, newBlock func([]byte) (cipher.Block, error), bs int) (func(iv []byte, sector uint64), error) {
	switch mode {
	case "cbc-plain64":
		return func(iv []byte, s uint64) {
			clear(iv)
			binary.LittleEndian.PutUint64(iv, s)
		}, nil
	case "cbc-plain":
		return func(iv []byte, s uint64) {
			clear(iv)
			binary.LittleEndian.PutUint32(iv, uint32(s))
		}, nil
	}
	// ESSIV: IV = E_{H(key)}(le64(sector)), with the same block cipher keyed
	// by the digest of the volume key.
	hname := strings.TrimPrefix(mode, "cbc-essiv:")
	newHash, ok := hashByName(hname)
	if !ok {
		return nil, &UnsupportedCipherError{Spec: spec}
	}
	hh := newHash()
	hh.Write(key)
	salt := hh.Sum(nil)
	eb, err := newBlock(salt)
	wipe(salt)
	if err != nil {
		return nil, &UnsupportedCipherError{Spec: spec + ": " + err.Error()}
	}
	plain := make([]byte, bs)
	return func(iv []byte, s uint64) {
		clear(plain)
		binary.LittleEndian.PutUint64(plain, s)
		eb.Encrypt(iv, plain)
	}, nil
}
