package luks

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// LUKS2 binary header (spec 1.1.x), big-endian; two copies.
const (
	luks2BinSize   = 4096
	luks2MinHdr    = 16 << 10
	luks2MaxHdr    = 4 << 20
	luks2CsumOff   = 448
	luks2CsumLen   = 64
	luks2MaxDigest = 64
)

// luks2Copy is one validated binary header plus its JSON area.
type luks2Copy struct {
	name    string
	hdrSize int64
	seqid   uint64
	label   string
	subsys  string
	uuid    string
	json    []byte
}

// readLUKS2Copy reads and checks the header copy at off.
func readLUKS2Copy(r io.ReaderAt, size, off int64, name string) (*luks2Copy, error) {
	bin := make([]byte, luks2BinSize)
	if err := readFull(r, bin, off, name+" LUKS2 header"); err != nil {
		return nil, err
	}
	want := magic1
	if name == "secondary" {
		want = magic2
	}
	if !bytes.Equal(bin[:6], want) {
		return nil, corrupt(name, "bad magic")
	}
	be := binary.BigEndian
	if v := be.Uint16(bin[6:8]); v != 2 {
		return nil, corrupt(name, "version %d in a LUKS2 header", v)
	}
	c := &luks2Copy{
		name:    name,
		hdrSize: int64(be.Uint64(bin[8:16])),
		seqid:   be.Uint64(bin[16:24]),
		label:   cString(bin[24:72]),
		subsys:  cString(bin[208:256]),
		uuid:    cString(bin[168:208]),
	}
	if c.hdrSize < luks2MinHdr || c.hdrSize > luks2MaxHdr {
		return nil, corrupt(name, "header size %d outside 16 KiB..4 MiB", c.hdrSize)
	}
	if o := int64(be.Uint64(bin[256:264])); o != off {
		return nil, corrupt(name, "header offset %d, found at %d", o, off)
	}
	if name == "secondary" && c.hdrSize != off {
		return nil, corrupt(name, "header size %d at offset %d", c.hdrSize, off)
	}
	alg := cString(bin[72:104])
	newHash, ok := hashByName(alg)
	if !ok {
		return nil, corrupt(name, "unknown checksum algorithm %q", alg)
	}
	c.json = make([]byte, c.hdrSize-luks2BinSize)
	if err := readFull(r, c.json, off+luks2BinSize, name+" LUKS2 JSON area"); err != nil {
		return nil, err
	}
	hh := newHash()
	stored := append([]byte(nil), bin[luks2CsumOff:luks2CsumOff+hh.Size()]...)
	clear(bin[luks2CsumOff : luks2CsumOff+luks2CsumLen])
	hh.Write(bin)
	hh.Write(c.json)
	if !bytes.Equal(hh.Sum(nil), stored) {
		return nil, corrupt(name, "checksum mismatch")
	}
	return c, nil
}

func validHdrSize(n int64) bool {
	return n >= luks2MinHdr && n <= luks2MaxHdr && n&(n-1) == 0
}

