//go:build unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes an exclusive flock(2) on <dir>/sandbox.lock, so that two
// sandboxes never run on one directory (etcd and the bookies would fight
// over it). The kernel drops the lock when the process dies, even by
// kill -9. The file holds the owner's pid, for the error message.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "sandbox.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sandbox: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := strings.TrimSpace(string(b))
			if owner == "" {
				owner = "another process"
			} else {
				owner = "process " + owner
			}
			return nil, fmt.Errorf("sandbox: %s is in use by %s (another dlog sandbox?): stop it, or pass another --dir", dir, owner)
		}
		return nil, fmt.Errorf("sandbox: lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
