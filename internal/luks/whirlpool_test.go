package luks

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestWhirlpool checks the hash against the host's OpenSSL (legacy
// provider) on short, block-crossing and multi-block inputs.
func TestWhirlpool(t *testing.T) {
	for _, in := range []string{"", "abc", "The quick brown fox jumps over the lazy dog", strings.Repeat("a", 1000), strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 64)} {
		out := opensslWhirlpool(t, in)
		h := newWhirlpool()
		// Feed in odd pieces to exercise the buffering.
		for i := 0; i < len(in); i += 7 {
			h.Write([]byte(in[i:min(i+7, len(in))]))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != out {
			t.Fatalf("whirlpool(%d bytes) = %s, openssl %s", len(in), got, out)
		}
	}
}

func opensslWhirlpool(t *testing.T, in string) string {
	t.Helper()
	out, err := runStdin(in, "openssl", "dgst", "-whirlpool", "-provider", "legacy", "-provider", "default")
	if err != nil {
		t.Skipf("host openssl has no whirlpool: %v", err)
	}
	_, h, _ := strings.Cut(strings.TrimSpace(out), "= ")
	return h
}
