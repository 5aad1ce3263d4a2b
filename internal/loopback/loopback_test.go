package loopback

import (
	"net"
	"strconv"
	"testing"
)

// TestPortsBelowEphemeralRange: picked ports are distinct, bindable, and
// never ones the kernel gives to a listener on port 0.
func TestPortsBelowEphemeralRange(t *testing.T) {
	ps, err := Ports(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	lo, hi, ok := span()
	for _, p := range ps {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if ok && (p < lo || p > hi) {
			t.Fatalf("port %d outside %d-%d", p, lo, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("picked port %d not bindable: %v", p, err)
		}
		l.Close()
	}
	// Listeners on port 0 never land on a picked port.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	if !ok {
		t.Skip("no span below the ephemeral range on this machine")
	}
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if p := l.Addr().(*net.TCPAddr).Port; seen[p] {
			t.Fatalf("kernel gave picked port %d to a :0 listener", p)
		}
	}
	// Later calls never repeat a port.
	more, err := Ports(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range more {
		if seen[p] {
			t.Fatalf("port %d handed out again", p)
		}
	}
}

// TestPortTakenIsSkipped: a port held by a listener is not handed out.
func TestPortTakenIsSkipped(t *testing.T) {
	lo, hi, ok := span()
	if !ok {
		t.Skip("no span below the ephemeral range on this machine")
	}
	// Hold every port of a tiny span but one; pick must find that one.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	base := lo + (hi-lo)/2
	free := -1
	for p := base; p < base+4; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // someone else holds it: just as good
		}
		if free < 0 {
			l.Close()
			free = p
			continue
		}
		ls = append(ls, l)
	}
	if free < 0 {
		t.Skip("no free port in the probe span")
	}
	picked.Lock()
	delete(picked.ports, free)
	p, err := pick(base, base+3)
	picked.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if p != free {
		t.Fatalf("picked %d, only %d was free", p, free)
	}
}
