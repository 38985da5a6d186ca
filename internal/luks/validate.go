package luks

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strconv"
	"strings"
)

// LUKS2 metadata validation, as strict as cryptsetup's: a header copy whose
// JSON fails any of these rules is not used at all (the other copy may be).
// The rules are those of the LUKS2 on-disk format specification as
// cryptsetup enforces them when it loads a header; each is checked against
// the host's cryptsetup in compat_test.go.

const luks2MaxKeyslotsSize = 128 << 20

// maxMembers bounds each section (keyslots, segments, digests, tokens) so a
// hostile 4 MiB JSON area cannot make the quadratic overlap checks hang the
// init. cryptsetup makes at most 32 of each; this is the one limit romboot
// has that cryptsetup's loader lacks.
const maxMembers = 1024

// parseJSONArea parses a JSON area: one object starting at its first byte,
// then (as json-c reads it) white space or comments, then only NUL bytes
// (at least one).
func parseJSONArea(area []byte) (*jval, error) {
	if len(area) == 0 || area[0] != '{' {
		return nil, fmt.Errorf("the JSON area does not start with '{'")
	}
	p := &jparser{s: area}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	// json-c also consumes white space and comments after the object.
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos >= len(area) {
		return nil, fmt.Errorf("no NUL byte after the JSON object")
	}
	for i := p.pos; i < len(area); i++ {
		if area[i] != 0 {
			return nil, fmt.Errorf("byte 0x%02x at offset %d after the JSON object", area[i], i)
		}
	}
	return v, nil
}

