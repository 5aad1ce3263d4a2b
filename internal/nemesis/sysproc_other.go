//go:build unix && !linux

package nemesis

import "syscall"

// sysProcAttr puts the child in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitStopped does not wait where the process state cannot be read.
func waitStopped(pid int) {}