// openLUKS2 picks the header copy to trust, as cryptsetup does. A copy is
// good when its binary header, checksum and metadata are all valid; both
// good, the higher seqid wins; one good, that one. The secondary sits at the
// primary's hdr_size when the primary's binary header and checksum are
// sound (even if its JSON is not), else at one of the standard offsets.
func openLUKS2(r io.ReaderAt, size int64) (*Header, error) {
	prim, perr := readLUKS2Copy(r, size, 0, "primary")
	var proot *jval
	if prim != nil {
		if proot, perr = prim.metadata(); perr != nil {
			perr = corrupt("primary", "%v", reason(perr))
		}
	}
	var offsets []int64
	if prim != nil {
		offsets = []int64{prim.hdrSize}
	} else {
		for o := int64(luks2MinHdr); o <= luks2MaxHdr; o *= 2 {
			offsets = append(offsets, o)
		}
	}
	var sec *luks2Copy
	var serr error
	for _, o := range offsets {
		c, err := readLUKS2Copy(r, size, o, "secondary")
		if c != nil {
			sec, serr = c, nil
			break
		}
		// Report the copy that was there, not the last offset tried.
		if serr == nil || reason(serr) == "bad magic" {
			serr = err
		}
	}
	var sroot *jval
	if sec != nil {
		if sroot, serr = sec.metadata(); serr != nil {
			serr = corrupt("secondary", "%v", reason(serr))
		}
	}
	var warnings []string
	use, root := prim, proot
	switch {
	case proot == nil && sroot == nil:
		_, pio := perr.(*IOError)
		_, sio := serr.(*IOError)
		if pio && (serr == nil || sio) {
			return nil, perr
		}
		return nil, &CorruptHeaderError{Copy: "both", Reason: fmt.Sprintf("primary: %v; secondary: %v", reason(perr), reason(serr))}
	case proot == nil:
		use, root = sec, sroot
		warnings = append(warnings, fmt.Sprintf("primary header unusable (%v), using the secondary", reason(perr)))
	case sroot == nil:
		warnings = append(warnings, fmt.Sprintf("secondary header unusable (%v)", reason(serr)))
	case sec.seqid > prim.seqid:
		use, root = sec, sroot
		warnings = append(warnings, fmt.Sprintf("primary header is stale (seqid %d < %d), using the secondary", prim.seqid, sec.seqid))
	}
	// The header copies and the keyslots area must fit the device; the data
	// area need not (a header-only file can be dumped and tested).
	if end := 2*use.hdrSize + int64(mustU64(root.get("config").get("keyslots_size").text())); end > size {
		return nil, corrupt(use.name, "device of %d bytes is smaller than the header and keyslots area (%d bytes)", size, end)
	}
	if proot == nil || sroot == nil {
		// cryptsetup would rewrite the bad copy here, but first makes sure
		// the device carries no other format's signature.
		if sig := foreignSignature(r); sig != "" {
			return nil, &AmbiguousError{Signature: sig, Copy: map[bool]string{true: "primary", false: "secondary"}[proot == nil]}
		}
	}
	h, err := parseLUKS2JSON(use, root, r, size)
	if err != nil {
		return nil, err
	}
	h.Warnings = append(warnings, h.Warnings...)
	return h, nil
}

func mustU64(s string) uint64 {
	n, _ := strtou64(s)
	return n
}

// metadata parses and validates a copy's JSON area.
func (c *luks2Copy) metadata() (*jval, error) {
	root, err := parseJSONArea(c.json)
	if err != nil {
		return nil, fmt.Errorf("JSON: %v", err)
	}
	if err := validateLUKS2(root, uint64(len(c.json))); err != nil {
		return nil, fmt.Errorf("metadata: %v", err)
	}
	return root, nil
}

func reason(err error) string {
	if c, ok := err.(*CorruptHeaderError); ok {
		return c.Reason
	}
	if err == nil {
		return "not found"
	}
	return err.Error()
}

// JSON metadata. Offsets and sizes are decimal strings in LUKS2.
type luks2Metadata struct {
	Keyslots map[string]*jsonKeyslot
	Segments map[string]*jsonSegment
	Digests  map[string]*jsonDigest
	Config   jsonConfig
}

type jsonKeyslot struct {
	err      error // a field this package cannot use
	Type     string
	KeySize  int
	Priority *int
	AF       struct {
		Type    string
		Stripes int
		Hash    string
	}
	Area struct {
		Type       string
		Offset     uint64
		Size       uint64
		Encryption string
		KeySize    int
	}
	KDF struct {
		Type       string
		Hash       string
		Iterations uint32
		Time       uint32
		Memory     uint32
		CPUs       uint32
		Salt       string
	}
}

type jsonSegment struct {
	err        error
	Type       string
	Offset     uint64
	Size       string
	IVTweak    uint64
	Encryption string
	SectorSize int
	Integrity  bool // an integrity object is present
	Flags      []string
}

type jsonDigest struct {
	err        error
	Type       string
	Keyslots   []string
	Segments   []string
	Hash       string
	Iterations uint32
	Salt       string
	Digest     string
}

