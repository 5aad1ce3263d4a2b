//go:build !linux

package nemesis

import "fmt"

// socketOwner is only implemented on Linux (/proc); elsewhere connections
// to a shared listener have an unknown source.
func socketOwner(localPort, peerPort int, pids []int) (int, error) {
	return 0, fmt.Errorf("%w: needs /proc (Linux)", ErrNoSocketOwner)
}
