package bootlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStagesAndLines(t *testing.T) {
	var out bytes.Buffer
	l := New(&out)
	clock := time.Duration(0)
	l.now = func() time.Duration { return clock }
	end := l.Stage("mount")
	clock += 1500 * time.Millisecond
	end(nil)
	end = l.Stage("unlock")
	clock += 2 * time.Second
	end(errors.New("wrong passphrase"))
	st := l.Stages()
	if len(st) != 2 || st[0].Duration != 1500*time.Millisecond || st[1].Start != 1500*time.Millisecond || st[1].Err == "" {
		t.Fatalf("stages %+v", st)
	}
	tl := l.Timeline()
	if !strings.Contains(tl, "+1.500s") || !strings.Contains(tl, "unlock  FAILED") {
		t.Fatalf("timeline:\n%s", tl)
	}
	if !strings.Contains(out.String(), "[    1.500000] romboot: mount: done in 1.500s") {
		t.Fatalf("console output:\n%s", out.String())
	}
	if len(l.Lines()) != 4 {
		t.Fatalf("lines %q", l.Lines())
	}
}