type jsonConfig struct {
	JSONSize     uint64
	KeyslotsSize uint64
	Flags        []string
	Mandatory    []string
}

// fieldErrs collects the first error of a run of field reads.
type fieldErrs struct{ err error }

func (f *fieldErrs) str(v *jval, k string) string {
	s, err := v.strField(k)
	f.keep(err)
	return s
}

func (f *fieldErrs) u64s(v *jval, k string) uint64 {
	n, err := v.u64String(k)
	f.keep(err)
	return n
}

// num reads an integer field bounded to [0, max].
func (f *fieldErrs) num(v *jval, k string, max int64) int64 {
	n, err := v.intField(k, 0)
	if err == nil && (n < 0 || n > max) {
		err = fmt.Errorf("%s: %d out of range", k, n)
	}
	f.keep(err)
	return n
}

func (f *fieldErrs) strs(v *jval, k string) []string {
	s, err := v.strings(k)
	f.keep(err)
	return s
}

func (f *fieldErrs) keep(err error) {
	if f.err == nil {
		f.err = err
	}
}

// objects returns the members of an object-of-objects field.
func objects(v *jval, key string) (map[string]*jval, error) {
	o := v.get(key)
	if o == nil {
		return nil, nil
	}
	if o.kind != 'o' {
		return nil, fmt.Errorf("%s: want an object", key)
	}
	for k, m := range o.obj {
		if m.kind != 'o' {
			return nil, fmt.Errorf("%s.%s: want an object", key, k)
		}
	}
	return o.obj, nil
}

// decodeMetadata maps validated JSON onto the metadata structures. A field
// the validation allows but this package cannot use (a priority of 7, a
// negative iteration count) marks only its keyslot, segment or digest.
func decodeMetadata(root *jval) *luks2Metadata {
	m := &luks2Metadata{Keyslots: map[string]*jsonKeyslot{}, Segments: map[string]*jsonSegment{}, Digests: map[string]*jsonDigest{}}
	const maxU32 = 1<<32 - 1
	for id, v := range root.get("keyslots").obj {
		var fe fieldErrs
		k := &jsonKeyslot{Type: fe.str(v, "type"), KeySize: int(fe.num(v, "key_size", 4096))}
		if p := v.get("priority"); p != nil {
			n := int(fe.num(v, "priority", 2))
			k.Priority = &n
		}
		af, area, kdf := v.get("af"), v.get("area"), v.get("kdf")
		k.AF.Type, k.AF.Stripes, k.AF.Hash = fe.str(af, "type"), int(fe.num(af, "stripes", maxU32)), fe.str(af, "hash")
		k.Area.Type, k.Area.Offset, k.Area.Size = fe.str(area, "type"), fe.u64s(area, "offset"), fe.u64s(area, "size")
		k.Area.Encryption, k.Area.KeySize = fe.str(area, "encryption"), int(fe.num(area, "key_size", 4096))
		k.KDF.Type, k.KDF.Hash, k.KDF.Salt = fe.str(kdf, "type"), fe.str(kdf, "hash"), fe.str(kdf, "salt")
		switch k.KDF.Type {
		case "pbkdf2":
			k.KDF.Iterations = uint32(fe.num(kdf, "iterations", maxU32))
		case "argon2i", "argon2id":
			k.KDF.Time, k.KDF.Memory, k.KDF.CPUs = uint32(fe.num(kdf, "time", maxU32)), uint32(fe.num(kdf, "memory", maxU32)), uint32(fe.num(kdf, "cpus", maxU32))
		}
		k.err = fe.err
		m.Keyslots[id] = k
	}
	for id, v := range root.get("segments").obj {
		var fe fieldErrs
		sg := &jsonSegment{Type: fe.str(v, "type"), Offset: fe.u64s(v, "offset"), Size: fe.str(v, "size"), IVTweak: fe.u64s(v, "iv_tweak"),
			Encryption: fe.str(v, "encryption"), SectorSize: int(fe.num(v, "sector_size", 1<<20)), Flags: fe.strs(v, "flags")}
		if in := v.get("integrity"); in != nil && in.kind != 'z' {
			sg.Integrity = true
		}
		sg.err = fe.err
		m.Segments[id] = sg
	}
	for id, v := range root.get("digests").obj {
		var fe fieldErrs
		m.Digests[id] = &jsonDigest{Type: fe.str(v, "type"), Keyslots: fe.strs(v, "keyslots"), Segments: fe.strs(v, "segments"),
			Hash: fe.str(v, "hash"), Iterations: uint32(fe.num(v, "iterations", maxU32)), Salt: fe.str(v, "salt"), Digest: fe.str(v, "digest")}
		m.Digests[id].err = fe.err
	}
	cfg := root.get("config")
	var fe fieldErrs
	m.Config = jsonConfig{JSONSize: mustU64(cfg.get("json_size").text()), KeyslotsSize: mustU64(cfg.get("keyslots_size").text()), Flags: fe.strs(cfg, "flags")}
	m.Config.Mandatory = fe.strs(cfg.get("requirements"), "mandatory")
	return m
}

