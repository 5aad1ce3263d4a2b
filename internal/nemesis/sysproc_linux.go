//go:build linux

package nemesis

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// sysProcAttr puts the child in its own process group and has the kernel
// kill it if this process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitStopped waits (up to a few seconds) until every thread of pid is
// stopped: SIGSTOP takes effect asynchronously, thread by thread, and a
// pause must be complete before the nemesis says it is in force.
func waitStopped(pid int) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return // gone
		}
		stopped := true
		for _, t := range tasks {
			b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
			if err != nil {
				continue // thread exited
			}
			// The state follows the ")" that ends the command name.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) {
				continue
			}
			if s := b[i+2]; s != 'T' && s != 't' && s != 'Z' && s != 'X' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(time.Millisecond) // polling the kernel's view of the stop
	}
}
