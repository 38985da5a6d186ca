//go:build nociphers

package luks

import "crypto/cipher"

// Without the extra ciphers (x220 init without CIPHERS=1): AES only, LRW
// refused as unsupported.

func extraCipher(name string) (func([]byte) (cipher.Block, error), bool) { return nil, false }

func newLRW(newBlock func([]byte) (cipher.Block, error), mode, spec string, key []byte) (sectorDecrypter, error) {
	return nil, &UnsupportedCipherError{Spec: spec + " (this payload is built without CIPHERS=1)"}
}
