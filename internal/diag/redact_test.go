package diag

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/bootlog"
	"github.com/romboot/romboot/internal/httpd"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root=/dev/sda1 cryptkey=abc romboot.diag_token=s3cr3t quiet",
			"root=/dev/sda1 cryptkey=<redacted> romboot.diag_token=<redacted> quiet"},
		{`Kernel command line: console=ttyS0 rd.luks.key=/etc/k luks.passphrase="a b c" vconsole.keymap=us`,
			`Kernel command line: console=ttyS0 rd.luks.key=<redacted> luks.passphrase=<redacted> vconsole.keymap=us`},
		// bootinit's log line quotes the edited command line with %q.
		{`booting "Debian": /vmlinuz initrd [/initrd.img] cmdline "root=/dev/sda1 rd.luks.passphrase=hunter2 quiet"`,
			`booting "Debian": /vmlinuz initrd [/initrd.img] cmdline "root=/dev/sda1 rd.luks.passphrase=<redacted> quiet"`},
		{`cmdline "root=x luks.key=\"a b\" quiet"`, `cmdline "root=x luks.key=<redacted> quiet"`},
		{`cmdline "root=x password=hunter2"`, `cmdline "root=x password=<redacted>"`},
		{"API_TOKEN=xyz SECRET=1 pwd=2 mycreds=3", "API_TOKEN=<redacted> SECRET=<redacted> pwd=<redacted> mycreds=<redacted>"},
		{"passphrase= empty stays", "passphrase= empty stays"},
		{"a=b c==d no secrets", "a=b c==d no secrets"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestNoSecretAnywhere: a secret on the command line, in the boot log
// (an edited command line) and in the state reaches no page.
func TestNoSecretAnywhere(t *testing.T) {
	root := fixtureRoot(t)
	if err := os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte("console=ttyS0 romboot.diag_token=tok3n rd.luks.key=keyval1 cryptpass=\"pp with space\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := bootlog.New(nil)
	log.Printf("booting %q: %s initrd %v cmdline %q", "Debian", "/vmlinuz", []string{"/initrd"}, "root=/dev/sda1 luks.passphrase=hunter2 rd.luks.key=\"keyval2 x\"")
	st := &State{}
	st.Set("booting with secret=keyval3")
	h := Handler(Sources{Version: "v", Log: log, State: st, Root: root})
	for _, path := range []string{"/", "/diag.json", "/log", "/dmesg"} {
		var resp httpd.Response
		resp.Reset()
		h.ServeHTTP(&httpd.Request{Path: []byte(path), Target: []byte(path)}, &resp)
		for _, secret := range []string{"tok3n", "keyval1", "pp with space", "hunter2", "keyval2", "keyval3"} {
			if strings.Contains(string(resp.Body), secret) {
				t.Errorf("%s shows %q", path, secret)
			}
		}
	}
}
