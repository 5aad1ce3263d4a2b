//go:build unix

package nemesis

import (
	"errors"
	"syscall"
)

// signalGroup signals the process group led by pid, or the process alone
// if it has no group of its own.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}
