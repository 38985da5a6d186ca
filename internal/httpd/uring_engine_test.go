//go:build !nouring

package httpd

import (
	"testing"

	"github.com/romboot/romboot/internal/uring"
)

// uringBuilt: this build has the io_uring engine (tests that ask for it
// are skipped in a nouring build, which has TestUringLeftOut instead).
const uringBuilt = true

// TestUringDefersTaskWork: on Linux 6.1 and later the engine's ring runs
// completion work only in the loop's own wait (single issuer, deferred task
// work, enabled from the loop's thread), and serves both kinds of clients
// that way; on an older kernel it falls back (TestUringOnOldKernel).
func TestUringDefersTaskWork(t *testing.T) {
	if !kernelAtLeast(6, 1) {
		t.Skip("deferred task work needs Linux 6.1")
	}
	s := start(t, "uring", Config{})
	want := uint32(uring.SetupSingleIssuer | uring.SetupDeferTaskrun)
	if got := s.(*uringServer).ring.Flags(); got&want != want {
		t.Fatalf("ring flags %#x, want %#x set", got, want)
	}
	load(t, s, 5000, 50, true)
	load(t, s, 5000, 50, false)
	closeWithUnreadData(t, s)
}
