// Package luks reads LUKS1 and LUKS2 headers and recovers the volume key from a
// passphrase, in user space, without ever writing to the device.
//
// It does no system calls beyond reading the header through an io.ReaderAt:
// mapping the volume is package dm's job. Every length read from disk is
// checked before it is used, KDF costs are bounded, and key material lives
// only in byte slices that Wipe clears.
//
// A header is valid exactly when cryptsetup would load it: the LUKS2
// metadata rules, the JSON syntax of its parser (json-c), the choice between
// the two header copies, the LUKS1 keyslot descriptor checks and the
// device-size checks are those cryptsetup applies, and the tests judge each
// case with the host's cryptsetup (docs/luks-compat.md). Inspect returns
// every valid header, with Problems saying why romboot would not unlock or
// map it; Open refuses those.
//
// On-disk formats: LUKS1 spec 1.2.3 and LUKS2 spec 1.1.x; see
// shared/notes/luks-format.md for the facts this code relies on.
package luks
