package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/romboot/romboot/internal/luks"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig("console=ttyS0 quiet")
	if err != nil || c.tries != 3 || c.wait != 10*time.Second || c.keyslot != -1 || c.timeout != -1 || c.spec != nil {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parseConfig(`romboot.boot=PARTUUID=abc romboot.tries=5 romboot.wait=2.5 romboot.keyslot=1 romboot.timeout=0 romboot.entry=2 romboot.cmdline_append=single romboot.cmdline="root=/dev/sda2 ro"`)
	if err != nil {
		t.Fatal(err)
	}
	if c.spec.String() != "PARTUUID=abc" || c.tries != 5 || c.wait != 2500*time.Millisecond || c.keyslot != 1 || c.timeout != 0 ||
		c.entry != "2" || c.append != "single" || c.cmdline != "root=/dev/sda2 ro" {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{"romboot.boot=sda1", "romboot.tries=0", "romboot.tries=x", "romboot.wait=-1", "romboot.keyslot=32", "romboot.timeout=31"} {
		if _, err := parseConfig(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHints(t *testing.T) {
	if h := hintFor(errors.New("no LUKS partition found after waiting 10s for disks")); !strings.Contains(h, "romboot.boot=") {
		t.Errorf("no hint for a missing disk: %q", h)
	}
	if h := hintFor(&luks.RequirementsError{Requirements: []string{"online-reencrypt-v2"}}); h == "" {
		t.Error("no hint for requirements")
	}
}
