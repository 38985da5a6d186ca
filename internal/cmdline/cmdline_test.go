package cmdline

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	p := Parse(`console=ttyS0 romboot.cmdline="root=UUID=abc ro quiet" romboot.tries=5 quiet romboot.tries=2 romboot.keyfile=/secret` + "\n")
	for k, want := range map[string]string{"console": "ttyS0", "romboot.cmdline": "root=UUID=abc ro quiet", "romboot.tries": "2", "quiet": ""} {
		if got, ok := p.Get(k); !ok || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
	if _, ok := p.Get("missing"); ok {
		t.Error("missing key found")
	}
	want := `console=ttyS0 romboot.cmdline="root=UUID=abc ro quiet" romboot.tries=5 quiet romboot.tries=2 romboot.keyfile=<redacted>`
	if got := p.Redacted(); got != want {
		t.Errorf("Redacted:\n got %s\nwant %s", got, want)
	}
}

func TestWords(t *testing.T) {
	p := Parse(`console=ttyS0 romboot.cmdline="root=UUID=abc ro" quiet romboot.x romboot.tries=2`)
	var got []string
	for _, w := range p.Words("romboot.") {
		got = append(got, w.String())
	}
	if want := `romboot.cmdline="root=UUID=abc ro" romboot.x romboot.tries=2`; strings.Join(got, " ") != want {
		t.Errorf("Words = %q, want %q", strings.Join(got, " "), want)
	}
	if n := len(p.Words("")); n != 5 {
		t.Errorf("all words: %d, want 5", n)
	}
}