// dmFlags maps LUKS2 config flags to dm-crypt options.
var dmFlags = map[string]string{
	"allow-discards":         "allow_discards",
	"same-cpu-crypt":         "same_cpu_crypt",
	"submit-from-crypt-cpus": "submit_from_crypt_cpus",
	"no-read-workqueue":      "no_read_workqueue",
	"no-write-workqueue":     "no_write_workqueue",
}

type digestCheck struct {
	id       string
	problem  string // why the digest cannot be checked here
	keyslots []int
	hash     string
	iter     uint32
	salt     []byte
	digest   []byte
}

func (d digestCheck) binds(slot int) bool {
	for _, k := range d.keyslots {
		if k == slot {
			return true
		}
	}
	return false
}

func (d digestCheck) verify(key []byte) bool {
	newHash, ok := hashByName(d.hash)
	if !ok {
		return false
	}
	got := pbkdf2(newHash, key, d.salt, int(d.iter), len(d.digest))
	return constantTimeEqual(got, d.digest)
}

// parseLUKS2JSON builds the Header from the validated metadata of a header
// copy. What makes the volume unbootable here (a requirement, a second
// segment, integrity) is recorded in Problems, not refused: Open refuses
// it, Inspect shows it.
func parseLUKS2JSON(c *luks2Copy, root *jval, r io.ReaderAt, size int64) (*Header, error) {
	m := decodeMetadata(root)
	h := &Header{
		Version:    2,
		UUID:       c.uuid,
		Label:      c.label,
		Subsystem:  c.subsys,
		HeaderCopy: c.name,
		r:          r,
		v2:         m,
	}
	if len(m.Config.Mandatory) > 0 {
		h.refuse(&RequirementsError{Requirements: m.Config.Mandatory})
	}
	areaStart := 2 * c.hdrSize
	areaEnd := areaStart + int64(m.Config.KeyslotsSize)

	// The data segment: the one regular segment; romboot maps exactly one,
	// of type crypt, without integrity.
	var seg *jsonSegment
	segID := ""
	regular := 0
	for id, s := range m.Segments {
		if isBackupSegment(s) {
			continue
		}
		regular++
		if seg == nil || id == "0" {
			seg, segID = s, id
		}
	}
	if regular > 1 {
		h.refuse(&UnsupportedError{What: fmt.Sprintf("%d data segments (a reencryption or a hardware-encrypted layout)", regular)})
	}
	if seg != nil {
		h.Cipher = seg.Encryption
		h.SectorSize = seg.SectorSize
		h.PayloadOffset = int64(seg.Offset)
		h.IVTweak = seg.IVTweak
		if seg.Size != "dynamic" {
			h.PayloadSize, _ = strconv.ParseUint(seg.Size, 10, 64)
		}
		switch {
		case seg.err != nil:
			h.refuse(corrupt("metadata", "segment %s: %v", segID, seg.err))
		case seg.Type != "crypt":
			h.refuse(&UnsupportedError{What: "segment type " + strconv.Quote(seg.Type)})
		case seg.Integrity:
			h.refuse(&UnsupportedError{What: "authenticated encryption (dm-integrity) segments"})
		case seg.Offset == 0:
			h.refuse(&UnsupportedError{What: "detached header (data offset 0)"})
		case seg.Offset > 1<<62:
			h.refuse(&UnsupportedError{What: fmt.Sprintf("data offset %d", seg.Offset)})
		case seg.SectorSize != 512 && seg.SectorSize != 1024 && seg.SectorSize != 2048 && seg.SectorSize != 4096:
			h.refuse(&UnsupportedError{What: fmt.Sprintf("sector size %d", seg.SectorSize)})
		case strings.ContainsAny(seg.Encryption, " \t\n"):
			h.refuse(&UnsupportedError{What: "segment encryption " + strconv.Quote(seg.Encryption)})
		case seg.Offset%uint64(seg.SectorSize) != 0:
			h.refuse(&UnsupportedError{What: fmt.Sprintf("data offset %d not a multiple of the sector size %d", seg.Offset, seg.SectorSize)})
		}
	}
	for _, f := range m.Config.Flags {
		if o, ok := dmFlags[f]; ok && !contains(h.Flags, o) {
			h.Flags = append(h.Flags, o)
		}
	}
	insertionSort(h.Flags, strings.Compare)

	// Digests bound to the data segment.
	for _, id := range sortedKeys(m.Digests) {
		d := m.Digests[id]
		if !contains(d.Segments, segID) {
			continue
		}
		dc := digestCheck{id: id, hash: d.Hash, iter: d.Iterations}
		salt, err1 := base64.StdEncoding.DecodeString(d.Salt)
		dig, err2 := base64.StdEncoding.DecodeString(d.Digest)
		_, hashOK := hashByName(d.Hash)
		switch {
		case d.err != nil:
			dc.problem = d.err.Error()
		case d.Type != "pbkdf2":
			dc.problem = "unsupported digest type " + strconv.Quote(d.Type)
		case !hashOK:
			dc.problem = "unsupported digest hash " + strconv.Quote(d.Hash)
		case err1 != nil || err2 != nil || len(dig) == 0 || len(dig) > luks2MaxDigest:
			dc.problem = "bad digest salt or value"
		case d.Iterations < 1 || d.Iterations > maxPBKDF2Iter:
			dc.problem = fmt.Sprintf("digest iterations %d", d.Iterations)
		}
		dc.salt, dc.digest = salt, dig
		for _, k := range d.Keyslots {
			if n, err := strconv.Atoi(k); err == nil {
				dc.keyslots = append(dc.keyslots, n)
			}
		}
		h.digest = append(h.digest, dc)
	}
	if seg != nil && len(h.digest) == 0 {
		h.refuse(corrupt("metadata", "no digest for the data segment"))
	}

	// Keyslots, in index order.
	for _, id := range sortedKeys(m.Keyslots) {
		j := m.Keyslots[id]
		n, err := strconv.Atoi(id)
		if err != nil || n > 31 {
			h.Warnings = append(h.Warnings, fmt.Sprintf("keyslot %s: number beyond 31, ignored", id))
			continue
		}
		ks := luks2Keyslot(n, j, h, areaStart, areaEnd)
		h.Keyslots = append(h.Keyslots, ks)
		if ks.Problem != "" {
			h.Warnings = append(h.Warnings, fmt.Sprintf("keyslot %d: %s", n, ks.Problem))
		}
	}
	return h, nil
}

