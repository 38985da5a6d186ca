// Package luks reads LUKS1 and LUKS2 headers and recovers the volume key from a
// passphrase, in user space, without ever writing to the device.
//
// It does no system calls beyond reading the header through an io.ReaderAt:
// mapping the volume is package dm's job. Every length read from disk is
// checked before it is used, KDF costs are bounded, and key material lives
// only in byte slices that Wipe clears.
//
// On-disk formats: LUKS1 spec 1.2.3 and LUKS2 spec 1.1.x; see
// shared/notes/luks-format.md for the facts this code relies on.
package luks
