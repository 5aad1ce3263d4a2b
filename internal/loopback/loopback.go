package loopback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ErrNoPort: no free port was found.
var ErrNoPort = errors.New("loopback: no free port")

const (
	// lowest is the first port picked from; below it sit well-known
	// services of the machine.
	lowest = 10000
	// minSpan is the fewest ports below the ephemeral range worth picking
	// from; with fewer, Ports falls back to port 0.
	minSpan = 2000
	// attempts bounds the tries for one port.
	attempts = 200
)

var picked struct {
	sync.Mutex
	ports map[int]bool
}

// Ports returns n distinct ports on 127.0.0.1 that were free a moment ago
// and that no listener on port 0 is given by the kernel.
func Ports(n int) ([]int, error) {
	lo, hi, ok := span()
	out := make([]int, 0, n)
	if !ok {
		return zeroPorts(n)
	}
	picked.Lock()
	defer picked.Unlock()
	if picked.ports == nil || len(picked.ports) > (hi-lo)/2 {
		picked.ports = make(map[int]bool)
	}
	for range n {
		p, err := pick(lo, hi)
		if err != nil {
			return nil, err
		}
		picked.ports[p] = true
		out = append(out, p)
	}
	return out, nil
}

// Addrs returns n addresses 127.0.0.1:PORT from Ports.
func Addrs(n int) ([]string, error) {
	ps, err := Ports(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out, nil
}

func pick(lo, hi int) (int, error) {
	for range attempts {
		p := lo + rand.IntN(hi-lo+1)
		if picked.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("%w in %d-%d after %d tries", ErrNoPort, lo, hi, attempts)
}

// span returns the ports below the kernel's ephemeral range.
func span() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	first, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0, false
	}
	hi = first - 1
	if hi-lowest < minSpan {
		return 0, 0, false
	}
	return lowest, hi, true
}

// zeroPorts is the fallback: ports the kernel gave to listeners on port 0.
func zeroPorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoPort, err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
