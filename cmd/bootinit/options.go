package main

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/blockdev"
	"github.com/romboot/romboot/internal/cmdline"
)

// options are the payload's own settings, the romboot.* words of its
// command line. They are parsed once; a bad value never stops the boot: it
// becomes one warning and the default is used. Adding an option is one field
// here and one case in set.
type options struct {
	boot       *blockdev.Spec // romboot.boot=: the LUKS partition, nil to find it
	tries      int            // romboot.tries=: passphrase attempts
	wait       time.Duration  // romboot.wait=: how long to wait for disks
	settle     time.Duration  // romboot.settle=: quiet time before choosing a disk
	keyslot    int            // romboot.keyslot=: only this keyslot, -1 for all
	cmdline    string         // romboot.cmdline=: for vmlinuz-* entries
	entry      string         // romboot.entry=: the default entry
	append     string         // romboot.cmdline_append=
	timeout    time.Duration  // romboot.timeout=: menu countdown, -1 for the config's
	thp        string         // romboot.thp=: transparent huge pages mode
	diag       string         // romboot.diag=: diagnostics server address
	diagEngine string         // romboot.diag_engine=: pool or uring
	diagToken  string         // romboot.diag_token=: the diagnostics server's access token
	diagHosts  string         // romboot.diag_hosts=: Host names the server answers besides IP literals
	handoff    string         // romboot.handoff=: auto or off ("" is auto)
}

func defaultOptions() options {
	return options{tries: 3, wait: 10 * time.Second, settle: 300 * time.Millisecond, keyslot: -1, timeout: -1, thp: "always"}
}

// errUnknown marks a romboot.* word no case knows.
var errUnknown = errors.New("unknown option")

// set applies one romboot.* word; on error the option keeps its value.
func (o *options) set(key, v string) error {
	switch key {
	case "romboot.boot":
		s, err := blockdev.ParseSpec(v)
		if err != nil {
			return err
		}
		o.boot = &s
	case "romboot.tries":
		return setInt(&o.tries, v, 1, 100)
	case "romboot.wait":
		return setSeconds(&o.wait, v, 600)
	case "romboot.settle":
		return setSeconds(&o.settle, v, 30)
	case "romboot.keyslot":
		return setInt(&o.keyslot, v, 0, 31)
	case "romboot.timeout":
		n := 0
		if err := setInt(&n, v, 0, 30); err != nil {
			return err
		}
		o.timeout = time.Duration(n) * time.Second
	case "romboot.cmdline":
		o.cmdline = v
	case "romboot.entry":
		o.entry = v
	case "romboot.cmdline_append":
		o.append = v
	case "romboot.thp":
		return setOneOf(&o.thp, v, "always", "madvise", "never")
	case "romboot.diag":
		o.diag = v
	case "romboot.diag_engine":
		return setOneOf(&o.diagEngine, v, "pool", "uring")
	case "romboot.diag_token":
		o.diagToken = v
	case "romboot.diag_hosts":
		o.diagHosts = v
	case "romboot.handoff":
		return setOneOf(&o.handoff, v, "auto", "off")
	default:
		return errUnknown
	}
	return nil
}

func setInt(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("want a whole number from %d to %d", lo, hi)
	}
	*dst = n
	return nil
}

// setOneOf takes v when it is one of the allowed words.
func setOneOf(dst *string, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		*dst = v
		return nil
	}
	n := len(allowed) - 1
	return errors.New("want " + strings.Join(allowed[:n], ", ") + " or " + allowed[n])
}

func setSeconds(dst *time.Duration, v string, hi float64) error {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || !(n >= 0 && n <= hi) {
		return fmt.Errorf("want seconds from 0 to %g", hi)
	}
	*dst = time.Duration(n * float64(time.Second))
	return nil
}

// parseOptions reads the romboot.* words of a command line (later words win)
// and returns one warning per word it could not use.
func parseOptions(raw string) (options, []string) {
	o := defaultOptions()
	var warns []string
	for _, w := range cmdline.Parse(raw).Words("romboot.") {
		if err := o.set(w.Key, w.Value); err != nil {
			shown := cmdline.Parse(w.String()).Redacted()
			if errors.Is(err, errUnknown) {
				warns = append(warns, fmt.Sprintf("%s: unknown option, ignored", shown))
			} else {
				warns = append(warns, fmt.Sprintf("%s: %v; ignored, using the default", shown, err))
			}
		}
	}
	return o, warns
}

// optionWords returns the romboot.* words of a command line as one line,
// for the recovery menu's editor.
func optionWords(raw string) string {
	var out []string
	for _, w := range cmdline.Parse(raw).Words("romboot.") {
		out = append(out, w.String())
	}
	return strings.Join(out, " ")
}
