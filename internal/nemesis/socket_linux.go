//go:build linux

package nemesis

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// socketOwner finds which of pids holds the loopback TCP socket whose
// local port is localPort and whose peer port is peerPort: it looks the
// socket's inode up in /proc/net/tcp (and tcp6) and then the inode among
// the candidates' file descriptors. Only processes of the same user (or
// any, as root) can be inspected.
func socketOwner(localPort, peerPort int, pids []int) (int, error) {
	inode := ""
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		var err error
		if inode, err = findInode(table, localPort, peerPort); err != nil {
			return 0, err
		}
		if inode != "" {
			break
		}
	}
	if inode == "" || inode == "0" {
		return 0, fmt.Errorf("%w: no socket :%d -> :%d in /proc/net/tcp", ErrNoSocketOwner, localPort, peerPort)
	}
	want := "socket:[" + inode + "]"
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: inode %s", ErrNoSocketOwner, inode)
}

// findInode scans one /proc/net/tcp* table for a socket with the given
// local and remote ports and returns its inode ("" if none).
func findInode(path string, localPort, peerPort int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		if port(f[1]) == localPort && port(f[2]) == peerPort {
			return f[9], nil
		}
	}
	return "", sc.Err()
}

// port parses the port of an "ADDR:PORT" field of /proc/net/tcp (hex).
func port(field string) int {
	i := strings.LastIndexByte(field, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(field[i+1:], 16, 16)
	if err != nil {
		return -1
	}
	return int(p)
}
