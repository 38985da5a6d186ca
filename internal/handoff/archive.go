package handoff

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Archive builds the newc cpio to append to the initrd: for each of vols
// (volumes of this plan the passphrase was checked to open), the passphrase
// as its key file, and for initramfs-tools the crypttab naming them. The
// archive is uncompressed and its length a multiple of 4; it goes after
// Padding(len(initrd)) zero bytes. The caller wipes it (Wipe) once the kernel has
// copied it; nothing else holds the passphrase.
func (p *Plan) Archive(vols []Volume, pass []byte) ([]byte, error) {
	if len(vols) == 0 {
		return nil, errors.New("no volume to hand over")
	}
	var files []file
	dirs := map[string]bool{}
	addDirs := func(p string) {
		var parents []string
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if !dirs[parents[i]] {
				dirs[parents[i]] = true
				mode := uint32(0o40755)
				if parents[i] == cryptrootKeys || parents[i] == systemdKeysDir {
					mode = 0o40700
				}
				files = append(files, file{name: parents[i], mode: mode})
			}
		}
	}
	keys := map[int]string{}
	for _, v := range vols {
		if !validName(v.Name) || !strings.HasSuffix(v.KeyFile, "/"+v.Name+".key") {
			return nil, fmt.Errorf("volume %q: bad key file %q", v.Name, v.KeyFile)
		}
		addDirs(v.KeyFile)
		files = append(files, file{name: v.KeyFile, mode: 0o100400, data: pass})
		keys[v.line] = "/" + v.KeyFile
	}
	if p.Flavor == InitramfsTools {
		tab := p.rewriteCrypttab(keys)
		addDirs(cryptrootTab)
		files = append(files, file{name: cryptrootTab, mode: 0o100644, data: tab})
	}
	return writeNewc(files), nil
}

// Padding is how many zero bytes go between an initrd of n bytes and the
// archive: the kernel reads an uncompressed archive only at a 4-byte
// boundary of the whole initrd, and skips zeros.
func Padding(n int64) int { return int((4 - n%4) % 4) }

// rewriteCrypttab is cryptroot/crypttab with the key field of the given
// lines set to their key files; every other byte as it was.
func (p *Plan) rewriteCrypttab(keys map[int]string) []byte {
	out := make([]string, len(p.tab))
	for i, l := range p.tab {
		k, ok := keys[i]
		if !ok {
			out[i] = l
			continue
		}
		f := strings.Fields(l)
		if len(f) < 3 {
			out[i] = l
			continue
		}
		f[2] = k
		out[i] = strings.Join(f, " ")
	}
	return []byte(strings.Join(out, "\n"))
}

// Wipe overwrites an archive (or any key buffer) with zeros.
func Wipe(b []byte) {
	clear(b)
}

type file struct {
	name string
	mode uint32
	data []byte
}

// writeNewc writes files as one newc ("070701") archive with its trailer,
// in one allocation of the exact size (no copy of the key is left behind by
// a growing buffer). Entries are owned by root, dated 0, one link each.
func writeNewc(files []file) []byte {
	files = append(files, file{name: "TRAILER!!!"})
	size := 0
	for _, f := range files {
		size += align4(110+len(f.name)+1) + align4(len(f.data))
	}
	b := make([]byte, 0, size)
	for i, f := range files {
		ino := uint32(0x7e000000 + i) // far from the inode numbers of the archives before
		if f.name == "TRAILER!!!" {
			ino = 0
		}
		nlink := uint32(1)
		if f.mode&0o170000 == 0o40000 {
			nlink = 2
		}
		b = append(b, "070701"...)
		for _, v := range []uint32{ino, f.mode, 0, 0, nlink, 0, uint32(len(f.data)), 0, 0, 0, 0, uint32(len(f.name) + 1), 0} {
			b = appendHex8(b, v)
		}
		b = append(b, f.name...)
		b = append(b, 0)
		b = pad(b)
		b = append(b, f.data...)
		b = pad(b)
	}
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendHex8(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for s := 28; s >= 0; s -= 4 {
		b = append(b, digits[v>>uint(s)&15])
	}
	return b
}
