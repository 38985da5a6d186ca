// Package testutil holds helpers shared by romboot's tests: finding host
// tools and deciding whether a test that needs one may skip.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of a host tool. When it is missing the test is
// skipped, unless ROMBOOT_REQUIRE_TOOLS=1 (set by `make test` and CI, which
// install every tool first): then the test fails, so a missing tool can never
// turn a test green by skipping it.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	if os.Getenv("ROMBOOT_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found (scripts/install-deps installs it)", name)
	}
	t.Skipf("%s not found; run scripts/install-deps", name)
	return ""
}

// Run runs a command, failing the test with its output on error.
func Run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytesReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}
