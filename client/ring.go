package client

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// ring is a consistent-hash ring over proxy addresses with virtual nodes:
// each address owns vnodes points, and a key belongs to the first point
// clockwise from its hash. Every client builds the same ring from the same
// addresses, so clients agree on where a log goes, also after a proxy
// fails (its keys move to the next points, spread over the others). A
// ring is immutable; the client swaps in a new one when the set changes.
type ring struct {
	points []ringPoint // sorted by hash
	hosts  []string    // distinct addresses, sorted
}

type ringPoint struct {
	hash uint64
	host string
}

// hash64 is FNV-1a 64 finished with a 64-bit mixer, so that keys that
// differ in one character spread over the whole ring.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func newRing(hosts []string, vnodes int) *ring {
	hosts = slices.Clone(hosts)
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	r := &ring{hosts: hosts, points: make([]ringPoint, 0, len(hosts)*vnodes)}
	for _, h := range hosts {
		for i := range vnodes {
			r.points = append(r.points, ringPoint{hash: hash64(h + "#" + strconv.Itoa(i)), host: h})
		}
	}
	slices.SortFunc(r.points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return r
}

// pick returns the host of key: the first point clockwise from its hash
// whose host skip does not reject; "" when it rejects every host.
func (r *ring) pick(key string, skip func(host string) bool) string {
	if len(r.points) == 0 {
		return ""
	}
	h := hash64(key)
	i, _ := slices.BinarySearchFunc(r.points, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	seen := 0
	rejected := make(map[string]bool)
	for j := 0; j < len(r.points) && seen < len(r.hosts); j++ {
		p := r.points[(i+j)%len(r.points)]
		if rejected[p.host] {
			continue
		}
		if skip == nil || !skip(p.host) {
			return p.host
		}
		rejected[p.host] = true
		seen++
	}
	return ""
}
