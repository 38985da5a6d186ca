package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/romboot/romboot/internal/bootentry"
)

type entryJSON struct {
	Title   string   `json:"title"`
	ID      string   `json:"id,omitempty"`
	Kernel  string   `json:"kernel"`
	Initrds []string `json:"initrds"`
	Cmdline string   `json:"cmdline"`
	Source  string   `json:"source"`
	Default bool     `json:"default"`
	Broken  string   `json:"broken,omitempty"`
}

type menuJSON struct {
	Dir     string      `json:"dir"`
	Timeout int         `json:"timeout"`
	Entries []entryJSON `json:"entries"`
	Error   string      `json:"error,omitempty"`
}

func findEntries(dir string) menuJSON {
	res := menuJSON{Dir: dir, Timeout: -1, Entries: []entryJSON{}}
	m, err := bootentry.Find(os.DirFS(dir), bootentry.Options{})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Timeout = m.Timeout
	for i, e := range m.Entries {
		res.Entries = append(res.Entries, entryJSON{Title: e.Title, ID: e.ID, Kernel: e.Kernel, Initrds: append([]string{}, e.Initrds...),
			Cmdline: e.Cmdline, Source: e.Source, Default: i == m.Default, Broken: e.Broken})
	}
	return res
}

func printEntries(w io.Writer, m menuJSON) {
	if m.Error != "" {
		fmt.Fprintf(w, "%s: %s\n", m.Dir, m.Error)
		return
	}
	fmt.Fprintf(w, "Boot entries romboot finds in %s", m.Dir)
	if m.Timeout >= 0 {
		fmt.Fprintf(w, " (timeout %d s)", m.Timeout)
	}
	fmt.Fprintln(w, ":")
	for i, e := range m.Entries {
		mark := " "
		if e.Default {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %d) %s\n", mark, i+1, e.Title)
		fmt.Fprintf(w, "      kernel  %s\n", e.Kernel)
		if len(e.Initrds) > 0 {
			fmt.Fprintf(w, "      initrd  %s\n", strings.Join(e.Initrds, " "))
		}
		fmt.Fprintf(w, "      cmdline %s\n", e.Cmdline)
		if e.Broken != "" {
			fmt.Fprintf(w, "      BROKEN: %s\n", e.Broken)
		}
	}
}

func entries(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("entries", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON output")
	dir, err := parseWithPath(fs, args)
	if err != nil {
		return err
	}
	m := findEntries(dir)
	if *asJSON {
		return writeJSON(stdout, m)
	}
	printEntries(stdout, m)
	if m.Error != "" {
		return fmt.Errorf("no boot entries")
	}
	return nil
}

// check finds the device behind the mounted /boot (through device-mapper
// slaves), dumps its LUKS header and lists the entries of /boot.
func check(args []string, root string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON output")
	k := kernelFlags(fs)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := k.valid(); err != nil {
		return err
	}
	boot := filepath.Join(root, "boot")
	res := struct {
		BootSource string   `json:"boot_source"`
		LUKSDevice string   `json:"luks_device,omitempty"`
		LUKS       *dump    `json:"luks,omitempty"`
		Supported  bool     `json:"supported"`
		Problems   []string `json:"problems,omitempty"`
		Entries    menuJSON `json:"entries"`
	}{}
	src, err := mountSource(filepath.Join(root, "proc/mounts"), "/boot")
	if err != nil {
		return err
	}
	res.BootSource = src
	dev, err := luksBehind(root, src)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	} else {
		res.LUKSDevice = dev
		if f, h, err := openHeader(dev, true); err != nil {
			res.Problems = append(res.Problems, err.Error())
		} else {
			f.Close()
			d := newDump(dev, h, *k)
			res.LUKS = &d
			res.Problems = append(res.Problems, d.Problems...)
		}
	}
	res.Entries = findEntries(boot)
	if res.Entries.Error != "" {
		res.Problems = append(res.Problems, res.Entries.Error)
	}
	res.Supported = len(res.Problems) == 0
	if *asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "/boot is mounted from %s\n", src)
	if res.LUKS != nil {
		printDump(stdout, *res.LUKS)
	}
	printEntries(stdout, res.Entries)
	if res.Supported {
		fmt.Fprintln(stdout, "romboot can open this /boot and boot its default entry.")
		return nil
	}
	return fmt.Errorf("romboot cannot boot this /boot: %s", strings.Join(res.Problems, "; "))
}

// mountSource returns the device mounted at target according to mounts.
func mountSource(mounts, target string) (string, error) {
	f, err := os.Open(mounts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	src := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[1] == target {
			src = fields[0] // the last mount wins
		}
	}
	if src == "" {
		return "", fmt.Errorf("%s is not a separate mount: romboot needs /boot on its own LUKS partition", target)
	}
	return src, nil
}

// luksBehind follows a device-mapper device to the block device under it
// (/sys/block/dm-N/slaves/*).
func luksBehind(root, src string) (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(root, strings.TrimPrefix(src, "/")))
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", src, err)
	}
	name := filepath.Base(real)
	if !strings.HasPrefix(name, "dm-") {
		return "", fmt.Errorf("/boot (%s) is not on device-mapper: it is not encrypted", src)
	}
	slaves, err := os.ReadDir(filepath.Join(root, "sys/block", name, "slaves"))
	if err != nil || len(slaves) != 1 {
		return "", fmt.Errorf("%s: want exactly one device under it, found %d", name, len(slaves))
	}
	return filepath.Join(root, "dev", slaves[0].Name()), nil
}
