// Command mkinitramfs writes a reproducible initramfs: a newc cpio archive
// (u-root's pkg/cpio) from a file list, compressed with xz using the CRC32
// check the kernel's decompressor requires. Two runs on the same inputs give
// byte-identical output: entries sorted, owner root, fixed mtimes.
//
//	mkinitramfs -list initramfs/files.txt -D BOOTINIT=build/bootinit -o build/initramfs.cpio.xz
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

type defines map[string]string

func (d defines) String() string { return fmt.Sprint(map[string]string(d)) }
func (d defines) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	d[k] = v
	return nil
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkinitramfs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.String("list", "", "file list (see initramfs/files.txt)")
	out := fs.String("o", "", "output file")
	comp := fs.String("compress", "xz", "xz or none")
	xzArgs := fs.String("xz-args", "--check=crc32 --x86 --lzma2=preset=9e,dict=8MiB", "xz options (the kernel needs --check=crc32 or none)")
	defs := defines{}
	fs.Var(defs, "D", "NAME=VALUE for ${NAME} in the list (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list == "" || *out == "" {
		return errors.New("usage: mkinitramfs -list FILE [-D NAME=VALUE]… -o OUT")
	}
	mtime, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	lf, err := os.Open(*list)
	if err != nil {
		return err
	}
	defer lf.Close()
	entries, err := parseList(lf, defs)
	if err != nil {
		return fmt.Errorf("%s: %w", *list, err)
	}
	var archive bytes.Buffer
	if err := writeArchive(&archive, entries, mtime); err != nil {
		return err
	}
	data := archive.Bytes()
	if *comp == "xz" {
		if data, err = xz(data, strings.Fields(*xzArgs)); err != nil {
			return err
		}
	} else if *comp != "none" {
		return fmt.Errorf("unknown -compress %q", *comp)
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

func sourceDateEpoch() (uint64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return n, nil
}

// entry is one line of the list.
type entry struct {
	kind   string // dir, nod, file, slink
	path   string
	mode   uint64
	source string // file: host path; slink: target
	dev    byte   // nod: 'c' or 'b'
	major  uint64
	minor  uint64
}

func parseList(r io.Reader, defs defines) ([]entry, error) {
	var out []entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		bad := func(why string) error { return fmt.Errorf("line %d: %s: %q", n, why, line) }
		var e entry
		e.kind = f[0]
		want := map[string]int{"dir": 3, "nod": 6, "file": 4, "slink": 4}[e.kind]
		if want == 0 {
			return nil, bad("unknown entry type")
		}
		if len(f) != want {
			return nil, bad(fmt.Sprintf("want %d fields", want))
		}
		e.path = f[1]
		if !strings.HasPrefix(e.path, "/") || path.Clean(e.path) != e.path || e.path == "/" {
			return nil, bad("path must be absolute and clean")
		}
		m, err := strconv.ParseUint(f[len(f)-1], 8, 32)
		if err != nil || m > 0o7777 {
			if e.kind != "nod" {
				return nil, bad("bad mode")
			}
		}
		e.mode = m
		switch e.kind {
		case "nod":
			if e.mode, err = strconv.ParseUint(f[2], 8, 32); err != nil || e.mode > 0o7777 {
				return nil, bad("bad mode")
			}
			if f[3] != "c" && f[3] != "b" {
				return nil, bad("device type must be c or b")
			}
			e.dev = f[3][0]
			e.major, err = strconv.ParseUint(f[4], 10, 32)
			if err == nil {
				e.minor, err = strconv.ParseUint(f[5], 10, 32)
			}
			if err != nil {
				return nil, bad("bad device number")
			}
		case "file", "slink":
			e.source, err = expandVars(f[2], defs)
			if err != nil {
				return nil, bad(err.Error())
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func expandVars(s string, defs defines) (string, error) {
	var missing []string
	r := os.Expand(s, func(k string) string {
		v, ok := defs[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined ${%s} (pass -D %s=…)", missing[0], missing[0])
	}
	return r, nil
}

// writeArchive writes the entries, plus any missing parent directories,
// sorted by path, as newc records with fixed metadata.
func writeArchive(w io.Writer, entries []entry, mtime uint64) error {
	byPath := map[string]entry{}
	for _, e := range entries {
		if _, dup := byPath[e.path]; dup {
			return fmt.Errorf("%s listed twice", e.path)
		}
		byPath[e.path] = e
	}
	for _, e := range entries {
		for d := path.Dir(e.path); d != "/"; d = path.Dir(d) {
			if p, ok := byPath[d]; ok {
				if p.kind != "dir" {
					return fmt.Errorf("%s is inside %s, which is not a directory", e.path, d)
				}
				continue
			}
			byPath[d] = entry{kind: "dir", path: d, mode: 0o755}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rw := cpio.Newc.Writer(w)
	for i, p := range paths {
		e := byPath[p]
		info := cpio.Info{Ino: uint64(i + 1), MTime: mtime, NLink: 1, Name: strings.TrimPrefix(p, "/")}
		var rec cpio.Record
		switch e.kind {
		case "dir":
			info.Mode = cpio.S_IFDIR | e.mode
			info.NLink = 2
			rec = cpio.Record{Info: info}
		case "nod":
			info.Mode = cpio.S_IFCHR | e.mode
			if e.dev == 'b' {
				info.Mode = cpio.S_IFBLK | e.mode
			}
			info.Rmajor, info.Rminor = e.major, e.minor
			rec = cpio.Record{Info: info}
		case "slink":
			info.Mode = cpio.S_IFLNK | 0o777
			rec = cpio.StaticRecord([]byte(e.source), info)
		case "file":
			data, err := os.ReadFile(e.source)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			info.Mode = cpio.S_IFREG | e.mode
			rec = cpio.StaticRecord(data, info)
		}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return cpio.WriteTrailer(rw)
}

func xz(data []byte, args []string) ([]byte, error) {
	cmd := exec.Command("xz", append([]string{"-c", "-T1"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("xz %v: %v: %s", args, err, errb.String())
	}
	return out.Bytes(), nil
}
