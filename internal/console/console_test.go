package console

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func pipeConsole(t *testing.T, input string) (*Console, *bytes.Buffer) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.WriteString(input); w.Close() }()
	t.Cleanup(func() { r.Close() })
	var out bytes.Buffer
	return &Console{In: r, Out: &out}, &out
}

func TestPassphraseAndMenu(t *testing.T) {
	c, out := pipeConsole(t, "s3cret\x7fT\nx\n\n7\n2\nR\n")
	p, err := c.ReadPassphrase("Enter passphrase for /dev/vda1: ")
	if err != nil || string(p) != "s3creT" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	if strings.Contains(out.String(), "s3cre") {
		t.Fatal("passphrase echoed")
	}
	if k, err := c.Menu("Recovery", []MenuItem{{'r', "retry"}, {'b', "reboot"}}); err != nil || k != 'r' {
		// "x" is unknown, "" is ignored, then "7" unknown... the menu keeps
		// asking until a known key; the first known one in the input is R.
		t.Fatalf("menu %q, %v", k, err)
	}
	if !strings.Contains(out.String(), `Unknown choice "x"`) {
		t.Fatalf("no complaint about x: %s", out)
	}
}

func TestChoose(t *testing.T) {
	c, out := pipeConsole(t, "0\nabc\n2\n")
	n, err := c.Choose("Which?", []string{"a", "b"})
	if err != nil || n != 1 {
		t.Fatalf("choose %d %v", n, err)
	}
	if strings.Count(out.String(), "Which?") != 3 {
		t.Fatalf("did not ask again:\n%s", out)
	}
}
