//go:build linux

package journal

import (
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// enableDirectIO switches f, if it is an OS file, to O_DIRECT and returns a
// function that switches it back. ok is false if that is not possible (an
// in-memory file, or a file system without O_DIRECT).
func enableDirectIO(f vfs.File) (restore func() error, ok bool) {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return nil, false
	}
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return nil, false
	}
	if _, err := unix.FcntlInt(fd, unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return nil, false
	}
	return func() error {
		_, err := unix.FcntlInt(fd, unix.F_SETFL, flags)
		return err
	}, true
}
