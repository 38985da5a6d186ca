//go:build !nohandoff

package main

import (
	"testing"

	"github.com/romboot/romboot/internal/luks"
)

// One KDF per volume: the keyslot Unlock would try first.
func TestFirstKeyslot(t *testing.T) {
	for _, tc := range []struct {
		slots []luks.Keyslot
		want  int
	}{
		{[]luks.Keyslot{{Index: 0, Priority: 1, Bound: true}, {Index: 1, Priority: 1, Bound: true}}, 0},
		{[]luks.Keyslot{{Index: 0, Priority: 1, Bound: true}, {Index: 3, Priority: 2, Bound: true}}, 3},
		{[]luks.Keyslot{{Index: 0, Priority: 0, Bound: true}, {Index: 1, Priority: 1, Bound: false}, {Index: 2, Priority: 1, Bound: true, Problem: "x"}, {Index: 4, Priority: 1, Bound: true}}, 4},
		{[]luks.Keyslot{{Index: 0, Priority: 0, Bound: true}}, -1},
	} {
		if got := firstKeyslot(&luks.Header{Keyslots: tc.slots}); got != tc.want {
			t.Errorf("%+v: got %d, want %d", tc.slots, got, tc.want)
		}
	}
}
