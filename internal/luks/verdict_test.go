package luks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/romboot/romboot/internal/luks/lukstest"
	"github.com/romboot/romboot/internal/testutil"
)

// The cases of cryptsetup's tests/luks2-validation-test (its generators/),
// rebuilt here with our own edits of a header the host's cryptsetup made,
// each judged by the host's cryptsetup (luksDump loads and validates the
// metadata) and by Inspect in the same test. "upstream" is the verdict
// cryptsetup's own test script expects; the host's verdict is the one
// romboot must equal.

const vHdr = 16384 // metadata size of the base image

var (
	baseOnce sync.Once
	baseImg  string
	baseErr  error
)

// TestMain removes the shared base image after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if baseImg != "" {
		os.RemoveAll(filepath.Dir(baseImg))
	}
	os.Exit(code)
}

// verdictBase makes, once per run, a LUKS2 image with eight keyslots (1 and
// 2 argon2id, the others pbkdf2) as the generators' base image has.
func verdictBase(t *testing.T) string {
	t.Helper()
	cs := testutil.NeedTool(t, "cryptsetup")
	baseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "romboot-verdict-")
		if err != nil {
			baseErr = err
			return
		}
		img := filepath.Join(dir, "base.img")
		baseImg = img // for TestMain's clean-up, even if making it fails
		run := func(stdin string, args ...string) {
			if baseErr != nil {
				return
			}
			cmd := exec.Command(cs, args...)
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				baseErr = fmt.Errorf("cryptsetup %v: %v\n%s", args, err, out)
			}
		}
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			baseErr = err
			return
		}
		os.Truncate(img, 4<<20)
		run(testPass, args([]string{"luksFormat", "--batch-mode", "--key-file", "-", "--type", "luks2", "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "2m", "--pbkdf", "pbkdf2"}, cheapPBKDF2, []string{img})...)
		nk := filepath.Join(dir, "key")
		os.WriteFile(nk, []byte(testPass), 0o600)
		for s := 1; s < 8; s++ {
			kdf := args([]string{"--pbkdf", "pbkdf2"}, cheapPBKDF2)
			if s == 1 || s == 2 {
				kdf = []string{"--pbkdf", "argon2id", "--pbkdf-memory", "64", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1"}
			}
			run(testPass, args([]string{"luksAddKey", "--batch-mode", "--key-file", "-", "--key-slot", strconv.Itoa(s)}, kdf, []string{img, nk})...)
		}
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	return baseImg
}

// vimg copies the base image into the test's directory.
func vimg(t *testing.T) string {
	b, err := os.ReadFile(verdictBase(t))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "v.img")
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return img
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readMeta(t *testing.T, img string, off int64) map[string]any {
	t.Helper()
	m, _, err := lukstest.ReadJSON(img, off)
	must(t, err)
	return m
}

// primaryOnly writes m to the primary and destroys the secondary, so only
// the edited copy can be used (the generators' "kill hdr1").
func primaryOnly(t *testing.T, img string, m map[string]any) {
	t.Helper()
	must(t, lukstest.WriteCopy(img, 0, 0, vHdr, lukstest.Marshal(m)))
	must(t, lukstest.Kill(img, vHdr))
}

// bothCopies writes m to both copies.
func bothCopies(t *testing.T, img string, m map[string]any) {
	t.Helper()
	must(t, lukstest.WriteCopy(img, 0, 0, vHdr, lukstest.Marshal(m)))
	must(t, lukstest.WriteCopy(img, 0, vHdr, vHdr, lukstest.Marshal(m)))
}

// rawPrimary writes a raw JSON area to the primary and kills the secondary.
func rawPrimary(t *testing.T, img string, area []byte) {
	t.Helper()
	must(t, lukstest.WriteCopy(img, 0, 0, vHdr, area))
	must(t, lukstest.Kill(img, vHdr))
}

func seg0(m map[string]any) map[string]any { return lukstest.Get(m, "segments", "0") }

func num(v any) uint64 {
	switch x := v.(type) {
	case string:
		n, _ := strconv.ParseUint(x, 10, 64)
		return n
	case json.Number:
		n, _ := strconv.ParseUint(string(x), 10, 64)
		return n
	}
	return 0
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

// filled returns compact JSON m with an extra string member making it
// exactly n bytes long.
func filled(m map[string]any, n int) []byte {
	m["x"] = ""
	js := lukstest.Marshal(m)
	m["x"] = strings.Repeat("X", n-len(js))
	return lukstest.Marshal(m)
}

// setMDA rewrites the image for metadata size mda (both binary headers,
// keyslot areas moved by the difference, data at 16 MiB), as the
// generators' metadata-size-* scripts do; shift adjusts the keyslot move.
func setMDA(t *testing.T, img string, mda int64, shift int64, edit func(m map[string]any)) (map[string]any, []byte) {
	t.Helper()
	must(t, os.Truncate(img, 17<<20))
	m := readMeta(t, img, 0)
	for _, ks := range m["keyslots"].(map[string]any) {
		a := ks.(map[string]any)["area"].(map[string]any)
		a["offset"] = u(num(a["offset"]) + uint64(2*(mda-vHdr)+shift))
	}
	lukstest.Get(m, "config")["json_size"] = u(uint64(mda - 4096))
	seg0(m)["offset"] = "16777216"
	if edit != nil {
		edit(m)
	}
	return m, lukstest.Marshal(m)
}

type vcase struct {
	name     string
	upstream string // "R" accepted, "F" refused by cryptsetup's own test
	make     func(t *testing.T, img string)
}

var verdictCases = []vcase{
	// [1] basic auto-recovery
	{"luks2-invalid-checksum-hdr0", "R", func(t *testing.T, img string) { must(t, lukstest.Flip(img, 448)) }},
	{"luks2-invalid-checksum-hdr1", "R", func(t *testing.T, img string) { must(t, lukstest.Flip(img, vHdr+448)) }},
	{"luks2-invalid-checksum-both-hdrs", "F", func(t *testing.T, img string) {
		must(t, lukstest.Flip(img, 448))
		must(t, lukstest.Flip(img, vHdr+448))
	}},
	// [2] malformed JSON with a correct checksum
	{"luks2-corrupted-hdr0-with-correct-chks", "R", func(t *testing.T, img string) {
		js := lukstest.Marshal(readMeta(t, img, 0))
		js = append(js[:len(js)-1], `,"`...)
		for len(js) < vHdr-4096 {
			js = append(js, "all_work_and_no_play_"...)
		}
		must(t, lukstest.WriteCopy(img, 0, 0, vHdr, js[:vHdr-4096]))
	}},
	{"luks2-corrupted-hdr1-with-correct-chks", "R", func(t *testing.T, img string) {
		js := lukstest.Marshal(readMeta(t, img, 0))
		js = append(js[:len(js)-1], `,"`...)
		for len(js) < vHdr-4096 {
			js = append(js, "all_work_and_no_play_"...)
		}
		must(t, lukstest.WriteCopy(img, vHdr, vHdr, vHdr, js[:vHdr-4096]))
	}},
	{"luks2-correct-full-json0", "R", func(t *testing.T, img string) {
		rawPrimary(t, img, filled(readMeta(t, img, 0), vHdr-4096-1))
	}},
	{"luks2-argon2-leftover-params", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		kdf := lukstest.Get(m, "keyslots", "1", "kdf")
		kdf["type"], kdf["iterations"], kdf["hash"] = "pbkdf2", 1001, "sha256"
		primaryOnly(t, img, m)
	}},
	{"luks2-pbkdf2-leftover-params-0", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		kdf := lukstest.Get(m, "keyslots", "2", "kdf")
		kdf["type"], kdf["iterations"], kdf["hash"] = "argon2i", 1001, "sha256"
		primaryOnly(t, img, m)
	}},
	{"luks2-pbkdf2-leftover-params-1", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		kdf := lukstest.Get(m, "keyslots", "2", "kdf")
		kdf["type"], kdf["iterations"], kdf["hash"] = "argon2id", 1001, "sha256"
		primaryOnly(t, img, m)
	}},
	// [3] JSON area restrictions
	{"luks2-non-null-byte-beyond-json0", "F", func(t *testing.T, img string) {
		rawPrimary(t, img, append(lukstest.Marshal(readMeta(t, img, 0)), 'X'))
	}},
	{"luks2-non-null-bytes-beyond-json0", "F", func(t *testing.T, img string) {
		js := lukstest.Marshal(readMeta(t, img, 0))
		area := make([]byte, vHdr-4096)
		copy(area, js)
		copy(area[len(js)+64:], `"Arbitrary quote"`)
		rawPrimary(t, img, area)
	}},
	{"luks2-missing-trailing-null-byte-json0", "F", func(t *testing.T, img string) {
		rawPrimary(t, img, filled(readMeta(t, img, 0), vHdr-4096))
	}},
	{"luks2-invalid-opening-char-json0", "F", func(t *testing.T, img string) {
		rawPrimary(t, img, append([]byte(" "), lukstest.Marshal(readMeta(t, img, 0))...))
	}},
	{"luks2-invalid-object-type-json0", "F", func(t *testing.T, img string) {
		rawPrimary(t, img, append(append([]byte("["), lukstest.Marshal(readMeta(t, img, 0))...), ']'))
	}},
	{"luks2-overlapping-areas-c0-json0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		a6, a7 := lukstest.Get(m, "keyslots", "6", "area"), lukstest.Get(m, "keyslots", "7", "area")
		a7["offset"], a7["size"] = a6["offset"], a6["size"]
		primaryOnly(t, img, m)
	}},
	{"luks2-overlapping-areas-c1-json0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		a6, a7 := lukstest.Get(m, "keyslots", "6", "area"), lukstest.Get(m, "keyslots", "7", "area")
		a7["offset"], a7["size"] = u(num(a6["offset"])+1), u(num(a6["size"])-1)
		primaryOnly(t, img, m)
	}},
	{"luks2-overlapping-areas-c2-json0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		a6, a7 := lukstest.Get(m, "keyslots", "6", "area"), lukstest.Get(m, "keyslots", "7", "area")
		a7["offset"] = u(num(a6["offset"]) + num(a6["size"]) - 1)
		primaryOnly(t, img, m)
	}},
	{"luks2-area-in-json-hdr-space-json0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		a := lukstest.Get(m, "keyslots", "0", "area")
		a["offset"], a["size"] = u(2*vHdr-1), "1"
		primaryOnly(t, img, m)
	}},
	{"luks2-missing-keyslot-referenced-in-digest", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		d := lukstest.Get(m, "digests", "0")
		d["keyslots"] = append(d["keyslots"].([]any), "8")
		primaryOnly(t, img, m)
	}},
	{"luks2-missing-segment-referenced-in-digest", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		d := lukstest.Get(m, "digests", "0")
		d["segments"] = append(d["segments"].([]any), "1")
		primaryOnly(t, img, m)
	}},
	{"luks2-missing-keyslot-referenced-in-token", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		m["tokens"] = map[string]any{"0": map[string]any{"type": "dummy", "keyslots": []any{"0", "8"}}}
		primaryOnly(t, img, m)
	}},
	{"luks2-keyslot-missing-digest", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		d := lukstest.Get(m, "digests", "0")
		d["keyslots"] = d["keyslots"].([]any)[1:]
		primaryOnly(t, img, m)
	}},
	{"luks2-keyslot-too-many-digests", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		d0 := lukstest.Get(m, "digests", "0")
		d1 := map[string]any{}
		for k, v := range d0 {
			d1[k] = v
		}
		d1["keyslots"] = []any{"1"}
		m["digests"].(map[string]any)["1"] = d1
		primaryOnly(t, img, m)
	}},
	// [4] integer limits
	// (upstream's image has 512-byte sectors; ours 4096: these two set 512.)
	{"luks2-uint64-max-segment-size", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		seg0(m)["size"], seg0(m)["sector_size"] = "18446744073709551104", 512
		primaryOnly(t, img, m)
	}},
	{"luks2-uint64-overflow-segment-size", "F", segField("size", "18446744073709551616")},
	{"luks2-uint64-signed-segment-size", "F", segField("size", "-512")},
	// [5] segments
	{"luks2-segment-missing-type", "F", segField("type", nil)},
	{"luks2-segment-wrong-type", "F", segField("type", 42)},
	{"luks2-segment-missing-offset", "F", segField("offset", nil)},
	{"luks2-segment-wrong-offset", "F", segField("offset", "-42")},
	{"luks2-segment-missing-size", "F", segField("size", nil)},
	{"luks2-segment-wrong-size-0", "F", segField("size", 4096)},
	{"luks2-segment-wrong-size-1", "F", segField("size", "automatic")},
	{"luks2-segment-wrong-size-2", "F", segField("size", "511")},
	{"luks2-segment-crypt-missing-encryption", "F", segField("encryption", nil)},
	{"luks2-segment-crypt-wrong-encryption", "F", segField("encryption", map[string]any{})},
	{"luks2-segment-crypt-missing-ivoffset", "F", segField("iv_tweak", nil)},
	{"luks2-segment-crypt-wrong-ivoffset", "F", segField("iv_tweak", "dynamic")},
	{"luks2-segment-crypt-missing-sectorsize", "F", segField("sector_size", nil)},
	{"luks2-segment-crypt-wrong-sectorsize-0", "F", segField("sector_size", 1023)},
	{"luks2-segment-crypt-wrong-sectorsize-1", "F", segField("sector_size", "4096")},
	{"luks2-segment-crypt-wrong-sectorsize-2", "F", segField("sector_size", -1024)},
	{"luks2-segment-unknown-type", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		s := seg0(m)
		m["segments"].(map[string]any)["0"] = map[string]any{"type": "some_type", "offset": s["offset"], "size": s["size"], "a_field": 0}
		primaryOnly(t, img, m)
	}},
	{"luks2-segment-two", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		seg0(m)["size"], seg0(m)["sector_size"] = "512", 512
		m["segments"].(map[string]any)["1"] = map[string]any{"type": "some", "offset": u(num(seg0(m)["offset"]) + 512), "size": "dynamic"}
		primaryOnly(t, img, m)
	}},
	{"luks2-segment-wrong-flags", "F", segField("flags", "hello")},
	{"luks2-segment-wrong-flags-element", "F", segField("flags", []any{"hello", 1})},
	{"luks2-segment-wrong-backup-key-0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		m["segments"].(map[string]any)["2"] = map[string]any{"type": "linear", "offset": "512", "size": "512", "flags": []any{"backup-x"}}
		primaryOnly(t, img, m)
	}},
	{"luks2-segment-wrong-backup-key-1", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		segs := m["segments"].(map[string]any)
		o := num(seg0(m)["offset"])
		for i := 1; i < 65; i++ {
			segs[strconv.Itoa(i)] = map[string]any{"type": "linear", "offset": u(o + 512), "size": "512"}
		}
		segs["268435472"] = map[string]any{"type": "linear", "offset": "512", "size": "512", "flags": []any{"backup-x"}}
		primaryOnly(t, img, m)
	}},
	{"luks2-segment-crypt-empty-encryption", "F", segField("encryption", "")},
	// [6] metadata and keyslots sizes
	{"luks2-invalid-keyslots-size-c0", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		lukstest.Get(m, "config")["keyslots_size"] = u(num(seg0(m)["offset"]) - 2*vHdr + 4096)
		primaryOnly(t, img, m)
	}},
	{"luks2-invalid-keyslots-size-c1", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		c := lukstest.Get(m, "config")
		c["keyslots_size"] = u(num(c["keyslots_size"]) - 1)
		primaryOnly(t, img, m)
	}},
	{"luks2-invalid-keyslots-size-c2", "F", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		var sum uint64
		for _, ks := range m["keyslots"].(map[string]any) {
			sum += num(ks.(map[string]any)["area"].(map[string]any)["size"])
		}
		lukstest.Get(m, "config")["keyslots_size"] = u(sum - 4096)
		primaryOnly(t, img, m)
	}},
	{"luks2-invalid-json-size-c0", "F", cfgField("json_size", u(vHdr-4096+4096))},
	{"luks2-invalid-json-size-c1", "F", cfgField("json_size", u(vHdr-4096-4096))},
	{"luks2-invalid-json-size-c2", "F", func(t *testing.T, img string) {
		js := lukstest.Marshal(readMeta(t, img, 0))
		must(t, os.Truncate(img, 17<<20))
		must(t, lukstest.WriteCopy(img, vHdr, 32768, 32768, js))
		must(t, lukstest.WriteCopy(img, 0, 0, 32768, js))
	}},
	{"luks2-metadata-size-32k", "R", mdaCase(32<<10, 0, false, nil)},
	{"luks2-metadata-size-64k", "R", mdaCase(64<<10, 0, false, nil)},
	{"luks2-metadata-size-64k-inv-area-c0", "F", mdaCase(64<<10, -1, false, nil)},
	{"luks2-metadata-size-64k-inv-area-c1", "F", mdaCase(64<<10, 0, false, func(m map[string]any) {
		a7 := lukstest.Get(m, "keyslots", "7", "area")
		a7["offset"] = u(num(lukstest.Get(m, "config")["keyslots_size"]) + 2*(64<<10) - num(a7["size"]) + 1)
	})},
	{"luks2-metadata-size-64k-inv-keyslots-size-c0", "F", mdaCase(64<<10, 0, false, func(m map[string]any) {
		lukstest.Get(m, "config")["keyslots_size"] = u(16777216 - 2*(64<<10) + 4096)
	})},
	{"luks2-metadata-size-128k", "R", mdaCase(128<<10, 0, false, nil)},
	{"luks2-metadata-size-256k", "R", mdaCase(256<<10, 0, false, nil)},
	{"luks2-metadata-size-512k", "R", mdaCase(512<<10, 0, false, nil)},
	{"luks2-metadata-size-1m", "R", mdaCase(1<<20, 0, false, nil)},
	{"luks2-metadata-size-2m", "R", mdaCase(2<<20, 0, false, nil)},
	{"luks2-metadata-size-4m", "R", mdaCase(4<<20, 0, false, nil)},
	{"luks2-metadata-size-16k-secondary", "R", mdaCase(16<<10, 0, true, nil)},
	{"luks2-metadata-size-32k-secondary", "R", mdaCase(32<<10, 0, true, nil)},
	{"luks2-metadata-size-64k-secondary", "R", mdaCase(64<<10, 0, true, nil)},
	{"luks2-metadata-size-128k-secondary", "R", mdaCase(128<<10, 0, true, nil)},
	{"luks2-metadata-size-256k-secondary", "R", mdaCase(256<<10, 0, true, nil)},
	{"luks2-metadata-size-512k-secondary", "R", mdaCase(512<<10, 0, true, nil)},
	{"luks2-metadata-size-1m-secondary", "R", mdaCase(1<<20, 0, true, nil)},
	{"luks2-metadata-size-2m-secondary", "R", mdaCase(2<<20, 0, true, nil)},
	{"luks2-metadata-size-4m-secondary", "R", mdaCase(4<<20, 0, true, nil)},
	{"luks2-metadata-size-invalid", "F", func(t *testing.T, img string) {
		_, js := setMDA(t, img, 1<<20, 0, nil)
		must(t, lukstest.WriteCopy(img, vHdr, 1<<20, 1<<20, js))
		must(t, lukstest.WriteCopy(img, 0, 0, 1<<20, js))
		bogus(t, img, 0, 2<<30)
		must(t, lukstest.Kill(img, 1<<20))
	}},
	{"luks2-metadata-size-invalid-secondary", "F", func(t *testing.T, img string) {
		_, js := setMDA(t, img, 1<<20, 0, nil)
		must(t, lukstest.WriteCopy(img, vHdr, 1<<20, 1<<20, js))
		must(t, lukstest.WriteCopy(img, 0, 0, 1<<20, js))
		bogus(t, img, 1<<20, 2<<30)
		must(t, lukstest.Kill(img, 0))
	}},
	// [7] invalid object properties
	{"luks2-invalid-tokens", "F", topField(func(m map[string]any) { m["tokens"] = 42 })},
	{"luks2-invalid-top-objects", "F", topField(func(m map[string]any) {
		m["tokens"], m["digests"], m["keyslots"], m["segments"] = 42, 42, []any{}, "hi"
	})},
	{"luks2-keyslot-invalid-area", "F", topField(func(m map[string]any) { lukstest.Get(m, "keyslots", "0")["area"] = 42 })},
	{"luks2-keyslot-invalid-area-size", "F", topField(func(m map[string]any) {
		lukstest.Get(m, "keyslots", "0", "area")["size"] = "18446744073709551615"
	})},
	{"luks2-keyslot-invalid-objects", "F", topField(func(m map[string]any) {
		lukstest.Get(m, "keyslots", "0")["kdf"] = 42
		lukstest.Get(m, "keyslots", "0")["af"] = 42
	})},
	{"luks2-keyslot-invalid-af", "F", topField(func(m map[string]any) { lukstest.Get(m, "keyslots", "0", "af")["type"] = 42 })},
	// JSON syntax at the edges (json-c is cryptsetup's parser).
	{"json-trailing-comma", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], ",}"...) })},
	{"json-duplicate-config", "", rawEdit(func(js []byte) []byte {
		return append(js[:len(js)-1], `,"config":{"json_size":"12288","keyslots_size":"2097152"}}`...)
	})},
	{"json-float-key-size", "", rawEdit(func(js []byte) []byte {
		return bytes.Replace(js, []byte(`"key_size":64`), []byte(`"key_size":64.0`), 1)
	})},
	{"json-tab-whitespace", "", rawEdit(func(js []byte) []byte {
		return bytes.Replace(js, []byte(`"type":"luks2"`), []byte("\t\"type\"\n:\r \"luks2\" "), 1)
	})},
	{"json-single-quotes", "", rawEdit(func(js []byte) []byte {
		return bytes.Replace(js, []byte(`"type":"luks2"`), []byte(`"type":'luks2'`), 1)
	})},
	{"json-comment", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], "/* c */}"...) })},
	{"json-line-comment", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], "// c\n}"...) })},
	{"json-unterminated-comment", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], "/* c }"...) })},
	{"json-trailing-space", "", rawEdit(func(js []byte) []byte { return append(js, " \n"...) })},
	{"json-trailing-comment", "", rawEdit(func(js []byte) []byte { return append(js, "/*x*/"...) })},
	{"json-trailing-x-after-space", "", rawEdit(func(js []byte) []byte { return append(js, " x"...) })},
	{"json-uppercase-literals", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,"a":TRUE,"b":Null,"c":FaLsE}`...) })},
	{"json-nan-infinity", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,"a":NaN,"b":-Infinity,"c":infinity}`...) })},
	{"json-loose-numbers", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,"a":007,"b":1.,"c":-.5,"d":2e}`...) })},
	{"json-leading-zero-key-size", "", rawEdit(func(js []byte) []byte {
		return bytes.Replace(js, []byte(`"key_size":64`), []byte(`"key_size":064`), 1)
	})},
	{"json-bad-number", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,"a":1-2}`...) })},
	{"json-control-char-in-string", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], ",\"a\":\"x\ty\x01\"}"...) })},
	{"json-single-quoted-key", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,'a':'b'}`...) })},
	{"json-array-trailing-comma", "", rawEdit(func(js []byte) []byte { return append(js[:len(js)-1], `,"a":[1,2,]}`...) })},
	{"json-deep-31", "", rawEdit(func(js []byte) []byte {
		return append(js[:len(js)-1], ","+`"a":`+strings.Repeat("[", 30)+strings.Repeat("]", 30)+"}"...)
	})},
	{"json-deep-31-arrays", "", rawEdit(func(js []byte) []byte {
		return append(js[:len(js)-1], ","+`"a":`+strings.Repeat("[", 31)+strings.Repeat("]", 31)+"}"...)
	})},
	{"json-deep-32-arrays", "", rawEdit(func(js []byte) []byte {
		return append(js[:len(js)-1], ","+`"a":`+strings.Repeat("[", 32)+strings.Repeat("]", 32)+"}"...)
	})},
	{"json-deep-33", "", rawEdit(func(js []byte) []byte {
		return append(js[:len(js)-1], ","+`"a":`+strings.Repeat("[", 33)+strings.Repeat("]", 33)+"}"...)
	})},
	// [8] non-compact JSON
	{"luks2-non-compact-json-token-0", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		m["tokens"] = map[string]any{"0": map[string]any{"type": "a", "keyslots": []any{}}}
		js := bytes.Replace(lukstest.Marshal(m), []byte(`"type":"luks2"`), []byte(`"type": "luks2"`), 1)
		must(t, lukstest.WriteCopy(img, 0, 0, vHdr, js))
		must(t, lukstest.WriteCopy(img, vHdr, vHdr, vHdr, js))
	}},
	{"luks2-non-compact-json-4k-token-0", "R", func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		m["tokens"] = map[string]any{"0": map[string]any{"type": "a", "keyslots": []any{}}}
		js := lukstest.Marshal(m)
		fill := 4096 - len(js)%4096
		js = bytes.Replace(js, []byte(`"type":"luks2"`), []byte(`"type":`+strings.Repeat(" ", fill)+`"luks2"`), 1)
		must(t, lukstest.WriteCopy(img, 0, 0, vHdr, js))
		must(t, lukstest.WriteCopy(img, vHdr, vHdr, vHdr, js))
	}},
}

// rawEdit rewrites the primary's compact JSON text and kills the
// secondary.
func rawEdit(edit func(js []byte) []byte) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		rawPrimary(t, img, edit(lukstest.Marshal(readMeta(t, img, 0))))
	}
}

// segField sets (or, for nil, deletes) a field of segment 0 in the primary
// and kills the secondary.
func segField(k string, v any) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		if v == nil {
			delete(seg0(m), k)
		} else {
			seg0(m)[k] = v
		}
		primaryOnly(t, img, m)
	}
}

func cfgField(k string, v any) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		lukstest.Get(m, "config")[k] = v
		primaryOnly(t, img, m)
	}
}

// topField edits both copies.
func topField(edit func(m map[string]any)) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		m := readMeta(t, img, 0)
		edit(m)
		bothCopies(t, img, m)
	}
}

// mdaCase writes both copies with metadata size mda and kills the
// secondary (or, with killPrimary, the primary).
func mdaCase(mda, shift int64, killPrimary bool, edit func(m map[string]any)) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		_, js := setMDA(t, img, mda, shift, edit)
		must(t, lukstest.WriteCopy(img, vHdr, mda, mda, js))
		must(t, lukstest.WriteCopy(img, 0, 0, mda, js))
		if killPrimary {
			must(t, lukstest.Kill(img, 0))
		} else {
			must(t, lukstest.Kill(img, mda))
		}
	}
}

// bogus sets the hdr_size of the copy at off (keeping its checksum valid
// over the area the old size covered is impossible: it is recomputed over
// nothing sensible, as the generator's bogus size leaves it).
func bogus(t *testing.T, img string, off, size int64) {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	var b [8]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(size >> (8 * i))
	}
	_, err = f.WriteAt(b[:], off+8)
	must(t, err)
}

// cryptsetupLoads reports whether the host's cryptsetup loads the header
// (luksDump validates it); run it after romboot: it may repair the image.
func cryptsetupLoads(t *testing.T, img string) (bool, string) {
	out, err := exec.Command("cryptsetup", "luksDump", img).CombinedOutput()
	return err == nil, string(out)
}

// cryptsetupOpens reports whether the host's cryptsetup opens a keyslot
// with the test passphrase.
func cryptsetupOpens(t *testing.T, img string) bool {
	cmd := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", "-", img)
	cmd.Stdin = strings.NewReader(testPass)
	return cmd.Run() == nil
}

func verdict(ok bool) string {
	if ok {
		return "accept"
	}
	return "refuse"
}

// judge compares romboot's and the host cryptsetup's verdicts on img: the
// header loads or not; when both load it, the passphrase opens a keyslot or
// not (unless romboot refuses the volume on purpose, saying why). It
// returns romboot's header and error.
func judge(t *testing.T, name, upstream, img string) (*Header, error) {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	st, _ := f.Stat()
	h, rerr := Inspect(f, st.Size())
	var rOpen bool
	if rerr == nil && h.Unusable() == nil {
		if v, err := h.Unlock([]byte(testPass), UnlockOptions{Keyslot: -1}); err == nil {
			rOpen = true
			v.Wipe()
		}
	}
	f.Close()
	csOK, out := cryptsetupLoads(t, img)
	t.Logf("VERDICT | %s | upstream %s | cryptsetup %s | romboot %s (%v)", name, upstream, verdict(csOK), verdict(rerr == nil), rerr)
	if upstream != "" && (upstream == "R") != csOK {
		t.Logf("note: host cryptsetup differs from upstream's expectation %s", upstream)
	}
	if csOK != (rerr == nil) {
		t.Fatalf("cryptsetup %s, romboot %s: %v\ncryptsetup: %s", verdict(csOK), verdict(rerr == nil), rerr, out)
	}
	if rerr != nil {
		return nil, rerr
	}
	csOpen := cryptsetupOpens(t, img)
	switch {
	case h.Unusable() != nil:
		t.Logf("romboot refuses to unlock on purpose: %v (cryptsetup test-passphrase: %v)", h.Unusable(), csOpen)
	case csOpen != rOpen:
		t.Fatalf("passphrase: cryptsetup opens %v, romboot %v", csOpen, rOpen)
	default:
		t.Logf("passphrase opens: cryptsetup %v, romboot %v", csOpen, rOpen)
	}
	return h, nil
}

// TestCryptsetupVerdicts: romboot's verdict on each case equals the host
// cryptsetup's.
func TestCryptsetupVerdicts(t *testing.T) {
	verdictBase(t)
	for _, tc := range verdictCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := vimg(t)
			tc.make(t, img)
			judge(t, tc.name, tc.upstream, img)
		})
	}
}
