package handoff

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/romboot/romboot/internal/initrd"
)

// FuzzFind: any crypttab and command line give volumes whose key files
// stay inside their directory, and an archive the reader reads back.
func FuzzFind(f *testing.F) {
	f.Add([]byte("root_crypt UUID=1 none luks,discard\n"), "rd.luks.uuid=2", true)
	f.Add([]byte("a\\040b /dev/vda2 - luks\n# c\n"), "rd.luks.name=3=x rd.luks.crypttab=no", false)
	f.Fuzz(func(t *testing.T, tab []byte, cmd string, tools bool) {
		files := []file{{name: etcCrypttab, mode: 0o100644, data: tab}, {name: cryptrootTab, mode: 0o100644, data: tab}}
		if tools {
			files = append(files, file{name: cryptrootScript, mode: 0o100755})
		} else {
			files = append(files, file{name: systemdBinaries[0], mode: 0o100755})
		}
		plan, err := Find(writeNewc(files), cmd, initrd.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range plan.Volumes {
			if d := path.Dir(v.KeyFile); strings.Contains(v.Name, "/") || (d != cryptrootKeys && d != systemdKeysDir) || path.Clean(v.KeyFile) != v.KeyFile {
				t.Fatalf("volume %q key file %q escapes its directory", v.Name, v.KeyFile)
			}
		}
		if len(plan.Volumes) == 0 {
			return
		}
		arc, err := plan.Archive(plan.Volumes, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		rd, err := initrd.Read(arc, func(initrd.Entry) bool { return true }, initrd.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range plan.Volumes {
			if !bytes.Equal(rd.Files[v.KeyFile], []byte("k")) {
				t.Fatalf("key file %q not read back", v.KeyFile)
			}
		}
	})
}
