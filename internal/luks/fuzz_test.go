package luks

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// fuzzUnlockable says whether a fuzzed header is cheap enough to also try
// to unlock (the KDF bounds allow costs a fuzzer must not spend time on).
func fuzzUnlockable(h *Header) bool {
	for _, ks := range h.Keyslots {
		if ks.KDF.Type != "pbkdf2" || ks.KDF.Iterations > 2000 {
			return false
		}
	}
	if h.v1 != nil && h.v1.mkIter > 2000 {
		return false
	}
	for _, d := range h.digest {
		if d.iter > 2000 {
			return false
		}
	}
	return true
}

func fuzzOpen(t *testing.T, b []byte) {
	// A slow input is a finding too: crash so the fuzzer keeps it.
	timer := time.AfterFunc(60*time.Second, func() { panic("input took more than 60 s") })
	defer timer.Stop()
	// The input is the start of an 8 MiB device: reads past it fail.
	h, err := Open(bytes.NewReader(b), 8<<20)
	if err != nil {
		return
	}
	if fuzzUnlockable(h) {
		if v, err := h.Unlock([]byte("fuzz"), UnlockOptions{Keyslot: -1, MemAvailable: func() (uint64, error) { return 64 << 20, nil }}); err == nil {
			v.DMTable(8, 1, 8<<20)
			v.Wipe()
		}
	}
}

// FuzzLUKS1 feeds the LUKS1 header parser and keyslot reader.
func FuzzLUKS1(f *testing.F) {
	if seed, err := os.ReadFile("testdata/luks1-header.bin"); err == nil {
		f.Add(seed)
	}
	f.Add(append([]byte("LUKS\xba\xbe\x00\x01"), make([]byte, 600)...))
	f.Fuzz(fuzzOpen)
}

// FuzzLUKS2 feeds the LUKS2 binary header, checksum and JSON validation.
func FuzzLUKS2(f *testing.F) {
	if seed, err := os.ReadFile("testdata/luks2-header.bin"); err == nil {
		f.Add(seed)
	}
	f.Add(append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 5000)...))
	f.Fuzz(fuzzOpen)
}

// FuzzLUKS2JSON feeds the JSON metadata validation directly, past the
// checksum a random input would never match.
func FuzzLUKS2JSON(f *testing.F) {
	if seed, err := os.ReadFile("testdata/luks2-header.bin"); err == nil && len(seed) > 16384 {
		f.Add(bytes.TrimRight(seed[4096:16384], "\x00"))
	}
	f.Add([]byte(`{"keyslots":{},"segments":{},"digests":{},"config":{"json_size":"12288","keyslots_size":"4096"}}`))
	f.Add([]byte("{'keyslots':{}, /* c */ \"segments\":{\"0\":{\"type\":\"crypt\",\"offset\":\"0\",\"size\":'dynamic',\"flags\":[\"backup-x\",],},}, // x\n\"n\":-Infinity,\"m\":007,\"t\":TRUE} "))
	f.Fuzz(func(t *testing.T, js []byte) {
		if len(js) >= 12288 {
			return
		}
		area := make([]byte, 12288)
		copy(area, js)
		c := &luks2Copy{name: "primary", hdrSize: 16384, json: area}
		root, err := c.metadata()
		if err != nil {
			return
		}
		h, err := parseLUKS2JSON(c, root, bytes.NewReader(nil), 64<<20)
		if err == nil && len(h.Keyslots) > 32 {
			t.Fatalf("%d keyslots", len(h.Keyslots))
		}
	})
}

// TestFuzzSeedsOpen makes sure the checked-in seeds are real volumes that
// open with the fuzz passphrase, so fuzzing starts from deep inside.
func TestFuzzSeedsOpen(t *testing.T) {
	for _, name := range []string{"testdata/luks1-header.bin", "testdata/luks2-header.bin"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Open(bytes.NewReader(b), 8<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, err := h.Unlock([]byte("fuzz"), UnlockOptions{Keyslot: -1})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v.Wipe()
	}
}
