package luks

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
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
	if !validHdrSize(c.hdrSize) {
		return nil, corrupt(name, "header size %d is not a power of two in 16 KiB..4 MiB", c.hdrSize)
	}
	if o := int64(be.Uint64(bin[256:264])); o != off {
		return nil, corrupt(name, "header offset %d, found at %d", o, off)
	}
	if off+c.hdrSize > size {
		return nil, corrupt(name, "header of %d bytes beyond the %d-byte device", c.hdrSize, size)
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
	if i := bytes.IndexByte(c.json, 0); i >= 0 {
		c.json = c.json[:i]
	}
	return c, nil
}

func validHdrSize(n int64) bool {
	return n >= luks2MinHdr && n <= luks2MaxHdr && n&(n-1) == 0
}

// openLUKS2 picks the header copy to trust: both valid, the higher seqid;
// one valid, that one. The secondary sits at the primary's hdr_size, or,
// when the primary is unreadable, at one of the standard offsets.
func openLUKS2(r io.ReaderAt, size int64) (*Header, error) {
	prim, perr := readLUKS2Copy(r, size, 0, "primary")
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
		if sec, serr = readLUKS2Copy(r, size, o, "secondary"); sec != nil {
			break
		}
	}
	var warnings []string
	use := prim
	switch {
	case prim == nil && sec == nil:
		if _, ok := perr.(*IOError); ok {
			return nil, perr
		}
		return nil, &CorruptHeaderError{Copy: "both", Reason: fmt.Sprintf("primary: %v; secondary: %v", reason(perr), reason(serr))}
	case prim == nil:
		use = sec
		warnings = append(warnings, fmt.Sprintf("primary header unusable (%v), using the secondary", reason(perr)))
	case sec == nil:
		warnings = append(warnings, fmt.Sprintf("secondary header unusable (%v)", reason(serr)))
	case sec.seqid > prim.seqid:
		use = sec
		warnings = append(warnings, fmt.Sprintf("primary header is stale (seqid %d < %d), using the secondary", prim.seqid, sec.seqid))
	case sec.hdrSize != prim.hdrSize:
		warnings = append(warnings, "header copies differ in size")
	}
	h, err := parseLUKS2JSON(use, r, size)
	if err != nil {
		return nil, err
	}
	h.Warnings = append(warnings, h.Warnings...)
	return h, nil
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

