//go:build nouring

package httpd

import "testing"

const uringBuilt = false

// TestUringLeftOut: in a build without the io_uring engine (the X220
// ROM), a command line that asks for it still gets a diagnostics server:
// the pool engine, with one line that says why.
func TestUringLeftOut(t *testing.T) {
	expectFallback(t, nil, "not built into this payload")
}
