package main

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// inRoot is a directory whose every path is resolved inside it by the
// kernel (openat2 with RESOLVE_IN_ROOT): "..", absolute paths and symlinks
// on /boot cannot lead out of /boot. It is an fs.FS for the entry parsers.
type inRoot struct{ fd int }

func openInRoot(dir string) (inRoot, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return inRoot{-1}, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return inRoot{fd}, nil
}

func (r inRoot) Close() error { return unix.Close(r.fd) }

// Open opens name (slash-separated, relative) for reading.
func (r inRoot) Open(name string) (fs.File, error) {
	f, err := r.open(name)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil fs.File
	}
	return f, nil
}

func (r inRoot) open(name string) (*os.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fd, err := unix.Openat2(r.fd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}
