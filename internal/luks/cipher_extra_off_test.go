//go:build nociphers

package luks

import (
	"errors"
	"testing"
)

// TestNoExtraCiphers: an init built without CIPHERS=1 says a twofish,
// serpent or LRW keyslot is unsupported (not a wrong passphrase).
func TestNoExtraCiphers(t *testing.T) {
	for _, c := range [][2]string{{"twofish", "xts-plain64"}, {"serpent", "cbc-essiv:sha256"}, {"aes", "lrw-plain64"}} {
		var uc *UnsupportedCipherError
		if _, err := newSectorDecrypter(c[0], c[1], make([]byte, 32)); !errors.As(err, &uc) {
			t.Fatalf("%s-%s: %v", c[0], c[1], err)
		}
	}
}