// decodeMetadata maps the parsed JSON onto the metadata structures.
func decodeMetadata(root *jval) (*luks2Metadata, error) {
	m := &luks2Metadata{Keyslots: map[string]*jsonKeyslot{}, Segments: map[string]*jsonSegment{}, Digests: map[string]*jsonDigest{}}
	var fe fieldErrs
	const maxU32 = 1<<32 - 1
	kss, err := objects(root, "keyslots")
	fe.keep(err)
	for id, v := range kss {
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
		k.KDF.Iterations, k.KDF.Time = uint32(fe.num(kdf, "iterations", maxU32)), uint32(fe.num(kdf, "time", maxU32))
		k.KDF.Memory, k.KDF.CPUs = uint32(fe.num(kdf, "memory", maxU32)), uint32(fe.num(kdf, "cpus", maxU32))
		m.Keyslots[id] = k
	}
	segs, err := objects(root, "segments")
	fe.keep(err)
	for id, v := range segs {
		sg := &jsonSegment{Type: fe.str(v, "type"), Offset: fe.u64s(v, "offset"), Size: fe.str(v, "size"), IVTweak: fe.u64s(v, "iv_tweak"),
			Encryption: fe.str(v, "encryption"), SectorSize: int(fe.num(v, "sector_size", 1<<20)), Flags: fe.strs(v, "flags")}
		if in := v.get("integrity"); in != nil && in.kind != 'z' {
			sg.Integrity = true
		}
		m.Segments[id] = sg
	}
	dgs, err := objects(root, "digests")
	fe.keep(err)
	for id, v := range dgs {
		m.Digests[id] = &jsonDigest{Type: fe.str(v, "type"), Keyslots: fe.strs(v, "keyslots"), Segments: fe.strs(v, "segments"),
			Hash: fe.str(v, "hash"), Iterations: uint32(fe.num(v, "iterations", maxU32)), Salt: fe.str(v, "salt"), Digest: fe.str(v, "digest")}
	}
	cfg := root.get("config")
	if cfg == nil || cfg.kind != 'o' {
		fe.keep(errors.New("config: want an object"))
	} else {
		m.Config = jsonConfig{JSONSize: fe.u64s(cfg, "json_size"), KeyslotsSize: fe.u64s(cfg, "keyslots_size"), Flags: fe.strs(cfg, "flags")}
		if req := cfg.get("requirements"); req != nil && req.kind == 'o' {
			m.Config.Mandatory = fe.strs(req, "mandatory")
		}
	}
	return m, fe.err
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

// parseLUKS2JSON validates the JSON metadata of a checked header copy.
func parseLUKS2JSON(c *luks2Copy, r io.ReaderAt, size int64) (*Header, error) {
	root, err := parseJSON(c.json)
	if err != nil {
		return nil, corrupt("metadata", "JSON: %v", err)
	}
	m, err := decodeMetadata(root)
	if err != nil {
		return nil, corrupt("metadata", "JSON: %v", err)
	}
	if int64(m.Config.JSONSize) != c.hdrSize-luks2BinSize {
		return nil, corrupt("metadata", "json_size %d does not match header size %d", m.Config.JSONSize, c.hdrSize)
	}
	if len(m.Config.Mandatory) > 0 {
		return nil, &RequirementsError{Requirements: m.Config.Mandatory}
	}
	areaStart := 2 * c.hdrSize
	areaEnd := areaStart + int64(m.Config.KeyslotsSize)
	if m.Config.KeyslotsSize%4096 != 0 || areaEnd > size || areaEnd < areaStart {
		return nil, corrupt("metadata", "keyslots_size %d does not fit the device", m.Config.KeyslotsSize)
	}
	h := &Header{
		Version:    2,
		UUID:       c.uuid,
		Label:      c.label,
		Subsystem:  c.subsys,
		HeaderCopy: c.name,
		r:          r,
		v2:         m,
	}
	// Exactly one live data segment, of type crypt, without integrity.
	var seg *jsonSegment
	segID := ""
	for id, s := range m.Segments {
		if s == nil {
			return nil, corrupt("metadata", "segment %s is null", id)
		}
		if isBackupSegment(s) {
			continue
		}
		if seg != nil {
			return nil, &UnsupportedError{What: "more than one live data segment"}
		}
		seg, segID = s, id
	}
	if seg == nil {
		return nil, corrupt("metadata", "no data segment")
	}
	if seg.Type != "crypt" {
		return nil, &UnsupportedError{What: "segment type " + seg.Type}
	}
	if seg.Integrity {
		return nil, &UnsupportedError{What: "authenticated encryption (dm-integrity) segments"}
	}
	switch seg.SectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, corrupt("metadata", "segment sector size %d", seg.SectorSize)
	}
	if seg.Encryption == "" || strings.ContainsAny(seg.Encryption, " \t\n") {
		return nil, corrupt("metadata", "segment encryption %q", seg.Encryption)
	}
	h.Cipher = seg.Encryption
	h.SectorSize = seg.SectorSize
	h.PayloadOffset = int64(seg.Offset)
	h.IVTweak = uint64(seg.IVTweak)
	if h.PayloadOffset < 0 || h.PayloadOffset%int64(seg.SectorSize) != 0 || h.PayloadOffset >= size {
		return nil, corrupt("metadata", "segment offset %d outside the %d-byte device", seg.Offset, size)
	}
	if seg.Size != "dynamic" {
		n, err := strconv.ParseInt(seg.Size, 10, 64)
		if err != nil || n <= 0 || n%int64(seg.SectorSize) != 0 || n > size-h.PayloadOffset {
			return nil, corrupt("metadata", "segment size %q", seg.Size)
		}
		h.PayloadSize = n
	}
	for _, f := range m.Config.Flags {
		if o, ok := dmFlags[f]; ok {
			h.Flags = append(h.Flags, o)
		}
	}
	sort.Strings(h.Flags)

	// Digests bound to the data segment.
	for id, d := range m.Digests {
		if d == nil || d.Type != "pbkdf2" || !contains(d.Segments, segID) {
			continue
		}
		salt, err1 := base64.StdEncoding.DecodeString(d.Salt)
		dig, err2 := base64.StdEncoding.DecodeString(d.Digest)
		if err1 != nil || err2 != nil || len(dig) == 0 || len(dig) > luks2MaxDigest {
			return nil, corrupt("metadata", "digest %s: bad salt or digest", id)
		}
		if d.Iterations < 1 || d.Iterations > maxPBKDF2Iter {
			return nil, corrupt("metadata", "digest %s: iterations %d", id, d.Iterations)
		}
		dc := digestCheck{hash: d.Hash, iter: d.Iterations, salt: salt, digest: dig}
		for _, k := range d.Keyslots {
			if n, err := strconv.Atoi(k); err == nil {
				dc.keyslots = append(dc.keyslots, n)
			}
		}
		h.digest = append(h.digest, dc)
	}
	if len(h.digest) == 0 {
		return nil, corrupt("metadata", "no digest for the data segment")
	}

	// Keyslots, in index order.
	ids := make([]int, 0, len(m.Keyslots))
	for id := range m.Keyslots {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n > 31 {
			return nil, corrupt("metadata", "keyslot id %q", id)
		}
		ids = append(ids, n)
	}
	sort.Ints(ids)
	type span struct{ off, end int64 }
	var spans []span
	for _, n := range ids {
		j := m.Keyslots[strconv.Itoa(n)]
		if j == nil {
			return nil, corrupt("metadata", "keyslot %d is null", n)
		}
		ks, err := luks2Keyslot(n, j, h, areaStart, areaEnd)
		if err != nil {
			return nil, err
		}
		for _, s := range spans {
			if ks.Offset < s.end && s.off < ks.Offset+int64(j.Area.Size) {
				return nil, corrupt("metadata", "keyslot %d area overlaps another", n)
			}
		}
		spans = append(spans, span{ks.Offset, ks.Offset + int64(j.Area.Size)})
		h.Keyslots = append(h.Keyslots, ks)
		if ks.Problem != "" {
			h.Warnings = append(h.Warnings, fmt.Sprintf("keyslot %d: %s", n, ks.Problem))
		}
	}
	return h, nil
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

// luks2Keyslot validates one keyslot. Structural damage (an area outside the
// keyslots area) makes the whole header corrupt; a keyslot type or KDF this
// package does not handle only marks that keyslot unusable.
func luks2Keyslot(n int, j *jsonKeyslot, h *Header, areaStart, areaEnd int64) (Keyslot, error) {
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
	for _, d := range h.digest {
		if d.binds(n) {
			ks.Bound = true
		}
	}
	off, sz := int64(j.Area.Offset), int64(j.Area.Size)
	if sz < 0 || off < areaStart || off+sz > areaEnd || off+sz < off {
		return ks, corrupt("metadata", "keyslot %d area [%d, +%d) outside the keyslots area [%d, %d)", n, off, sz, areaStart, areaEnd)
	}
	switch j.KDF.Type {
	case "pbkdf2":
		ks.KDF = KDF{Type: "pbkdf2", Hash: j.KDF.Hash, Iterations: j.KDF.Iterations}
	case "argon2i", "argon2id":
		ks.KDF = KDF{Type: j.KDF.Type, Iterations: j.KDF.Time, MemoryKiB: j.KDF.Memory, Threads: j.KDF.CPUs}
	default:
		ks.KDF = KDF{Type: j.KDF.Type}
		ks.Problem = "unsupported KDF " + strconv.Quote(j.KDF.Type)
		return ks, nil
	}
	salt, err := base64.StdEncoding.DecodeString(j.KDF.Salt)
	if err != nil || len(salt) == 0 || len(salt) > 256 {
		ks.Problem = "bad KDF salt"
		return ks, nil
	}
	ks.salt = salt
	switch {
	case j.Type != "luks2":
		ks.Problem = "unsupported keyslot type " + strconv.Quote(j.Type)
	case j.Area.Type != "raw":
		ks.Problem = "unsupported area type " + strconv.Quote(j.Area.Type)
	case j.AF.Type != "luks1":
		ks.Problem = "unsupported anti-forensic type " + strconv.Quote(j.AF.Type)
	case j.KeySize < 1 || j.KeySize > 512:
		ks.Problem = fmt.Sprintf("key size %d", j.KeySize)
	case j.Area.KeySize < 1 || j.Area.KeySize > 512:
		ks.Problem = fmt.Sprintf("area key size %d", j.Area.KeySize)
	case ks.Stripes < 1 || ks.Stripes > luks1MaxStripes:
		ks.Problem = fmt.Sprintf("stripes %d", ks.Stripes)
	}
	if ks.Problem != "" {
		return ks, nil
	}
	ks.Length = roundUp(int64(j.KeySize)*int64(ks.Stripes), 512)
	if ks.Length > sz {
		return ks, corrupt("metadata", "keyslot %d key material (%d bytes) larger than its area (%d)", n, ks.Length, sz)
	}
	if ks.Bound && h.KeyBytes == 0 {
		h.KeyBytes = j.KeySize
	}
	return ks, nil
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