// sortedKeys returns numbered object keys in numeric order.
func sortedKeys[T any](m map[string]T) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	insertionSort(ks, cmpNumbered)
	return ks
}

func isBackupSegment(s *jsonSegment) bool {
	for _, f := range s.Flags {
		if strings.HasPrefix(f, "backup-") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// luks2Keyslot describes one keyslot; a keyslot this package cannot use
// gets a Problem saying why.
func luks2Keyslot(n int, j *jsonKeyslot, h *Header, areaStart, areaEnd int64) Keyslot {
	ks := Keyslot{
		Index:    n,
		Priority: 1,
		Cipher:   j.Area.Encryption,
		KeyBytes: j.Area.KeySize,
		AFHash:   j.AF.Hash,
		Stripes:  j.AF.Stripes,
		Offset:   int64(j.Area.Offset),
	}
	if j.Priority != nil {
		ks.Priority = *j.Priority
	}
	var dig *digestCheck
	for i := range h.digest {
		if h.digest[i].binds(n) {
			ks.Bound = true
			dig = &h.digest[i]
		}
	}
	switch j.KDF.Type {
	case "pbkdf2":
		ks.KDF = KDF{Type: "pbkdf2", Hash: j.KDF.Hash, Iterations: j.KDF.Iterations}
	case "argon2i", "argon2id":
		ks.KDF = KDF{Type: j.KDF.Type, Iterations: j.KDF.Time, MemoryKiB: j.KDF.Memory, Threads: j.KDF.CPUs}
	default:
		ks.KDF = KDF{Type: j.KDF.Type}
	}
	off, sz := int64(j.Area.Offset), int64(j.Area.Size)
	salt, saltErr := base64.StdEncoding.DecodeString(j.KDF.Salt)
	switch {
	case j.err != nil:
		ks.Problem = j.err.Error()
	case j.Type != "luks2":
		ks.Problem = "unsupported keyslot type " + strconv.Quote(j.Type)
	case j.KDF.Type != "pbkdf2" && j.KDF.Type != "argon2i" && j.KDF.Type != "argon2id":
		ks.Problem = "unsupported KDF " + strconv.Quote(j.KDF.Type)
	case saltErr != nil || len(salt) == 0 || len(salt) > 256:
		ks.Problem = "bad KDF salt"
	case sz < 0 || off < areaStart || off+sz > areaEnd || off+sz < off:
		ks.Problem = fmt.Sprintf("area [%d, +%d) outside the keyslots area [%d, %d)", off, sz, areaStart, areaEnd)
	case j.KeySize < 1 || j.KeySize > 512:
		ks.Problem = fmt.Sprintf("key size %d", j.KeySize)
	case j.Area.KeySize < 1 || j.Area.KeySize > 512:
		ks.Problem = fmt.Sprintf("area key size %d", j.Area.KeySize)
	case ks.Stripes < 1 || ks.Stripes > luks1MaxStripes:
		ks.Problem = fmt.Sprintf("stripes %d", ks.Stripes)
	case roundUp(int64(j.KeySize)*int64(ks.Stripes), 512) > sz:
		ks.Problem = fmt.Sprintf("key material (%d bytes) larger than its area (%d)", roundUp(int64(j.KeySize)*int64(ks.Stripes), 512), sz)
	case dig != nil && dig.problem != "":
		ks.Problem = "digest " + dig.id + ": " + dig.problem
	}
	if ks.Problem != "" {
		return ks
	}
	ks.salt = salt
	ks.Length = roundUp(int64(j.KeySize)*int64(ks.Stripes), 512)
	if ks.Bound && h.KeyBytes == 0 {
		h.KeyBytes = j.KeySize
	}
	return ks
}

func (m *luks2Metadata) recoverKey(h *Header, ks Keyslot, pass []byte) ([]byte, error) {
	j := m.Keyslots[strconv.Itoa(ks.Index)]
	var dk []byte
	switch ks.KDF.Type {
	case "pbkdf2":
		newHash, ok := hashByName(ks.KDF.Hash)
		if !ok {
			return nil, &UnsupportedError{What: "pbkdf2 hash " + ks.KDF.Hash}
		}
		dk = pbkdf2(newHash, pass, ks.salt, int(ks.KDF.Iterations), ks.KeyBytes)
	case "argon2i":
		dk = argon2.Key(pass, ks.salt, ks.KDF.Iterations, ks.KDF.MemoryKiB, uint8(ks.KDF.Threads), uint32(ks.KeyBytes))
	case "argon2id":
		dk = argon2.IDKey(pass, ks.salt, ks.KDF.Iterations, ks.KDF.MemoryKiB, uint8(ks.KDF.Threads), uint32(ks.KeyBytes))
	}
	defer wipe(dk)
	return h.readArea(ks, dk, j.KeySize)
}
