package qemu_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

var unlockDone = regexp.MustCompile(`unlocking: done in ([0-9.]+)s`)

// BenchmarkUnlockInQEMU times the unlock of a /boot made with cryptsetup's
// real-world KDF cost (argon2id as cryptsetup benchmarks it on this host:
// about 0.5-1 GiB, 4 passes) inside the payload under
// QEMU, with transparent huge pages "always" (romboot's default) and
// "madvise" (the usual distro default). Run with -benchtime=1x: one boot
// per sub-benchmark. `make bench-kdf` runs it.
func BenchmarkUnlockInQEMU(b *testing.B) {
	needE2E(b)
	d := testDisk(b, "real-kdf", "--real-kdf")
	for _, thp := range []string{"always", "madvise"} {
		b.Run("thp="+thp, func(b *testing.B) {
			var total float64
			for i := 0; i < b.N; i++ {
				v := boot(b, "--disk", copyDisk(b, d), "--mem", "3072", "--append", "romboot.thp="+thp)
				v.Expect(prompt, promptTimeout)
				v.Type(passphrase)
				v.Expect("Unlocking (argon2id, ", 30*time.Second)
				seg := v.Expect("unlocking: done in", 20*time.Minute)
				_ = seg
				line := "unlocking: done in" + v.Line(10*time.Second)
				m := unlockDone.FindStringSubmatch(line)
				if m == nil {
					b.Fatalf("no unlock time in %q", line)
				}
				s, _ := strconv.ParseFloat(m[1], 64)
				total += s
				expectTarget(v)
			}
			b.ReportMetric(total/float64(b.N), "unlock-s/op")
		})
	}
}