// numbered: only ASCII digits (object keys, offsets, sizes).
func numbered(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// strtou64 parses as C's strtoull(s, &end, 10) with the whole string
// consumed and no overflow: leading white space and a sign are allowed
// (a minus negates modulo 2^64), an empty string is 0.
func strtou64(s string) (uint64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return 0, s == ""
	}
	if i != len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[start:], 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// isInt: a JSON number without fraction or exponent (json-c's int type).
func (v *jval) isInt() bool {
	return v != nil && v.kind == 'n' && !strings.ContainsAny(v.str, ".eE")
}

// u32 reports whether an int value fits cryptsetup's uint32 fields.
func (v *jval) u32() (uint32, bool) {
	n, err := strconv.ParseInt(v.str, 10, 64)
	if err != nil || n < 0 || n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// vctx reports the first rule a header breaks.
type vctx struct {
	err        error
	segDigests map[string]bool // segments some digest names
	ksDigests  map[string]int  // keyslot: digests naming it
}

func (c *vctx) fail(format string, a ...any) bool {
	if c.err == nil {
		c.err = fmt.Errorf(format, a...)
	}
	return false
}

// obj requires v[key] to be an object.
func (c *vctx) obj(v *jval, where, key string) *jval {
	f := v.get(key)
	if f == nil || f.kind != 'o' {
		c.fail("%s: %q missing or not an object", where, key)
		return nil
	}
	return f
}

// str requires v[key] to be a non-empty string.
func (c *vctx) str(v *jval, where, key string) (string, bool) {
	f := v.get(key)
	if f == nil || f.kind != 's' || f.str == "" {
		return "", c.fail("%s: %q missing or not a non-empty string", where, key)
	}
	return f.str, true
}

// integer requires v[key] to be a JSON integer.
func (c *vctx) integer(v *jval, where, key string) (*jval, bool) {
	f := v.get(key)
	if !f.isInt() {
		return nil, c.fail("%s: %q missing or not an integer", where, key)
	}
	return f, true
}

// arr requires v[key] to be an array.
func (c *vctx) arr(v *jval, where, key string) ([]*jval, bool) {
	f := v.get(key)
	if f == nil || f.kind != 'a' {
		return nil, c.fail("%s: %q missing or not an array", where, key)
	}
	return f.arr, true
}

// refs requires every element of list to be a string naming an object in
// section.
func (c *vctx) refs(list []*jval, section *jval, where, what string) bool {
	if len(list) > maxMembers {
		return c.fail("%s: more than %d %s", where, maxMembers, what)
	}
	for i, e := range list {
		if e.kind != 's' {
			return c.fail("%s: %s[%d] is not a string", where, what, i)
		}
		if t := section.get(e.str); t == nil || t.kind != 'o' {
			return c.fail("%s: references missing %s %q", where, strings.TrimSuffix(what, "s"), e.str)
		}
	}
	return true
}

// stringsOnly requires an optional array field to hold only strings.
func (c *vctx) stringsOnly(v *jval, where, key string) bool {
	f := v.get(key)
	if f == nil {
		return true
	}
	if f.kind != 'a' {
		return c.fail("%s: %q is not an array", where, key)
	}
	for _, e := range f.arr {
		if e.kind != 's' {
			return c.fail("%s: %q holds a non-string", where, key)
		}
	}
	return true
}

// keys returns an object's member names in numeric order, requiring each to
// be numbered.
func (c *vctx) keys(o *jval, section string) ([]string, bool) {
	if len(o.obj) > maxMembers {
		return nil, c.fail("more than %d %ss", maxMembers, section)
	}
	ks := make([]string, 0, len(o.obj))
	for k := range o.obj {
		if !numbered(k) || k == "" {
			return nil, c.fail("%s key %q is not a number", section, k)
		}
		ks = append(ks, k)
	}
	insertionSort(ks, cmpNumbered)
	return ks, true
}

// elems returns an array's elements; nil for anything else.
func (v *jval) elems() []*jval {
	if v == nil || v.kind != 'a' {
		return nil
	}
	return v.arr
}

// text returns a string's value; "" for anything else.
func (v *jval) text() string {
	if v == nil || v.kind != 's' {
		return ""
	}
	return v.str
}

// insertionSort sorts the short lists of a header (at most maxMembers)
// without pulling a general sort into the init.
func insertionSort[T any](a []T, cmp func(x, y T) int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && cmp(a[j-1], a[j]) > 0; j-- {
			a[j-1], a[j] = a[j], a[j-1]
		}
	}
}

// cmpNumbered orders decimal strings by value.
func cmpNumbered(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func hasFlagPrefix(seg *jval, prefix string) bool {
	for _, e := range seg.get("flags").elems() {
		if e.kind == 's' && strings.HasPrefix(e.str, prefix) {
			return true
		}
	}
	return false
}

// reencryptFlag: a mandatory requirement naming an online reencryption.
func reencryptFlag(s string) bool {
	if s == "online-reencrypt" {
		return true
	}
	v, ok := strings.CutPrefix(s, "online-reencrypt-v")
	return ok && v != "" && numbered(v)
}

// validateLUKS2 checks the metadata of one header copy whose JSON area is
// jsonSize bytes. It returns nil or the first rule broken.
func validateLUKS2(root *jval, jsonSize uint64) error {
	c := &vctx{segDigests: map[string]bool{}, ksDigests: map[string]int{}}
	c.validate(root, jsonSize)
	return c.err
}

// typed checks each member of a section (tokens, digests, keyslots): an
// object with a string "type", then whatever check adds; it stops at the
// first rule broken. It returns the section's keys in c.keys's order.
func (c *vctx) typed(section *jval, noun string, check func(where string, v *jval) bool) ([]string, bool) {
	keys, ok := c.keys(section, noun)
	if !ok {
		return nil, false
	}
	for _, k := range keys {
		v := section.obj[k]
		where := noun + " " + k
		if v.kind != 'o' {
			return nil, c.fail("%s is not an object", where)
		}
		if _, ok := c.str(v, where, "type"); !ok {
			return nil, false
		}
		if !check(where, v) {
			return nil, false
		}
	}
	return keys, true
}

func (c *vctx) validate(root *jval, jsonSize uint64) bool {
	if root.kind != 'o' {
		return c.fail("top-level value is not an object")
	}
	// Requirements.
	cfg := c.obj(root, "JSON", "config")
	if cfg == nil {
		return false
	}
	reencrypt := 0
	if req := cfg.get("requirements"); req != nil {
		if req.kind != 'o' {
			return c.fail("config: requirements is not an object")
		}
		if !c.stringsOnly(req, "config.requirements", "mandatory") {
			return false
		}
		for _, e := range req.get("mandatory").elems() {
			if reencryptFlag(e.str) {
				reencrypt++
			}
		}
	}
	if reencrypt > 1 {
		return c.fail("config: more than one online reencryption requirement")
	}
	keyslots := c.obj(root, "JSON", "keyslots")
	segments := c.obj(root, "JSON", "segments")
	digests := c.obj(root, "JSON", "digests")
	tokens := c.obj(root, "JSON", "tokens")
	if c.err != nil {
		return false
	}
	// Tokens.
	if _, ok := c.typed(tokens, "token", func(where string, t *jval) bool {
		list, ok := c.arr(t, where, "keyslots")
		return ok && c.refs(list, keyslots, where, "keyslots")
	}); !ok {
		return false
	}
	// Digests.
	if _, ok := c.typed(digests, "digest", func(where string, d *jval) bool {
		kl, ok1 := c.arr(d, where, "keyslots")
		sl, ok2 := c.arr(d, where, "segments")
		if !ok1 || !ok2 || !c.refs(kl, keyslots, where, "keyslots") || !c.refs(sl, segments, where, "segments") {
			return false
		}
		seen := map[string]bool{}
		for _, e := range kl {
			if !seen[e.str] {
				seen[e.str] = true
				c.ksDigests[e.str]++
			}
		}
		for _, e := range sl {
			c.segDigests[e.str] = true
		}
		return true
	}); !ok {
		return false
	}
	if !c.segments(segments, reencrypt > 0) {
		return false
	}
	// Keyslots: type and key_size.
	kks, ok := c.typed(keyslots, "keyslot", func(where string, ks *jval) bool {
		n, ok := c.integer(ks, where, "key_size")
		if !ok {
			return false
		}
		if _, ok := n.u32(); !ok {
			return c.fail("%s: key_size %s out of range", where, n.str)
		}
		return true
	})
	if !ok {
		return false
	}
	// Config.
	js, ok := c.str(cfg, "config", "json_size")
	if !ok {
		return false
	}
	jsn, ok := strtou64(js)
	if !ok {
		return c.fail("config: json_size %q", js)
	}
	kss, ok := c.str(cfg, "config", "keyslots_size")
	if !ok {
		return false
	}
	ksz, ok := strtou64(kss)
	if !ok {
		return c.fail("config: keyslots_size %q", kss)
	}
	mda := jsn + luks2BinSize
	if jsn > luks2MaxHdr || !validHdrSize(int64(mda)) {
		return c.fail("config: json_size %d is not a LUKS2 metadata size", jsn)
	}
	if ksz%4096 != 0 || ksz > luks2MaxKeyslotsSize {
		return c.fail("config: keyslots_size %d is not a multiple of 4096 up to 128 MiB", ksz)
	}
	if off := minSegmentOffset(segments); off != 0 && (off < ksz || off-ksz < 2*mda) {
		return c.fail("config: keyslots_size %d runs into the data at %d", ksz, off)
	}
	if !c.stringsOnly(cfg, "config", "flags") {
		return false
	}
	// Keyslot areas: inside the keyslots area, never overlapping.
	type span struct{ off, len uint64 }
	var spans []span
	for _, k := range kks {
		ks := keyslots.obj[k]
		where := "keyslot " + k
		area := c.obj(ks, where, "area")
		if area == nil {
			return false
		}
		if _, ok := c.str(area, where+" area", "type"); !ok {
			return false
		}
		os, ok1 := c.str(area, where+" area", "offset")
		ss, ok2 := c.str(area, where+" area", "size")
		if !ok1 || !ok2 {
			return false
		}
		if !numbered(os) || !numbered(ss) {
			return c.fail("%s: area offset %q or size %q not a number", where, os, ss)
		}
		o, ok1 := strtou64(os)
		l, ok2 := strtou64(ss)
		if !ok1 || !ok2 {
			return c.fail("%s: area offset or size beyond 64 bits", where)
		}
		spans = append(spans, span{o, l})
	}
	end := 2*mda + ksz
	for i, s := range spans {
		where := "keyslot " + kks[i]
		switch {
		case s.off < 2*mda:
			return c.fail("%s: area offset %d inside the header copies", where, s.off)
		case s.len == 0:
			return c.fail("%s: empty area", where)
		case s.off > ^uint64(0)-s.len:
			return c.fail("%s: area offset+size overflows", where)
		case s.off+s.len > end:
			return c.fail("%s: area [%d, %d) beyond the keyslots area end %d", where, s.off, s.off+s.len, end)
		}
		for j, t := range spans {
			if i != j && s.off >= t.off && s.off-t.off < t.len {
				return c.fail("%s: area overlaps keyslot %s's", where, kks[j])
			}
		}
	}
	if jsn != jsonSize {
		return c.fail("config: json_size %d, binary header says %d", jsn, jsonSize)
	}
	// Keyslot types.
	nreenc := 0
	for _, k := range kks {
		ks := keyslots.obj[k]
		switch ks.get("type").text() {
		case "luks2":
			if !c.luks2Keyslot(ks, "keyslot "+k) {
				return false
			}
			if n := c.ksDigests[k]; n != 1 {
				return c.fail("keyslot %s is bound to %d digests, not exactly one", k, n)
			}
		case "reencrypt":
			nreenc++
		}
	}
	switch {
	case reencrypt > 0 && nreenc == 0:
		return c.fail("online reencryption requirement without a reencrypt keyslot")
	case nreenc > 0 && !reencryptCandidate(cfg):
		return c.fail("reencrypt keyslot without the reencryption requirement")
	case nreenc > 1:
		return c.fail("more than one reencrypt keyslot")
	}
	return true
}

func reencryptCandidate(cfg *jval) bool {
	for _, e := range cfg.get("requirements").get("mandatory").elems() {
		if reencryptFlag(e.str) {
			return true
		}
	}
	return false
}

// minSegmentOffset is the lowest offset of the non-backup segments; 0 when
// one of them is at 0 (a detached header).
func minSegmentOffset(segments *jval) uint64 {
	min := ^uint64(0)
	for _, s := range segments.obj {
		if hasFlagPrefix(s, "backup-") {
			continue
		}
		o, _ := strtou64(s.get("offset").text())
		if o == 0 {
			return 0
		}
		if o < min {
			min = o
		}
	}
	return min
}

// luks2Keyslot checks the fields of a keyslot of type luks2.
func (c *vctx) luks2Keyslot(ks *jval, where string) bool {
	kdf := c.obj(ks, where, "kdf")
	af := c.obj(ks, where, "af")
	area := c.obj(ks, where, "area")
	if c.err != nil {
		return false
	}
	t, ok := c.str(kdf, where+" kdf", "type")
	if !ok {
		return false
	}
	switch t {
	case "pbkdf2":
		c.str(kdf, where+" kdf", "hash")
		c.integer(kdf, where+" kdf", "iterations")
		c.str(kdf, where+" kdf", "salt")
	case "argon2i", "argon2id":
		c.integer(kdf, where+" kdf", "time")
		c.integer(kdf, where+" kdf", "memory")
		c.integer(kdf, where+" kdf", "cpus")
		c.str(kdf, where+" kdf", "salt")
	}
	if c.err != nil {
		return false
	}
	if t, ok := c.str(af, where+" af", "type"); !ok {
		return false
	} else if t != "luks1" {
		return c.fail("%s: anti-forensic type %q", where, t)
	}
	c.str(af, where+" af", "hash")
	c.integer(af, where+" af", "stripes")
	if t, ok := c.str(area, where+" area", "type"); !ok {
		return false
	} else if t != "raw" {
		return c.fail("%s: area type %q", where, t)
	}
	c.str(area, where+" area", "encryption")
	c.integer(area, where+" area", "key_size")
	return c.err == nil
}

// segments checks the segments section.
func (c *vctx) segments(segments *jval, onlineReencrypt bool) bool {
	if len(segments.obj) == 0 {
		return c.fail("no segment")
	}
	keys, ok := c.keys(segments, "segment")
	if !ok {
		return false
	}
	firstBackup := -1
	for _, k := range keys {
		s := segments.obj[k]
		where := "segment " + k
		if s.kind != 'o' {
			return c.fail("%s is not an object", where)
		}
		t, ok1 := c.str(s, where, "type")
		os, ok2 := c.str(s, where, "offset")
		ss, ok3 := c.str(s, where, "size")
		if !ok1 || !ok2 || !ok3 {
			return false
		}
		if !numbered(os) {
			return c.fail("%s: offset %q is not a number", where, os)
		}
		off, ok := strtou64(os)
		if !ok {
			return c.fail("%s: offset %q beyond 64 bits", where, os)
		}
		var size uint64
		if ss != "dynamic" {
			if !numbered(ss) {
				return c.fail("%s: size %q is not a number", where, ss)
			}
			if size, ok = strtou64(ss); !ok || size == 0 {
				return c.fail("%s: size %q", where, ss)
			}
		}
		if off%512 != 0 || size%512 != 0 {
			return c.fail("%s: offset %d or size %d not a multiple of 512", where, off, size)
		}
		if !c.stringsOnly(s, where, "flags") {
			return false
		}
		i, err := strconv.Atoi(k)
		if err != nil {
			return c.fail("%s: key out of range", where)
		}
		if hasFlagPrefix(s, "backup-") {
			if firstBackup < 0 || i < firstBackup {
				firstBackup = i
			}
		} else if firstBackup >= 0 && i >= firstBackup {
			return c.fail("%s: regular segment after backup segment %d", where, firstBackup)
		}
		if t == "crypt" && !c.cryptSegment(s, k, where, size) {
			return false
		}
		if strings.HasPrefix(t, "hw-opal") {
			if size == 0 {
				return c.fail("%s: %s segment with dynamic size", where, t)
			}
			c.integer(s, where, "opal_segment_number")
			c.integer(s, where, "opal_key_size")
			oss, ok := c.str(s, where, "opal_segment_size")
			if !ok {
				return false
			}
			osz, ok := strtou64(oss)
			if !numbered(oss) || !ok || osz == 0 || size > osz {
				return c.fail("%s: opal_segment_size %q", where, oss)
			}
			if t == "hw-opal-crypt" && !c.cryptSegment(s, k, where, size) {
				return false
			}
		}
	}
	count := len(keys)
	if firstBackup == 0 {
		return c.fail("no regular segment")
	}
	if firstBackup >= count {
		return c.fail("gap before backup segment %d", firstBackup)
	}
	if firstBackup < 0 {
		firstBackup = count
	}
	type span struct{ off, len uint64 } // len 0: dynamic
	var spans []span
	for i := 0; i < firstBackup; i++ {
		s := segments.get(strconv.Itoa(i))
		if s == nil {
			return c.fail("gap at segment %d", i)
		}
		o, _ := strtou64(s.get("offset").text())
		l, _ := strtou64(s.get("size").text())
		spans = append(spans, span{o, l})
	}
	for i, s := range spans {
		if s.len == 0 && i != len(spans)-1 {
			return c.fail("segment %d: only the last regular segment may be dynamic", i)
		}
		for j, t := range spans {
			if i == j {
				continue
			}
			if t.len != 0 && t.off > ^uint64(0)-t.len {
				return c.fail("segment %d: offset+size overflows", j)
			}
			if s.off >= t.off && (t.len == 0 || s.off-t.off < t.len) {
				return c.fail("segments %d and %d overlap", i, j)
			}
		}
	}
	for i := firstBackup; i < count; i++ {
		if segments.get(strconv.Itoa(i)) == nil {
			return c.fail("gap at segment %d", i)
		}
	}
	if onlineReencrypt {
		final, previous := false, false
		for i := firstBackup; i < count; i++ {
			s := segments.get(strconv.Itoa(i))
			final = final || hasFlag(s, "backup-final")
			previous = previous || hasFlag(s, "backup-previous")
		}
		if !final || !previous {
			return c.fail("online reencryption without backup-final and backup-previous segments")
		}
	}
	return true
}

func hasFlag(seg *jval, flag string) bool {
	for _, e := range seg.get("flags").elems() {
		if e.str == flag {
			return true
		}
	}
	return false
}

// cryptSegment checks the fields of a crypt segment of size bytes (0:
// dynamic).
func (c *vctx) cryptSegment(s *jval, key, where string, size uint64) bool {
	iv, ok1 := c.str(s, where, "iv_tweak")
	_, ok2 := c.str(s, where, "encryption")
	ssv, ok3 := c.integer(s, where, "sector_size")
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	if in := s.get("integrity"); in != nil {
		if in.kind != 'o' {
			return c.fail("%s: integrity is not an object", where)
		}
		c.str(in, where+" integrity", "type")
		c.str(in, where+" integrity", "journal_encryption")
		c.str(in, where+" integrity", "journal_integrity")
		if c.err != nil {
			return false
		}
	}
	ss, ok := ssv.u32()
	if !ok || ss == 0 || ss%512 != 0 {
		return c.fail("%s: sector_size %s", where, ssv.str)
	}
	if _, ok := strtou64(iv); !numbered(iv) || !ok {
		return c.fail("%s: iv_tweak %q", where, iv)
	}
	if size%uint64(ss) != 0 {
		return c.fail("%s: size %d not a multiple of the sector size %d", where, size, ss)
	}
	if !c.segDigests[key] {
		return c.fail("%s: no digest", where)
	}
	return true
}
