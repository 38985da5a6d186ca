// Package dm creates and removes device-mapper devices through the ioctls of
// /dev/mapper/control, without libdevmapper or dmsetup.
//
// Tables can carry keys (dm-crypt): every ioctl buffer is wiped after use and
// table loads set DM_SECURE_DATA so the kernel wipes its copies too.
package dm

import (
	"errors"
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control node (misc 10:236).
const ControlPath = "/dev/mapper/control"

// Control is an open device-mapper control node.
type Control struct {
	f *os.File
}

// Open opens the control node and checks the kernel speaks ioctl version 4.
func Open() (*Control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("device-mapper: %w (is CONFIG_BLK_DEV_DM built in?)", err)
	}
	c := &Control{f: f}
	buf := newBuf("", 0)
	defer wipeBuf(buf)
	if err := c.ioctl(unix.DM_VERSION, buf); err != nil {
		f.Close()
		return nil, err
	}
	if v := header(buf).Version; v[0] != unix.DM_VERSION_MAJOR {
		f.Close()
		return nil, fmt.Errorf("device-mapper: kernel ioctl version %d.%d.%d, want %d.x", v[0], v[1], v[2], unix.DM_VERSION_MAJOR)
	}
	return c, nil
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Target is one line of a device-mapper table.
type Target struct {
	Start, Length uint64 // 512-byte sectors
	Type          string // e.g. "crypt"
	Params        []byte // may hold a key: the caller wipes it
}

// Device is a created mapping.
type Device struct {
	Name         string
	Major, Minor uint32
}

// Path is the device node devtmpfs creates for the mapping.
func (d Device) Path() string { return fmt.Sprintf("/dev/dm-%d", d.Minor) }

// Create makes the device name with uuid, loads the table (read-only when
// asked) and activates it. On any failure after the device exists it is
// removed again.
func (c *Control) Create(name, uuid string, readOnly bool, targets ...Target) (Device, error) {
	if len(name) >= unix.DM_NAME_LEN || len(uuid) >= unix.DM_UUID_LEN {
		return Device{}, fmt.Errorf("device-mapper: name or uuid too long")
	}
	buf := newBuf(name, 0)
	copy(header(buf).Uuid[:], uuid)
	err := c.ioctl(unix.DM_DEV_CREATE, buf)
	wipeBuf(buf)
	if err != nil {
		return Device{}, fmt.Errorf("DM_DEV_CREATE %s: %w", name, err)
	}
	dev, err := c.loadAndResume(name, readOnly, targets)
	if err != nil {
		if rerr := c.Remove(name); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Device{}, err
	}
	return dev, nil
}

func (c *Control) loadAndResume(name string, readOnly bool, targets []Target) (Device, error) {
	size := 0
	for _, t := range targets {
		if len(t.Type) >= unix.DM_MAX_TYPE_NAME {
			return Device{}, fmt.Errorf("device-mapper: target type %q too long", t.Type)
		}
		size += unix.SizeofDmTargetSpec + align8(len(t.Params)+1)
	}
	buf := newBuf(name, size)
	defer wipeBuf(buf)
	h := header(buf)
	h.Target_count = uint32(len(targets))
	h.Flags = unix.DM_SECURE_DATA_FLAG
	if readOnly {
		h.Flags |= unix.DM_READONLY_FLAG
	}
	off := unix.SizeofDmIoctl
	for _, t := range targets {
		spec := (*unix.DmTargetSpec)(unsafe.Pointer(&buf[off]))
		next := unix.SizeofDmTargetSpec + align8(len(t.Params)+1)
		spec.Sector_start = t.Start
		spec.Length = t.Length
		spec.Next = uint32(next)
		copy(spec.Target_type[:], t.Type)
		copy(buf[off+unix.SizeofDmTargetSpec:], t.Params)
		off += next
	}
	if err := c.ioctl(unix.DM_TABLE_LOAD, buf); err != nil {
		return Device{}, fmt.Errorf("DM_TABLE_LOAD %s: %w (the kernel rejected the table: is the cipher built in?)", name, err)
	}
	rbuf := newBuf(name, 0)
	defer wipeBuf(rbuf)
	header(rbuf).Flags = unix.DM_SECURE_DATA_FLAG
	if err := c.ioctl(unix.DM_DEV_SUSPEND, rbuf); err != nil {
		return Device{}, fmt.Errorf("DM_DEV_SUSPEND (resume) %s: %w", name, err)
	}
	dev := header(rbuf).Dev
	return Device{Name: name, Major: unix.Major(dev), Minor: unix.Minor(dev)}, nil
}

// Remove removes the device name, retrying briefly while it is still busy
// (a just-unmounted filesystem can hold it for a moment).
func (c *Control) Remove(name string) error {
	var err error
	for i := 0; i < 50; i++ {
		buf := newBuf(name, 0)
		err = c.ioctl(unix.DM_DEV_REMOVE, buf)
		wipeBuf(buf)
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("DM_DEV_REMOVE %s: %w", name, err)
	}
	return nil
}

// WaitNode waits up to timeout for the device's node to appear.
func WaitNode(d Device, timeout time.Duration) (string, error) {
	p := d.Path()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not appear within %v", p, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Control) ioctl(req uintptr, buf []byte) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), req, uintptr(unsafe.Pointer(&buf[0])))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		if header(buf).Flags&unix.DM_BUFFER_FULL_FLAG != 0 {
			return errors.New("device-mapper reply did not fit the buffer")
		}
		return nil
	}
}

// newBuf returns an ioctl buffer: the dm_ioctl header for name followed by
// extra bytes of payload. make() aligns it for the header's uint64 fields.
func newBuf(name string, extra int) []byte {
	buf := make([]byte, unix.SizeofDmIoctl+extra+4096)
	h := header(buf)
	h.Version = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}
	h.Data_size = uint32(len(buf))
	h.Data_start = unix.SizeofDmIoctl
	copy(h.Name[:], name)
	return buf
}

func header(buf []byte) *unix.DmIoctl { return (*unix.DmIoctl)(unsafe.Pointer(&buf[0])) }

func wipeBuf(buf []byte) { clear(buf) }

func align8(n int) int { return (n + 7) &^ 7 }

// Snapshot is a table line for a non-persistent snapshot of origin (a
// "major:minor" of length sectors): reads come from origin, writes go to
// the copy-on-write device cow in chunks of chunk sectors and are lost when
// the mapping goes. The origin is only read, so it may be read-only.
func Snapshot(length uint64, origin, cow string, chunk int) Target {
	return Target{Start: 0, Length: length, Type: "snapshot", Params: fmt.Appendf(nil, "%s %s N %d", origin, cow, chunk)}
}
