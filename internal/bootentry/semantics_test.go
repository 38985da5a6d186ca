package bootentry

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func kernelsFS(cfgPath, cfg string, extra map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{cfgPath: {Data: []byte(cfg)}}
	for _, f := range []string{"k", "k1", "k2", "k3", "i", "i1", "i2", "ucode", "t.img", "vmlinux"} {
		fsys[f] = &fstest.MapFile{Data: []byte("x")}
	}
	for k, v := range extra {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

// TestGrubSemantics: one GRUB rule per case, judged by what GRUB does.
func TestGrubSemantics(t *testing.T) {
	cases := []struct {
		name    string
		cfg     string
		extra   map[string]string
		entries []ent
		def     int
	}{
		{"top-level entry sees unexported variables, with their final values",
			"set opts=quiet\nmenuentry A { linux /k root=/dev/sda1 $opts $late }\nset late=late\n",
			nil, []ent{{"A", "", "/k", nil, "root=/dev/sda1 quiet late", ""}}, 0},
		{"submenu sees only exported variables",
			"set hidden=h\nset shown=s\nexport shown\nsubmenu S { menuentry A { linux /k x$hidden $shown } }\n",
			nil, []ent{{"S > A", "", "/k", nil, "x s", ""}}, 0},
		{"a variable set in the submenu body is seen by its entries",
			"submenu S { set o=inner; menuentry A { linux /k $o } }\n",
			nil, []ent{{"S > A", "", "/k", nil, "inner", ""}}, 0},
		{"entries do not leak variables into each other",
			"menuentry A { set x=a; linux /k $x }\nmenuentry B { linux /k b$x }\n",
			nil, []ent{{"A", "", "/k", nil, "a", ""}, {"B", "", "/k", nil, "b", ""}}, 0},
		{"load_env values (kernelopts) reach the entry",
			"load_env\nmenuentry A { linux /k $kernelopts }\n",
			map[string]string{"grub/grubenv": "# GRUB Environment Block\nkernelopts=root=/dev/vda2 ro quiet\n####"},
			[]ent{{"A", "", "/k", nil, "root=/dev/vda2 ro quiet", ""}}, 0},
		{"load_env with a whitelist loads only those",
			"load_env -f $prefix/grubenv a\nmenuentry A { linux /k $a $b }\n",
			map[string]string{"grub/grubenv": "a=1\nb=2\n"},
			[]ent{{"A", "", "/k", nil, "1", ""}}, 0},
		{"braces are tokens wherever they stand",
			"menuentry 'x'{linux /vmlinux a;}\nmenuentry \"y\" --id=y{\nlinux /vmlinux b\n}\nmenuentry z{ linux /vmlinux c}",
			nil, []ent{{"x", "", "/vmlinux", nil, "a", ""}, {"y", "y", "/vmlinux", nil, "b", ""}, {"z", "", "/vmlinux", nil, "c", ""}}, 0},
		{"a block after any command is GRUB syntax; a menuentry without one adds nothing; function { on the next line",
			"insmod gzio { echo ignored }\nmenuentry Nope\nfunction f\n{\n menuentry F { linux /k }\n}\nf\n",
			nil, []ent{{"F", "", "/k", nil, "", ""}}, 0},
		{"quoted braces and ${} stay in words",
			"set a=1\nmenuentry 'x{y}' { linux /k \"{q}\" ${a} '}' }\n",
			nil, []ent{{"x{y}", "", "/k", nil, "{q} 1 }", ""}}, 0},
		{"test: -a binds tighter than -o, ! negates the next term, parentheses group",
			"if [ a = b -o x = x -a ! y = z ]; then menuentry T1 { linux /k }; fi\n" +
				"if [ ( a = b -o x = x ) -a a = b ]; then menuentry F1 { linux /k }; fi\n" +
				"if test ! -z \"$unset\" -o -n nonempty; then menuentry T2 { linux /k }; fi\n" +
				"if [ -f /k -a ! -d /k ]; then menuentry T3 { linux /k }; fi\n" +
				"if [ \"\" ]; then menuentry F2 { linux /k }; fi\n" +
				"if [ x ]; then menuentry T4 { linux /k }; fi\n" +
				"if [ 10 -gt 9 -a abc \\< abd ]; then menuentry T5 { linux /k }; fi\n" +
				"if [ x = x; then menuentry T6 { linux /k }; fi\n",
			nil, []ent{{"T1", "", "/k", nil, "", ""}, {"T2", "", "/k", nil, "", ""}, {"T3", "", "/k", nil, "", ""}, {"T4", "", "/k", nil, "", ""}, {"T5", "", "/k", nil, "", ""}, {"T6", "", "/k", nil, "", ""}}, 0},
		{"for loops register an entry per word; the entry's $2 is its argument",
			"for v in 1 2 3; do menuentry \"L $v\" $v { linux /k$2 n=$2 }; done\nset default=2\n",
			nil, []ent{{"L 1", "", "/k1", nil, "n=1", ""}, {"L 2", "", "/k2", nil, "n=2", ""}, {"L 3", "", "/k3", nil, "n=3", ""}}, 2},
		{"while/until with break",
			"n=x\nwhile true; do n=\"${n}x\"; if [ $n = xxx ]; then break; fi; done\nmenuentry $n { linux /k }\n",
			nil, []ent{{"xxx", "", "/k", nil, "", ""}}, 0},
		{"break outside a loop and return outside a function stop nothing",
			"break\nreturn\nfunction f { return; menuentry Never { linux /k } }\nf\nmenuentry A { linux /k }\n",
			nil, []ent{{"A", "", "/k", nil, "", ""}}, 0},
		{"positional parameters past 9",
			"function f { menuentry \"${10}\" \"$#\" { linux /k $2 } }\nf 1 2 3 4 5 6 7 8 9 ten eleven\n",
			nil, []ent{{"ten", "", "/k", nil, "11", ""}}, 0},
		{"--users with an empty value, --unrestricted, --id= empty",
			"menuentry A --users '' --unrestricted { linux /k a }\nmenuentry --id= B { linux /k b }\nmenuentry C --users \"\" --id c { linux /k c }\n",
			nil, []ent{{"A", "", "/k", nil, "a", ""}, {"B", "", "/k", nil, "b", ""}, {"C", "c", "/k", nil, "c", ""}}, 0},
		{"an unknown option makes GRUB refuse the entry; -- ends the options",
			"menuentry A --bogus { linux /k a }\nmenuentry -- --B { linux /k b }\n",
			nil, []ent{{"--B", "", "/k", nil, "b", ""}}, 0},
		{"menu positions count across if blocks and functions",
			"function add { menuentry \"$1\" { linux /k2 } }\nif true; then menuentry A { linux /k }; fi\nadd B\nif [ x = x ]; then if true; then menuentry C { linux /k3 }; fi; fi\nset default=2\n",
			nil, []ent{{"A", "", "/k", nil, "", ""}, {"B", "", "/k2", nil, "", ""}, {"C", "", "/k3", nil, "", ""}}, 2},
		{"default names a submenu entry by position, title path and id; >> is a > in a title",
			"menuentry A { linux /k }\nsubmenu 'S>T' { menuentry B --id b { linux /k1 }; menuentry C { linux /k2 } }\nset default='S>>T>C'\n",
			nil, []ent{{"A", "", "/k", nil, "", ""}, {"S>T > B", "b", "/k1", nil, "", ""}, {"S>T > C", "", "/k2", nil, "", ""}}, 2},
		{`\x20 outside quotes is x20 (GRUB's lexer: a backslash quotes the next character)`,
			"menuentry A { linux /k a\\x20b \"c\\x20d\" e\\ f }\n",
			nil, []ent{{"A", "", "/k", nil, `ax20b c\x20d "e f"`, ""}}, 0},
		{"an argument with a space is quoted on the kernel command line",
			"menuentry A { linux /k \"acpi_osi=Windows 2009\" 'say \"hi\"' }\n",
			nil, []ent{{"A", "", "/k", nil, `"acpi_osi=Windows 2009" "say \"hi\""`, ""}}, 0},
		{"unquoted variables split into words, empty ones vanish, quoted empty stays",
			"set v='a  b'\nset e=\nmenuentry A { linux /k $v $e \"$e\"x; initrd /i $e /ucode }\n",
			nil, []ent{{"A", "", "/k", []string{"/i", "/ucode"}, "a b x", ""}}, 0},
		{"source: relative to the config directory, missing file is no error",
			"source extra.cfg\nsource /grub/missing.cfg\nsource $prefix/more.cfg\nmenuentry Last { linux /k $fromextra }\n",
			map[string]string{"grub/extra.cfg": "set fromextra=yes\nmenuentry Extra { linux /k1 }\n", "grub/more.cfg": "menuentry More { linux /k2 }\n"},
			[]ent{{"Extra", "", "/k1", nil, "", ""}, {"More", "", "/k2", nil, "", ""}, {"Last", "", "/k", nil, "yes", ""}}, 0},
		{"configfile: the file runs with the exported variables only",
			"set a=1\nset b=2\nexport b\nconfigfile /grub/next.cfg\n",
			map[string]string{"grub/next.cfg": "menuentry N { linux /k x$a $b }\n"},
			[]ent{{"N", "", "/k", nil, "x 2", ""}}, 0},
		{"blscfg: fields expanded, empty words dropped, title as written, devicetree ignored",
			"set kernelopts='root=/dev/vda2 ro'\nset tuned_initrd=\nblscfg\n",
			map[string]string{"loader/entries/a.conf": "title Plain Title\nversion 2\nlinux /k\ninitrd /i $tuned_initrd\noptions $kernelopts $tuned_params extra\ndevicetree $dtb\n",
				"loader/entries/b.conf": "title B\nversion 10\nlinux /k1\noptions \"quoted arg\"\n",
				"loader/entries/c.conf": "title $title_is_literal\nversion 1\nlinux ${bootdir}/k2\ninitrd $bootdir/i1 ${more}\n"},
			[]ent{{"B", "b", "/k1", nil, `"quoted arg"`, ""}, {"Plain Title", "a", "/k", []string{"/i"}, "root=/dev/vda2 ro extra", ""}, {"$title_is_literal", "c", "/k2", []string{"/i1"}, "", ""}}, 0},
		{"blscfg without versions sorts by file name, newest first",
			"blscfg\nset default=x-6.10\n",
			map[string]string{"loader/entries/x-6.9.conf": "linux /k1\n", "loader/entries/x-6.10.conf": "linux /k2\n"},
			[]ent{{"/k2", "x-6.10", "/k2", nil, "", ""}, {"/k1", "x-6.9", "/k1", nil, "", ""}}, 0},
		{"non-Linux loaders are listed, not bootable",
			"menuentry W { chainloader /EFI/x.efi }\nmenuentry M { multiboot /xen.gz }\nmenuentry L { linux /k }\n",
			nil, []ent{{"W", "", "", nil, "", "chainloader"}, {"M", "", "", nil, "", "multiboot"}, {"L", "", "/k", nil, "", ""}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Find(kernelsFS("grub/grub.cfg", tc.cfg, tc.extra), Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, m, tc.entries, tc.def, -1)
		})
	}
}

// TestGrubLimits: scripts that would run forever or eat memory end in an
// error, quickly.
func TestGrubLimits(t *testing.T) {
	for name, cfg := range map[string]string{
		"doubling variable":  "x=aaaaaaaa\nwhile true; do x=\"$x$x\"; done\nmenuentry A { linux /k }\n",
		"doubling in a for":  "x=a\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do x=$x$x; done\n",
		"endless loop":       "while true; do true; done\n",
		"recursive function": "function f { f; }\nf\n",
		"recursive source":   "source /grub/grub.cfg\nmenuentry A { linux /k }\n",
		"entry flood":        "function f { menuentry a { linux /k }; menuentry b { linux /k }; f; f; }\nf\n",
		"recursive submenu":  "function f { submenu s { f } }\nf\n",
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := parseGrub(kernelsFS("grub/grub.cfg", cfg, nil), "grub/grub.cfg", []byte(cfg))
			if !errors.Is(err, errLimit) {
				t.Fatalf("err %v, want a resource limit error", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestGrubSyntaxErrors: broken files are errors, not half menus.
func TestGrubSyntaxErrors(t *testing.T) {
	for _, cfg := range []string{"menuentry 'x' {", "}", "if [ a ]; then", "menuentry \"unterminated", "for x in a b; do", "while true; do", "insmod x {", "menuentry x { linux /k", "function { }", "echo ${unterminated"} {
		if _, err := parseGrub(fstest.MapFS{}, "grub/grub.cfg", []byte(cfg)); err == nil {
			t.Errorf("%q: no error", cfg)
		}
	}
}

// TestSyslinuxSemantics: one syslinux rule per case.
func TestSyslinuxSemantics(t *testing.T) {
	cases := []struct {
		name    string
		cfg     string
		extra   map[string]string
		entries []ent
		def     int
	}{
		{"global APPEND and INITRD are inherited; APPEND - means none",
			"APPEND root=/dev/sda1 quiet\nINITRD /i\nLABEL a\n LINUX /k\nLABEL b\n LINUX /k1\n APPEND single\nLABEL c\n LINUX /k2\n APPEND -\n INITRD /i1,/i2\n",
			nil, []ent{{"a", "a", "/k", []string{"/i"}, "root=/dev/sda1 quiet", ""}, {"b", "b", "/k1", []string{"/i"}, "single", ""}, {"c", "c", "/k2", []string{"/i1", "/i2"}, "", ""}}, 0},
		{"words after the image on the KERNEL line come before APPEND",
			"LABEL a\n KERNEL /k quiet\n APPEND root=/dev/sda1\n",
			nil, []ent{{"a", "a", "/k", nil, "quiet root=/dev/sda1", ""}}, 0},
		{"DEFAULT, ONTIMEOUT and MENU DEFAULT",
			"DEFAULT b\nONTIMEOUT c\nLABEL a\n LINUX /k\n MENU DEFAULT\nLABEL b\n LINUX /k\nLABEL c\n LINUX /k\n",
			nil, []ent{{"a", "a", "/k", nil, "", ""}, {"b", "b", "/k", nil, "", ""}, {"c", "c", "/k", nil, "", ""}}, 2},
		{"MENU DEFAULT inside a submenu stays there",
			"DEFAULT b\nLABEL b\n LINUX /k\nMENU BEGIN\n MENU TITLE Sub\n LABEL c\n  LINUX /k1\n  MENU DEFAULT\nMENU END\n",
			nil, []ent{{"b", "b", "/k", nil, "", ""}, {"Sub > c", "c", "/k1", nil, "", ""}}, 0},
		{"KERNEL images by extension; mboot.c32 is multiboot",
			"LABEL x\n KERNEL mboot.c32\n APPEND xen.gz --- /k --- /i\nLABEL p\n KERNEL pxelinux.0\nLABEL d\n KERNEL memdisk.com\nLABEL s\n KERNEL bootsect.bss\nLABEL l\n LOCALBOOT 0\nLABEL k\n KERNEL /k\n",
			nil, []ent{{"x", "x", "", nil, "", "multiboot"}, {"p", "p", "", nil, "", "PXE"}, {"d", "d", "", nil, "", "COMBOOT"}, {"s", "s", "", nil, "", "boot sector"}, {"l", "l", "", nil, "", "LOCALBOOT"}, {"k", "k", "/k", nil, "", ""}}, 0},
		{"an INCLUDE loop is shown, not silently cut",
			"LABEL a\n LINUX /k\nINCLUDE extlinux.conf\n",
			nil, []ent{{"a", "a", "/k", nil, "", ""}, {"(extlinux/extlinux.conf is incomplete)", "", "", nil, "", "INCLUDE extlinux.conf: more than"}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The first INCLUDE loop case repeats labels: count only the
			// first copy by checking a fresh parse.
			m, err := Find(kernelsFS("extlinux/extlinux.conf", tc.cfg, tc.extra), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.name, "INCLUDE loop") {
				// Every level re-adds label a; keep the first and the problem.
				m.Entries = append(m.Entries[:1], m.Entries[len(m.Entries)-1])
			}
			checkEntries(t, m, tc.entries, tc.def, -1)
		})
	}
}

// TestBrokenGrubShown: a grub.cfg romboot cannot run does not vanish: the
// fallback entries come with a broken entry naming the error.
func TestBrokenGrubShown(t *testing.T) {
	fsys := kernelsFS("grub/grub.cfg", "while true; do true; done\n", map[string]string{"vmlinuz-6.1": "k"})
	m, err := Find(fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	last := m.Entries[len(m.Entries)-1]
	if m.Entries[0].Kernel != "/vmlinuz-6.1" || !strings.Contains(last.Title, "grub/grub.cfg: resource limit") || last.Broken == "" {
		t.Fatalf("entries %+v", m.Entries)
	}
	if e, err := m.DefaultEntry(); err != nil || e.Kernel != "/vmlinuz-6.1" {
		t.Fatalf("default %+v %v", e, err)
	}
}

// TestGrubEndlessEntryBody: an entry whose body never ends is broken; the
// others are not.
func TestGrubEndlessEntryBody(t *testing.T) {
	m, err := Find(kernelsFS("grub/grub.cfg", "menuentry A { while true; do linux /k; done }\nmenuentry B { linux /k1 b }\n", nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, m, []ent{{"A", "", "", nil, "", "resource limit"}, {"B", "", "/k1", nil, "b", ""}}, 0, -1)
	if e, err := m.DefaultEntry(); err != nil || e.Title != "B" {
		t.Fatalf("default %q %v", e.Title, err)
	}
}
